import { countTokens } from "gpt-tokenizer";

/**
 * Token cost of one request for a tokens-per-minute budget: prompt tokens (o200k_base, via gpt-tokenizer) of every
 * text the body sends — `messages[].content` (string or text parts), `prompt`, `input`, `instructions` — plus the
 * output it may produce (`max_tokens`, `max_completion_tokens` or `max_output_tokens`, times `n`).
 * @param body the request body as JSON text. @returns tokens (≥ 1).
 */
export function requestTokenCost(body: string): number {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return 1;
  }
  let text = "";
  const add = (v: unknown): void => {
    if (typeof v === "string") text += v + "\n";
    else if (Array.isArray(v)) v.forEach(add);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (typeof o.text === "string") text += o.text + "\n";
      else if (o.content !== undefined) add(o.content);
    }
  };
  add(parsed.messages);
  add(parsed.prompt);
  add(parsed.input);
  add(parsed.instructions);
  add(parsed.system);
  const maxOut = Number(parsed.max_tokens ?? parsed.max_completion_tokens ?? parsed.max_output_tokens ?? 0) || 0;
  const n = Number(parsed.n ?? 1) || 1;
  return Math.max(1, countTokens(text) + maxOut * n);
}
