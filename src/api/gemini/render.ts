import type { BatchView } from "../../core/batch.js";
import { isoTime } from "../../core/time.js";
import type { FinishedItem } from "../../store/store.js";

/**
 * Rendering for the Gemini dialects: the real Batch Mode (batches as long-running Operations, as `@google/genai`
 * reads them) and seed 003's simpler shape (`{name, state, totalRequests, completedRequests}`), plus per-request
 * results and Google-style errors.
 */

/** Dialect names stored with batches: the real Batch Mode, and seed 003's `POST /v1beta/batches`. */
export const GEMINI = "gemini";
export const GEMINI_SEED = "gemini-seed";

const TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main.";

/** Gemini omits a time it does not have (undefined drops the key), where core's isoTime says null. */
const iso = (ms: number | null | undefined) => isoTime(ms) ?? undefined;

/** `batches/<id>` for a batch id. */
export const batchName = (id: string) => `batches/${id}`;
/** The engine id behind a batch id or name (`batches/batch_…` or `batch_…`). */
export const batchIdOf = (name: string) => name.replace(/^batches\//, "");
/** `models/<model>` for a routed model name. */
export const modelName = (model: string | null) => (model === null ? undefined : model.startsWith("models/") ? model : `models/${model}`);
/** A model without Gemini's `models/` resource prefix. */
export const bareModel = (model: string) => model.replace(/^models\//, "");

// ---------------------------------------------------------------------------------------------------------------
// Per-request metadata travels in the item's custom_id: `<index>` or `<index>:<JSON>`, where the JSON is the
// request's `metadata` (inline requests) or its `key` (file lines). The index keeps custom_ids unique.

/** The custom_id of the `index`-th request of a batch, carrying its metadata or key. */
export function toCustomId(index: number, meta: unknown): string {
  return meta === undefined ? String(index) : `${index}:${JSON.stringify(meta)}`;
}

/** The metadata or key a custom_id carries (undefined when none). */
export function metaOf(customId: string): unknown {
  const sep = customId.indexOf(":");
  if (sep < 0) return undefined;
  try {
    return JSON.parse(customId.slice(sep + 1));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Batch states

/** Gemini Batch Mode states (the SDK maps `BATCH_STATE_*` to `JOB_STATE_*`). */
export type GeminiBatchState =
  | "BATCH_STATE_PENDING"
  | "BATCH_STATE_RUNNING"
  | "BATCH_STATE_SUCCEEDED"
  | "BATCH_STATE_FAILED"
  | "BATCH_STATE_CANCELLED"
  | "BATCH_STATE_EXPIRED";

/**
 * A batch's Gemini state. PENDING while it is being prepared, and while it runs but none of its requests has finished
 * yet (e.g. queued behind other batches): the engine counts finished requests, not started ones, so a batch whose
 * first requests are in flight still reads PENDING until one of them ends. RUNNING from then until it has ended.
 */
export function geminiState(b: BatchView): GeminiBatchState {
  switch (b.status) {
    case "created":
    case "validating":
      return "BATCH_STATE_PENDING";
    case "in_progress":
      return b.request_counts.pending === b.request_counts.total ? "BATCH_STATE_PENDING" : "BATCH_STATE_RUNNING";
    case "finalizing":
    case "cancelling":
      return "BATCH_STATE_RUNNING";
    case "completed":
      return "BATCH_STATE_SUCCEEDED";
    case "failed":
      return "BATCH_STATE_FAILED";
    case "cancelled":
      return "BATCH_STATE_CANCELLED";
    case "expired":
      return "BATCH_STATE_EXPIRED";
  }
}

const ENDED = ["completed", "failed", "expired", "cancelled"];
/** True once a batch has ended (the Operation is `done`). */
export const isDone = (b: BatchView) => ENDED.includes(b.status);

const endTime = (b: BatchView) => b.completed_at ?? b.failed_at ?? b.expired_at ?? b.cancelled_at;
const updateTime = (b: BatchView) =>
  Math.max(b.created_at, ...[b.in_progress_at, b.finalizing_at, b.cancelling_at, b.completed_at, b.failed_at, b.expired_at, b.cancelled_at].filter((t): t is number => t !== null));

// ---------------------------------------------------------------------------------------------------------------
// Real Batch Mode: the Operation

/** Stands for the list of inlined responses in a rendered Operation; `streamJson` replaces it with the items. */
export const ITEMS = "\u0000openbatch:items\u0000";

/** Batch metadata key naming the input file of a batch created from one (its results go to a responses file). */
export const SOURCE_FILE = "gemini_source_file";

/** The generated file that holds a file-input batch's results: `responses-<batch id>`. */
export const responsesFileId = (batchId: string) => `responses-${batchId}`;
/** The batch id behind a responses file id, or null when `fileId` names no responses file. */
export const batchOfResponsesFile = (fileId: string) => (fileId.startsWith("responses-batch_") ? fileId.slice("responses-".length) : null);

const isEmbed = (b: BatchView) => b.endpoint === "gemini:embedContent";

/** int64 counters as Google renders them: decimal strings, zeros left out. */
function int64s(counts: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(counts)) if (v !== 0) out[k] = String(v);
  return out;
}

/**
 * A batch as a long-running Operation `{name, metadata:{@type, name, model, displayName, createTime, updateTime,
 * endTime, state, batchStats, output}, done, response | error}`. `@google/genai` reads `name` and
 * `metadata.{displayName, state, createTime, updateTime, endTime, model, output}` (its `dest` comes from
 * `metadata.output`). Once ended (failed ones aside), a file-input batch names its `responsesFile`; an inline one
 * carries its responses inline, left as the `ITEMS` placeholder — unless `inline` is false (listings), where it names
 * its responses file `files/responses-<id>` instead, so a page of batches stays small and `dest` is still set.
 * A succeeded batch has `response` (the output again); a failed one `error {code: 3}`, a cancelled one
 * `error {code: 1 (CANCELLED)}`, an expired one `error {code: 4 (DEADLINE_EXCEEDED)}` — those two keep their partial
 * results in `metadata.output` (Operation `response` and `error` exclude each other).
 * @returns the Operation, and whether it holds the ITEMS placeholder.
 */
export function renderOperation(b: BatchView, opts: { inline: boolean }): { op: Record<string, unknown>; hasItems: boolean } {
  const c = b.request_counts;
  const kind = isEmbed(b) ? "EmbedContentBatch" : "GenerateContentBatch";
  const source = b.metadata?.[SOURCE_FILE];
  const done = isDone(b);
  let output: Record<string, unknown> | undefined;
  let hasItems = false;
  if (done && b.status !== "failed") {
    if (source || !opts.inline) output = { responsesFile: `files/${responsesFileId(b.id)}` };
    else {
      output = { inlinedResponses: { inlinedResponses: ITEMS } };
      hasItems = true;
    }
  }
  const metadata: Record<string, unknown> = {
    "@type": TYPE_PREFIX + kind,
    name: batchName(b.id),
    model: modelName(b.model),
    displayName: b.name ?? undefined,
    ...(source ? { inputConfig: { fileName: source } } : {}),
    createTime: iso(b.created_at),
    updateTime: iso(updateTime(b)),
    endTime: iso(endTime(b)),
    state: geminiState(b),
    batchStats: int64s({
      requestCount: c.total,
      successfulRequestCount: c.completed,
      failedRequestCount: c.failed + c.expired + c.cancelled,
      pendingRequestCount: c.pending,
    }),
    output,
  };
  const op: Record<string, unknown> = { name: batchName(b.id), metadata };
  if (done) {
    op.done = true;
    if (b.status === "failed") {
      const why = b.errors?.map((e) => (e.line ? `line ${e.line}: ${e.message}` : e.message)).join("; ");
      op.error = { code: RPC.INVALID_ARGUMENT, message: why || "The batch failed." };
    } else if (b.status === "cancelled") {
      op.error = { code: RPC.CANCELLED, message: `The batch was cancelled; ${c.completed} of ${c.total} requests had succeeded.` };
    } else if (b.status === "expired") {
      op.error = { code: RPC.DEADLINE_EXCEEDED, message: `The batch expired before all its requests ran; ${c.completed} of ${c.total} requests had succeeded.` };
    } else if (output) op.response = { "@type": `${TYPE_PREFIX}${kind}Output`, ...output };
  }
  return { op, hasItems };
}

/** One inlined response: `{response, metadata}` or `{error, metadata}`. */
export function renderInlinedResponse(item: FinishedItem): Record<string, unknown> {
  const metadata = metaOf(item.custom_id);
  const out: Record<string, unknown> = item.state === "succeeded" ? { response: parseBody(item.response_body) } : { error: itemError(item) };
  if (metadata !== undefined) out.metadata = metadata;
  return out;
}

/** One line of a responses file: `{"key", "response"}` or `{"key", "error"}`. */
export function renderResponseLine(item: FinishedItem): string {
  const key = metaOf(item.custom_id);
  const line: Record<string, unknown> = key === undefined ? {} : { key };
  if (item.state === "succeeded") line.response = parseBody(item.response_body);
  else line.error = itemError(item);
  return JSON.stringify(line) + "\n";
}

// ---------------------------------------------------------------------------------------------------------------
// Seed 003

/** Seed 003 states. */
export type SeedState = "PROCESSING" | "COMPLETED" | "FAILED" | "CANCELLED";

export function seedState(b: BatchView): SeedState {
  if (b.status === "completed") return "COMPLETED";
  if (b.status === "failed" || b.status === "expired") return "FAILED";
  if (b.status === "cancelled") return "CANCELLED";
  return "PROCESSING";
}

/**
 * Seed 003 batch: `{name, state, createTime, totalRequests, completedRequests}`; `completedRequests` counts requests
 * that succeeded, `failedRequests` those that did not (failed, expired or cancelled).
 */
export function renderSeedBatch(b: BatchView) {
  const c = b.request_counts;
  return {
    name: batchName(b.id),
    model: modelName(b.model),
    state: seedState(b),
    createTime: iso(b.created_at),
    updateTime: iso(updateTime(b)),
    endTime: iso(endTime(b)),
    totalRequests: c.total,
    completedRequests: c.completed,
    failedRequests: c.failed + c.expired + c.cancelled,
    pendingRequests: c.pending,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Errors of single requests

/** `google.rpc.Code`: the numbers a `google.rpc.Status` carries in `code`. */
export const RPC = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
type RpcName = keyof typeof RPC;
const isRpcName = (s: unknown): s is RpcName => typeof s === "string" && Object.hasOwn(RPC, s);

/** Upstream HTTP status → rpc code, the inverse of the HTTP mapping documented with `google.rpc.Code`. */
const FROM_HTTP: Record<number, RpcName> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  412: "FAILED_PRECONDITION",
  413: "INVALID_ARGUMENT",
  422: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};
const fromHttp = (status: number): RpcName => FROM_HTTP[status] ?? (status >= 500 ? "INTERNAL" : status >= 400 ? "FAILED_PRECONDITION" : "UNKNOWN");

/** Our item error codes (set when no upstream answer came back) → rpc code. Others: INTERNAL. */
const FROM_OURS: Record<string, RpcName> = {
  batch_cancelled: "CANCELLED",
  batch_expired: "DEADLINE_EXCEEDED",
  upstream_timeout: "DEADLINE_EXCEEDED",
  upstream_unreachable: "UNAVAILABLE",
  model_not_found: "NOT_FOUND",
  provider_not_found: "NOT_FOUND",
  untranslatable_field: "INVALID_ARGUMENT",
  invalid_upstream_response: "INTERNAL",
};

/** A per-request error: a `google.rpc.Status` as Batch Mode puts it in an inlined response or a responses-file line. */
export interface RpcStatus {
  /** A `google.rpc.Code` number (3 INVALID_ARGUMENT, 5 NOT_FOUND, 8 RESOURCE_EXHAUSTED, …), not an HTTP status. */
  code: number;
  message: string;
  /** One `google.rpc.ErrorInfo`: `reason` names our error code (or UPSTREAM_ERROR), `metadata.httpStatus` the upstream's. */
  details?: Record<string, unknown>[];
}

/**
 * Why a request has no response, as a `google.rpc.Status` `{code, message, details}`: `code` comes from the item's
 * state (cancelled → 1, expired → 4), else the upstream's answer (its Google `error.status` when it is a Gemini
 * upstream, else its HTTP status mapped as `google.rpc.Code` documents), else our error code (upstream_timeout → 4,
 * upstream_unreachable → 14, model_not_found → 5, untranslatable_field → 3, others → 13). `details` keeps what the code
 * alone loses: our error code, or the upstream's HTTP status.
 */
export function itemError(item: FinishedItem): RpcStatus {
  const info = (reason: string, metadata?: Record<string, string>) => [
    { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "openbatch", ...(metadata ? { metadata } : {}) },
  ];
  const ours = (fallback: RpcName, text: string) => {
    const code = item.error_code;
    return {
      code: RPC[code ? (FROM_OURS[code] ?? fallback) : fallback],
      message: item.error_message ?? text,
      ...(code ? { details: info(code.toUpperCase()) } : {}),
    };
  };
  if (item.state === "cancelled") return ours("CANCELLED", "The batch was cancelled before this request ran.");
  if (item.state === "expired") return ours("DEADLINE_EXCEEDED", "The batch expired before this request ran.");
  if (item.status_code !== null) {
    const status = item.status_code;
    const upstream = upstreamError(item.response_body);
    const name = isRpcName(upstream.status) ? upstream.status : fromHttp(status);
    return { code: RPC[name], message: upstream.message ?? `The upstream answered ${status}.`, details: info("UPSTREAM_ERROR", { httpStatus: String(status) }) };
  }
  const message = [item.error_code, item.error_message].filter(Boolean).join(": ") || "The request failed.";
  return { ...ours("INTERNAL", message), message };
}

/** The message (and Google `status` name, when present) of an upstream error body. */
function upstreamError(body: string | null): { message: string | null; status?: unknown } {
  if (!body) return { message: null };
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; status?: unknown } | string; message?: unknown };
    if (typeof parsed.error === "object" && parsed.error !== null) {
      return { message: typeof parsed.error.message === "string" ? parsed.error.message : upstreamMessage(body), status: parsed.error.status };
    }
  } catch {
    // not JSON
  }
  return { message: upstreamMessage(body) };
}

function upstreamMessage(body: string | null): string | null {
  if (!body) return null;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
    if (typeof parsed.error?.message === "string") return parsed.error.message;
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON
  }
  return body.slice(0, 500);
}

function parseBody(body: string | null): unknown {
  if (body === null) return null;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming large JSON answers

/**
 * JSON text of `value` where every `ITEMS` placeholder is replaced by a JSON array of what `items()` yields, in
 * chunks of about 64 KB: an inline batch's responses are streamed from the store, never held whole.
 */
export async function* streamJson(value: unknown, items: () => AsyncIterable<unknown>): AsyncGenerator<string> {
  const parts = JSON.stringify(value).split(JSON.stringify(ITEMS));
  let buf = "";
  for (let i = 0; i < parts.length; i++) {
    buf += parts[i];
    if (i === parts.length - 1) break;
    buf += "[";
    let first = true;
    for await (const item of items()) {
      buf += (first ? "" : ",") + JSON.stringify(item);
      first = false;
      if (buf.length >= 65_536) {
        yield buf;
        buf = "";
      }
    }
    buf += "]";
  }
  if (buf) yield buf;
}
