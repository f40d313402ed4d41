import { isoTime } from "../../core/time.js";
import type { BatchView, ItemState } from "../../core/batch.js";
import type { FinishedItem } from "../../store/store.js";

/** Seed 001 batch statuses. */
export type GrokStatus = "created" | "pending" | "processing" | "completed" | "failed" | "cancelling" | "cancelled";

const iso = isoTime;

/** The seed 001 status of a batch: `created` until requests arrive, `pending` until started; an expired batch is `failed`. */
export function grokStatus(b: BatchView): GrokStatus {
  switch (b.status) {
    case "created":
      return b.request_counts.total === 0 ? "created" : "pending";
    case "validating":
    case "in_progress":
    case "finalizing":
      return "processing";
    case "expired":
      return "failed";
    default:
      return b.status;
  }
}

/** Seed 001 batch object: ISO 8601 times and request/completed/failed counts. */
export function renderGrokBatch(b: BatchView) {
  const c = b.request_counts;
  return {
    id: b.id,
    object: "batch" as const,
    name: b.name,
    description: b.description,
    model: b.model,
    endpoint: b.endpoint,
    status: grokStatus(b),
    created_at: iso(b.created_at),
    started_at: iso(b.in_progress_at),
    completed_at: iso(b.completed_at ?? b.expired_at ?? b.cancelled_at ?? b.failed_at),
    expires_at: iso(b.expires_at),
    request_count: c.total,
    completed_count: c.completed,
    failed_count: c.total - c.completed - c.pending,
    pending_count: c.pending,
    metadata: b.metadata,
  };
}

/** Item states behind a seed 001 request status filter. */
export const GROK_REQUEST_STATES: Record<"pending" | "completed" | "failed", readonly ItemState[]> = {
  pending: ["queued", "in_flight"],
  completed: ["succeeded"],
  failed: ["failed", "expired", "cancelled"],
};

function requestStatus(state: ItemState): "pending" | "completed" | "failed" {
  return state === "succeeded" ? "completed" : state === "queued" || state === "in_flight" ? "pending" : "failed";
}

/** Seed 001 request listing entry `{id, custom_id, status}`. */
export function renderGrokRequest(item: FinishedItem) {
  return { id: item.id, custom_id: item.custom_id, status: requestStatus(item.state) };
}

/** Seed 001 result entry `{id, custom_id, status, response, error}`: the chat completion, or why there is none. */
export function renderGrokResult(item: FinishedItem) {
  const response = item.state === "succeeded" && item.response_body ? JSON.parse(item.response_body) : null;
  const error =
    item.state === "succeeded"
      ? null
      : item.status_code !== null
        ? { code: `upstream_${item.status_code}`, status_code: item.status_code, message: describeUpstreamError(item.response_body) }
        : { code: item.error_code, message: item.error_message };
  return { id: item.id, custom_id: item.custom_id, status: requestStatus(item.state), response, error };
}

function describeUpstreamError(body: string | null): string {
  if (!body) return "The upstream answered with an error.";
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string };
    if (typeof parsed.error === "string") return parsed.error;
    if (parsed.error?.message) return parsed.error.message;
  } catch {
    // not JSON: fall through
  }
  return body.slice(0, 500);
}
