import type { UpstreamRequest, UpstreamResponse } from "./provider.js";

/**
 * Coalesced embeddings (config `embeddingsCoalesce`): many one-text embeddings requests sent upstream as one call of
 * many inputs, and the answer split back into one answer per request, each as the upstream would have answered that
 * request alone. This file holds the wire-format halves (merge, split) that the providers share; the engine side
 * (grouping leased items, split-and-retry of a failing group) is engine/coalesce.ts.
 */

/** The answer to a coalesced call (Provider.sendEmbeddings). */
export type CoalescedAnswer =
  /**
   * The call succeeded: `bodies[i]` answers `requests[i]` (JSON text, as if it had been sent alone). `usages`, when
   * given, says the bodies are JSON objects this provider wrote itself, `usages[i]` being the `usage` field of body i
   * (null: it has none) and no body having a `usageMetadata` field: the engine then takes the usage from there instead
   * of parsing each body again.
   */
  | { kind: "each"; status: number; headers: Record<string, string>; bodies: string[]; usages?: (Record<string, unknown> | null)[] }
  /**
   * The upstream's answer to the whole call, which cannot be split per request: an error status (a bad input fails the
   * call, at OpenAI and Gemini alike), or a 2xx whose inputs and embeddings do not pair up.
   */
  | { kind: "whole"; answer: UpstreamResponse };

/** The one text of an OpenAI embeddings body whose `input` is a string or a list of one string; else null. */
export function singleText(input: unknown): string | null {
  if (typeof input === "string") return input;
  if (Array.isArray(input) && input.length === 1 && typeof input[0] === "string") return input[0];
  return null;
}

/**
 * Grouping key of an OpenAI `/v1/embeddings` request: requests with equal keys may share one call. The key is every
 * field but `input` (model, `dimensions`, `encoding_format`, `user`, anything else), in sorted order, so only requests
 * that would be sent with identical parameters meet. @returns null for a body that is not coalesced: not JSON, or an
 * `input` that is not one text (lists of several texts, token ids), which goes alone as it came.
 */
export function openAIEmbeddingsKey(request: UpstreamRequest): string | null {
  if (request.endpoint !== "/v1/embeddings") return null;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(request.body) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!body || typeof body !== "object" || Array.isArray(body) || singleText(body.input) === null) return null;
  const rest = Object.keys(body)
    .filter((k) => k !== "input")
    .sort()
    .map((k) => [k, body[k]]);
  return JSON.stringify([request.model, rest]);
}

/** The texts of a group of OpenAI embeddings requests (all with one key), and the merged body that sends them at once. */
export function mergeOpenAIEmbeddings(requests: UpstreamRequest[]): { body: string; texts: string[] } {
  const texts: string[] = [];
  let first: Record<string, unknown> | null = null;
  for (const r of requests) {
    const b = JSON.parse(r.body) as Record<string, unknown>;
    first ??= b;
    texts.push(singleText(b.input)!);
  }
  return { body: JSON.stringify({ ...first, input: texts }), texts };
}

/**
 * Splits an OpenAI embeddings answer to `n` merged inputs into `n` answers as the upstream gives one input alone:
 * the same fields in the same order, `data` holding that input's embedding alone with `index` 0, and `usage` that
 * input's share. `tokens[i]` is input i's own token count as the upstream counts it (exact for the local model;
 * estimated with the upstream's tokenizer otherwise): used as is when they add up to the upstream's total, else the
 * total is apportioned by them (largest remainder), so the items' usage always sums to what the upstream billed.
 * @returns the n bodies, or null when the answer does not pair one embedding with each input (then the caller splits
 * the group and tries again).
 */
export function splitOpenAIEmbeddings(text: string, n: number, tokens: number[]): string[] | null {
  return splitWithUsage(text, n, tokens)?.bodies ?? null;
}

/** splitOpenAIEmbeddings, with the `usage` object written into each body (none when the answer has `usageMetadata`). */
function splitWithUsage(text: string, n: number, tokens: number[]): { bodies: string[]; usages: (Record<string, unknown> | null)[] | undefined } | null {
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  const data = answer?.data;
  if (!Array.isArray(data) || data.length !== n) return null;
  const byIndex: unknown[] = new Array(n);
  for (const d of data as Record<string, unknown>[]) {
    const i = d?.index;
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= n || byIndex[i] !== undefined) return null;
    byIndex[i] = d;
  }
  const usage = answer.usage && typeof answer.usage === "object" ? (answer.usage as Record<string, unknown>) : null;
  // Every numeric usage field (prompt_tokens, total_tokens, …) is shared out the same way.
  const shares = new Map<string, number[]>();
  if (usage) for (const [k, v] of Object.entries(usage)) if (typeof v === "number") shares.set(k, apportion(v, tokens));
  const out: string[] = [];
  const usages: (Record<string, unknown> | null)[] = [];
  for (let i = 0; i < n; i++) {
    const own: Record<string, unknown> = {};
    let ownUsage: Record<string, unknown> | null = null;
    for (const [k, v] of Object.entries(answer)) {
      if (k === "data") own[k] = [{ ...(byIndex[i] as object), index: 0 }];
      else if (k === "usage" && usage) {
        const u: Record<string, unknown> = {};
        for (const [uk, uv] of Object.entries(usage)) u[uk] = shares.has(uk) ? shares.get(uk)![i] : uv;
        own[k] = ownUsage = u;
      } else own[k] = v;
    }
    out.push(JSON.stringify(own));
    usages.push(ownUsage);
  }
  return { bodies: out, usages: "usageMetadata" in answer ? undefined : usages };
}

/**
 * One `/v1/embeddings` call for a group of one-text requests (all with one key): merged (mergeOpenAIEmbeddings), sent
 * through `send`, and split back per request (splitOpenAIEmbeddings) with `tokens(text)` as each item's own count.
 * @returns `each` with the split bodies, or `whole` with the answer when it is not 2xx or does not split.
 * @throws what `send` throws.
 */
export async function sendOpenAIEmbeddings(
  send: (request: UpstreamRequest, signal: AbortSignal) => Promise<UpstreamResponse>,
  requests: UpstreamRequest[],
  signal: AbortSignal,
  tokens: (text: string) => number,
): Promise<CoalescedAnswer> {
  const { body, texts } = mergeOpenAIEmbeddings(requests);
  const answer = await send({ ...requests[0]!, body }, signal);
  if (answer.status < 200 || answer.status >= 300) return { kind: "whole", answer };
  const split = splitWithUsage(answer.body, texts.length, texts.map(tokens));
  return split ? { kind: "each", status: answer.status, headers: answer.headers, bodies: split.bodies, usages: split.usages } : { kind: "whole", answer };
}

/**
 * Shares `total` out by `weights`: the weights themselves when they add up to it, else floor shares plus one for the
 * largest remainders (ties to the earlier item), so the shares always sum to `total`.
 */
export function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum === total) return weights.slice();
  if (!Number.isInteger(total) || total < 0) return weights.map((_, i) => (i === 0 ? total : 0));
  // No weight at all: even shares.
  const w = sum > 0 ? weights : weights.map(() => 1);
  const wSum = sum > 0 ? sum : weights.length;
  const exact = w.map((x) => (total * x) / wSum);
  const shares = exact.map(Math.floor);
  let left = total - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    shares[i]!++;
    left--;
  }
  return shares;
}
