import type { BatchEndpoint, ItemOutcome, RequestItem } from "../core/batch.js";
import type { Endpoint } from "../core/wire-format.js";
import { ResponseTooLargeError } from "../providers/http-upstream.js";
import { UpstreamUnreachableError, type Provider, type UpstreamRequest, type UpstreamResponse } from "../providers/provider.js";
import { TranslationError, translateRequest } from "../providers/translate/translate.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";
import { newId } from "../core/ids.js";
import { requestTokenCost } from "./token-cost.js";
import { builtAnswer, utf8LengthOver } from "./upstream-answer.js";

/**
 * Coalesced embeddings, the engine half (the wire half is providers/coalesce-embeddings.ts). A batch of one-text
 * embeddings requests is claimed `embeddingsCoalesce` items per concurrency slot; items whose wire requests share a
 * grouping key (same model and parameters) go upstream as one call, and each gets its own answer back, as if sent
 * alone. One call spends one request of the rpm budget and the sum of its items' tokens. A group the upstream refuses
 * (400, 413, 422, or a 2xx that does not pair one embedding per input) is split in halves and each half sent again,
 * down to single items sent as plain requests, so a bad input fails alone and its neighbours succeed. A 429, 5xx or
 * no answer is every item's own retry, as it would be alone.
 */

/** What an answer means for one item (the dispatcher's judgement): a final outcome, or a retry (with the outcome kept if none is left). */
export type Judged = { outcome: ItemOutcome } | { retryAfter: number | null; last: ItemOutcome };

/** One leased item ready for a coalesced call: its wire request (translated to the provider's format). */
export interface GroupEntry {
  item: RequestItem;
  wireEndpoint: Endpoint;
  request: UpstreamRequest;
}

/** How the items of one claim go upstream: groups of 2 or more (one call each), and items that go alone. */
export interface CallPlan {
  groups: GroupEntry[][];
  alone: RequestItem[];
}

/** True when `provider` coalesces the requests of batches on `endpoint`. */
export function coalesces(provider: Provider, endpoint: string): boolean {
  return (provider.embeddingsCoalesce ?? 1) > 1 && !!provider.sendEmbeddings && !!provider.embeddingsKey && (endpoint === "/v1/embeddings" || endpoint === "gemini:embedContent");
}

/**
 * Groups claimed items by the provider's grouping key, in claim order, into groups of at most `provider.embeddingsCoalesce`.
 * An item that cannot be translated or coalesced (list inputs, token ids) goes alone, and so does a group of one.
 * Costs one translate and one JSON parse per item, no I/O.
 */
export function planCalls(items: RequestItem[], endpoint: BatchEndpoint | Endpoint, provider: Provider, model: string | null): CallPlan {
  const max = provider.embeddingsCoalesce ?? 1;
  const open = new Map<string, GroupEntry[]>();
  const groups: GroupEntry[][] = [];
  const alone: RequestItem[] = [];
  for (const item of items) {
    let wire: { endpoint: Endpoint; body: string };
    try {
      wire = translateRequest(endpoint as Endpoint, item.body, provider.format);
    } catch (err) {
      if (!(err instanceof TranslationError)) throw err;
      alone.push(item); // its own send reports the translation error
      continue;
    }
    const request: UpstreamRequest = { endpoint: wire.endpoint, model, body: wire.body };
    const key = provider.embeddingsKey!(request);
    if (key === null) {
      alone.push(item);
      continue;
    }
    let group = open.get(key);
    if (!group) {
      group = [];
      open.set(key, group);
      groups.push(group);
    }
    group.push({ item, wireEndpoint: wire.endpoint, request });
    if (group.length >= max) open.delete(key);
  }
  const out: GroupEntry[][] = [];
  for (const g of groups) {
    if (g.length === 1) alone.push(g[0]!.item);
    else out.push(g);
  }
  return { groups: out, alone };
}

/** What a group call needs from the dispatcher. */
export interface GroupHost {
  provider: Provider;
  limiter: ProviderRateLimiter;
  model: string | null;
  apiKey: string | undefined;
  maxResponseBytes: number | undefined;
  /** The dispatcher's judgement of one answer (status, headers, body in the batch's format for a 2xx). */
  judge(status: number, headers: Record<string, string>, text: string): Judged;
  /** An upstream 2xx body in the provider's format → the batch's format. @throws TranslationError */
  translateBack(wireEndpoint: Endpoint, body: string): string;
  /** Told of every upstream call's end: its status or error code, and latency in ms (metrics, adaptive concurrency). */
  answered(outcome: number | string, latencyMs: number, status: number | null, headers: Record<string, string> | null): void;
}

/**
 * Sends one group (one call, or more when it is split) and judges every item. Holds no slot itself: the caller holds
 * one for the whole time, so a split group's calls go one after another.
 * @returns one judgement per entry, in order. @throws the signal's reason when `signal` aborted (cancel, expiry, stop).
 */
export async function sendGroup(host: GroupHost, entries: GroupEntry[], signal: AbortSignal): Promise<Judged[]> {
  const results: Judged[] = new Array(entries.length);
  await run(host, entries, 0, results, signal);
  return results;
}

async function run(host: GroupHost, entries: GroupEntry[], offset: number, results: Judged[], signal: AbortSignal): Promise<void> {
  const { limiter, provider } = host;
  const tokens = limiter.needsTokenCost(host.model) ? entries.reduce((n, e) => n + requestTokenCost(e.item.body), 0) : 0;
  await limiter.acquire(host.model, tokens, signal);
  const requests = entries.map((e) => ({ ...e.request, apiKey: host.apiKey, maxResponseBytes: host.maxResponseBytes }));
  const started = performance.now();
  const split = async () => {
    const half = Math.ceil(entries.length / 2);
    await run(host, entries.slice(0, half), offset, results, signal);
    await run(host, entries.slice(half), offset + half, results, signal);
  };
  try {
    if (entries.length === 1) {
      // Alone at last: a plain request, exactly what the item would send uncoalesced.
      const res = await provider.send(requests[0]!, signal);
      host.answered(res.status, performance.now() - started, res.status, res.headers);
      results[offset] = judgeOne(host, entries[0]!, res);
      return;
    }
    const answer = await provider.sendEmbeddings!(requests, signal);
    const head = answer.kind === "each" ? answer : answer.answer;
    host.answered(head.status, performance.now() - started, head.status, head.headers);
    if (answer.kind === "each") {
      // One upstream call, one request id for its items (an upstream's x-request-id is the call's too); made here once
      // when the provider names none, not once per item (a random draw each was 13 µs of an item's ~340 µs, local/glove-100d).
      const headers = answer.headers["x-request-id"] ? answer.headers : { ...answer.headers, "x-request-id": newId("req_") };
      for (let i = 0; i < entries.length; i++) {
        results[offset + i] = judgeOne(host, entries[i]!, { status: answer.status, headers, body: answer.bodies[i]! }, answer.usages?.[i]);
      }
      return;
    }
    const status = answer.answer.status;
    if (status === 400 || status === 413 || status === 422 || (status >= 200 && status < 300)) return await split();
    // Anything else (429, 5xx, 401, 404, …) answers each item as it would alone.
    const judged = host.judge(status, answer.answer.headers, answer.answer.body);
    for (let i = 0; i < entries.length; i++) results[offset + i] = judged;
  } catch (err) {
    if (signal.aborted) throw err;
    if (err instanceof ResponseTooLargeError) {
      host.answered(err.status, performance.now() - started, err.status, {});
      if (entries.length > 1) return await split();
      results[offset] = { outcome: failed("response_too_large", err.message) };
      return;
    }
    const code = err instanceof UpstreamUnreachableError ? err.code : "upstream_unreachable";
    host.answered(code, performance.now() - started, null, null);
    const judged: Judged = { retryAfter: null, last: failed(code, (err as Error).message) };
    for (let i = 0; i < entries.length; i++) results[offset + i] = judged;
  }
}

/**
 * One item's answer judged as the dispatcher judges an uncoalesced one (size cap, translation back, status). With
 * `usage` (the provider wrote the body itself: see CoalescedAnswer) a 2xx body that needs no translation is not
 * parsed again: its usage is read from there.
 */
function judgeOne(host: GroupHost, entry: GroupEntry, res: UpstreamResponse, usage?: Record<string, unknown> | null): Judged {
  const cap = host.maxResponseBytes;
  if (cap !== undefined && utf8LengthOver(res.body, cap)) return { outcome: failed("response_too_large", new ResponseTooLargeError(cap, res.status).message) };
  const ok = res.status >= 200 && res.status < 300;
  try {
    const text = ok ? host.translateBack(entry.wireEndpoint, res.body) : res.body;
    if (ok && usage !== undefined && text === res.body) return { outcome: builtAnswer(res.status, res.headers, text, usage) };
    return host.judge(res.status, res.headers, text);
  } catch (err) {
    if (!(err instanceof TranslationError)) throw err;
    return { outcome: failed("untranslatable_field", `Field '${err.param}' cannot be translated for provider ${host.provider.name}: ${err.message}`) };
  }
}

function failed(code: string, message: string): ItemOutcome {
  return { state: "failed", status_code: null, request_id: null, response_body: null, error_code: code, error_message: message, usage: null };
}
