import type { BatchView } from "../../core/batch.js";
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

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString());

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

export function geminiState(b: BatchView): GeminiBatchState {
  switch (b.status) {
    case "created":
    case "validating":
      return "BATCH_STATE_PENDING";
    case "in_progress":
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
 * A batch as a long-running Operation `{name, metadata:{@type, model, displayName, createTime, updateTime, endTime,
 * state, batchStats, output}, done, response}`. `@google/genai` reads `name` and `metadata.{displayName, state,
 * createTime, updateTime, endTime, model, output}`. Once done, a file-input batch names its `responsesFile`; an inline
 * one carries its responses inline, which this leaves as the `ITEMS` placeholder unless `inline` is false (listings).
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
    if (source) output = { responsesFile: `files/${responsesFileId(b.id)}` };
    else if (opts.inline) {
      output = { inlinedResponses: { inlinedResponses: ITEMS } };
      hasItems = true;
    }
  }
  const metadata: Record<string, unknown> = {
    "@type": TYPE_PREFIX + kind,
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
      op.error = { code: 3, message: why || "The batch failed." };
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

const CANONICAL: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  412: "FAILED_PRECONDITION",
  413: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const canonical = (code: number) => CANONICAL[code] ?? (code >= 500 ? "INTERNAL" : code >= 400 ? "FAILED_PRECONDITION" : "UNKNOWN");

/**
 * Why a request has no response, as a Google error `{code, message, status}` (HTTP code and canonical status name):
 * the upstream's own error when it answered, else ours (cancelled, expired, untranslatable, unreachable…).
 */
export function itemError(item: FinishedItem): { code: number; message: string; status: string } {
  if (item.state === "cancelled") return { code: 499, message: item.error_message ?? "The batch was cancelled before this request ran.", status: "CANCELLED" };
  if (item.state === "expired") return { code: 504, message: item.error_message ?? "The batch expired before this request ran.", status: "DEADLINE_EXCEEDED" };
  if (item.status_code !== null) {
    const code = item.status_code;
    return { code, message: upstreamMessage(item.response_body) ?? `The upstream answered ${code}.`, status: canonical(code) };
  }
  const code = item.error_code === "untranslatable_field" ? 400 : item.error_code === "model_not_found" ? 404 : item.error_code === "upstream_unreachable" ? 503 : 500;
  const message = [item.error_code, item.error_message].filter(Boolean).join(": ") || "The request failed.";
  return { code, message, status: canonical(code) };
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
