import type { BatchUsage } from "../core/batch.js";

/**
 * Reads token usage from an upstream JSON body in either OpenAI shape: chat/completions/embeddings
 * (`usage.prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`,
 * `completion_tokens_details.reasoning_tokens`) or Responses (`usage.input_tokens`, `output_tokens`, `*_details`);
 * Anthropic's (`usage.input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens`, the last also
 * counted as cached; `output_tokens`); or Gemini's `usageMetadata` (`promptTokenCount` → input,
 * `candidatesTokenCount` + `thoughtsTokenCount` → output, `thoughtsTokenCount` → reasoning,
 * `cachedContentTokenCount` → cached).
 * @returns counts in tokens, or null when the body carries no usage.
 */
export function readUsage(body: unknown): BatchUsage | null {
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const g = (body as { usageMetadata?: Record<string, unknown> } | null)?.usageMetadata;
  if (g && typeof g === "object") {
    const thoughts = num(g.thoughtsTokenCount);
    return {
      input_tokens: num(g.promptTokenCount),
      cached_tokens: num(g.cachedContentTokenCount),
      output_tokens: num(g.candidatesTokenCount) + thoughts,
      reasoning_tokens: thoughts,
    };
  }
  const u = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (!u || typeof u !== "object") return null;
  if (u.cache_read_input_tokens !== undefined || u.cache_creation_input_tokens !== undefined) {
    // Anthropic: input_tokens leaves out the tokens read from and written to the prompt cache.
    const cached = num(u.cache_read_input_tokens);
    return { input_tokens: num(u.input_tokens) + num(u.cache_creation_input_tokens) + cached, cached_tokens: cached, output_tokens: num(u.output_tokens), reasoning_tokens: 0 };
  }
  const details = (v: unknown) => (v && typeof v === "object" ? (v as Record<string, unknown>) : {});
  return {
    input_tokens: num(u.input_tokens ?? u.prompt_tokens),
    cached_tokens: num(details(u.input_tokens_details ?? u.prompt_tokens_details).cached_tokens),
    output_tokens: num(u.output_tokens ?? u.completion_tokens),
    reasoning_tokens: num(details(u.output_tokens_details ?? u.completion_tokens_details).reasoning_tokens),
  };
}
