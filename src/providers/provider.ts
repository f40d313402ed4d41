import type { Endpoint, WireFormat } from "../core/wire-format.js";
import type { CoalescedAnswer } from "./coalesce-embeddings.js";

/** One upstream call, already in the provider's format: endpoint, model, and the request body as JSON text. */
export interface UpstreamRequest {
  endpoint: Endpoint;
  /** The model; formats that put it in the URL (Gemini) read it from here. */
  model: string | null;
  body: string;
  /** A per-batch upstream key (gateway routing) that replaces the provider's configured key. */
  apiKey?: string;
  /**
   * Longest answer body to read, bytes (config `limits.maxResponseBytes`): a provider that reads a body stops past it
   * and rejects with ResponseTooLargeError (providers/http-upstream.ts). Absent: no cap.
   */
  maxResponseBytes?: number;
}

/** What came back: any HTTP status; `body` is the raw text. Header names are lower case. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * What a streamed call (`Provider.stream`) gave back: either an answer that is no stream (any status: an error the
 * upstream or the provider answered before streaming, such as a 400 or 424), or a 2xx stream of server-sent events.
 */
export type UpstreamStreamResult = ({ kind: "answer" } & UpstreamResponse) | UpstreamEventStream;

/** A 2xx event stream in the provider's format (OpenAI: `data: {chunk}\n\n` events ending with `data: [DONE]`). */
export interface UpstreamEventStream {
  kind: "stream";
  status: number;
  headers: Record<string, string>;
  /**
   * The events as text or bytes, each piece ending on an event boundary (a blank line). The consumer must iterate it
   * to its end or call `return()`, so the provider can free what the call holds. It throws UpstreamUnreachableError
   * when the upstream stops answering midway, the signal's reason when the signal aborts, or another Error for a
   * failure while generating; what it yielded before stays valid.
   */
  events: AsyncIterable<string | Uint8Array>;
}

/** The upstream did not answer: connection refused or reset, DNS, or no answer within the timeout. */
export class UpstreamUnreachableError extends Error {
  constructor(
    message: string,
    /** "upstream_timeout" or "upstream_unreachable". */
    readonly code: "upstream_timeout" | "upstream_unreachable",
  ) {
    super(message);
    this.name = "UpstreamUnreachableError";
  }
}

/** Budgets a remote provider was configured with (config `rpm`, `tpm`, `modelBudgets`); absent ones are discovered. */
export interface ProviderBudgets {
  rpm?: number;
  tpm?: number;
  modelBudgets: Record<string, { rpm?: number; tpm?: number }>;
}

/**
 * An upstream behind one interface. `send` resolves for every HTTP answer (2xx or not); it rejects with
 * UpstreamUnreachableError when none came, or with the signal's reason when `signal` aborted it.
 */
export interface Provider {
  readonly name: string;
  readonly type: string;
  /** The format this upstream speaks; requests in another format are translated (see providers/translate). */
  readonly format: WireFormat;
  /** Most calls this provider may have in flight at once. */
  readonly maxConcurrency: number;
  /** Longest a call may take, ms; leases outlast it. */
  readonly timeoutMs: number;
  /** Rate budgets of a remote upstream; null for an in-process model, which is limited by its concurrency alone. */
  readonly budgets: ProviderBudgets | null;
  send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse>;
  /**
   * Present on providers that can stream (format "openai"): sends `request` (its body has `stream: true`) and resolves
   * once the answer's status is known; rejects like `send`. Aborting `signal` ends the upstream call, stream included.
   */
  stream?(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamStreamResult>;
  /**
   * Most one-text embeddings requests `sendEmbeddings` puts in one upstream call (config `embeddingsCoalesce`,
   * default 64); absent or 1: every request goes alone. See providers/coalesce-embeddings.ts and engine/coalesce.ts.
   */
  readonly embeddingsCoalesce?: number;
  /**
   * Grouping key of an embeddings request in this provider's format: requests with equal keys may share one call
   * (`sendEmbeddings`). @returns null for a request that must go alone (not one text, another endpoint).
   */
  embeddingsKey?(request: UpstreamRequest): string | null;
  /**
   * Sends `requests` (all with one `embeddingsKey`, at most `embeddingsCoalesce`) as one upstream call, and splits the
   * answer into one answer per request, each as if sent alone. Rejects like `send`.
   */
  sendEmbeddings?(requests: UpstreamRequest[], signal: AbortSignal): Promise<CoalescedAnswer>;
  close(): Promise<void>;
}
