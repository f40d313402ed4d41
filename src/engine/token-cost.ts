import { createRequire } from "node:module";

type CountTokens = (text: string) => number;
let countTokensFn: CountTokens | null = null;

/** The tokenizer, loaded on first use: its o200k_base tables take ~70 MB, which a server without token budgets never needs. */
function countTokens(text: string): number {
  countTokensFn ??= (createRequire(import.meta.url)("gpt-tokenizer") as { countTokens: CountTokens }).countTokens;
  return countTokensFn(text);
}

/** Tokens a request sends, and the most it may produce. */
export interface RequestTokens {
  input: number;
  maxOutput: number;
}

/**
 * Counts the tokens of one request body (JSON text) with a real tokenizer (o200k_base, via gpt-tokenizer): the prompt
 * is every text the body sends — `messages[].content` (string or text parts), `prompt`, `input`, `instructions`,
 * `system`, Gemini `contents[].parts[].text` — and the output bound is `max_tokens`, `max_completion_tokens`,
 * `max_output_tokens` or `generationConfig.maxOutputTokens`, times `n`. Unparseable bodies count as 0.
 */
export function requestTokens(body: string): RequestTokens {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return { input: 0, maxOutput: 0 };
  }
  let text = "";
  const add = (v: unknown): void => {
    if (typeof v === "string") text += v + "\n";
    else if (Array.isArray(v)) v.forEach(add);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (typeof o.text === "string") text += o.text + "\n";
      else if (o.content !== undefined) add(o.content);
      else if (o.parts !== undefined) add(o.parts);
    }
  };
  for (const field of ["messages", "prompt", "input", "instructions", "system", "contents", "systemInstruction"]) add(parsed[field]);
  const generation = (parsed.generationConfig ?? {}) as Record<string, unknown>;
  const maxOut = Number(parsed.max_tokens ?? parsed.max_completion_tokens ?? parsed.max_output_tokens ?? generation.maxOutputTokens ?? 0) || 0;
  const n = Number(parsed.n ?? generation.candidateCount ?? 1) || 1;
  return { input: countTokens(text), maxOutput: maxOut * n };
}

/** Token cost of one request for a tokens-per-minute budget: prompt tokens + the output bound (≥ 1). */
export function requestTokenCost(body: string): number {
  const t = requestTokens(body);
  return Math.max(1, t.input + t.maxOutput);
}
