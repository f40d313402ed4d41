import type { BatchUsage } from "../core/batch.js";

/**
 * Reads token usage from an upstream JSON body in either OpenAI shape: chat/completions/embeddings
 * (`usage.prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`,
 * `completion_tokens_details.reasoning_tokens`) or Responses (`usage.input_tokens`, `output_tokens`, `*_details`).
 * @returns counts in tokens, or null when the body carries no usage.
 */
export function readUsage(body: unknown): BatchUsage | null {
  const u = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (!u || typeof u !== "object") return null;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const details = (v: unknown) => (v && typeof v === "object" ? (v as Record<string, unknown>) : {});
  return {
    input_tokens: num(u.input_tokens ?? u.prompt_tokens),
    cached_tokens: num(details(u.input_tokens_details ?? u.prompt_tokens_details).cached_tokens),
    output_tokens: num(u.output_tokens ?? u.completion_tokens),
    reasoning_tokens: num(details(u.output_tokens_details ?? u.completion_tokens_details).reasoning_tokens),
  };
}
