import type { BatchView } from "../../core/batch.js";
import type { FinishedItem } from "../../store/store.js";

const rfc3339 = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Anthropic ids are ours with a `msg` prefix: `batch_…` is rendered `msgbatch_…`. */
export const toAnthropicId = (id: string) => "msg" + id;
/** The engine id behind an Anthropic batch id (`msgbatch_…` → `batch_…`). */
export const fromAnthropicId = (id: string) => id.replace(/^msg(?=batch_)/, "");

/**
 * Anthropic Message Batch object. `results_url` is absolute (the SDK follows it as is) and set once the batch ended.
 * @param origin e.g. "http://127.0.0.1:8080".
 */
export function renderMessageBatch(b: BatchView, origin: string) {
  const c = b.request_counts;
  const ended = ["completed", "expired", "cancelled", "failed"].includes(b.status);
  return {
    id: toAnthropicId(b.id),
    type: "message_batch" as const,
    processing_status: ended ? "ended" : b.status === "cancelling" ? "canceling" : "in_progress",
    request_counts: { processing: c.pending, succeeded: c.completed, errored: c.failed, canceled: c.cancelled, expired: c.expired },
    ended_at: rfc3339(b.completed_at ?? b.expired_at ?? b.cancelled_at ?? b.failed_at),
    created_at: rfc3339(b.created_at),
    expires_at: rfc3339(b.expires_at),
    archived_at: null,
    cancel_initiated_at: rfc3339(b.cancelling_at),
    results_url: ended ? `${origin}/v1/messages/batches/${toAnthropicId(b.id)}/results` : null,
  };
}

/** One Anthropic results line: `{custom_id, result:{type:"succeeded", message} | errored | canceled | expired}`. */
export function renderMessageResult(item: FinishedItem): string {
  let result: unknown;
  if (item.state === "succeeded") result = { type: "succeeded", message: JSON.parse(item.response_body ?? "null") };
  else if (item.state === "cancelled") result = { type: "canceled" };
  else if (item.state === "expired") result = { type: "expired" };
  else result = { type: "errored", error: errorOf(item) };
  return JSON.stringify({ custom_id: item.custom_id, result }) + "\n";
}

/** The Anthropic error of a failed item: the upstream's own when it was Anthropic-shaped, else one built from ours. */
function errorOf(item: FinishedItem): unknown {
  if (item.status_code !== null && item.response_body) {
    try {
      const body = JSON.parse(item.response_body) as { type?: string; error?: { type?: string; message?: string } | string };
      if (body.type === "error" && typeof body.error === "object") return body;
      const message = typeof body.error === "string" ? body.error : (body.error?.message ?? item.response_body.slice(0, 500));
      return { type: "error", error: { type: item.status_code >= 500 ? "api_error" : "invalid_request_error", message } };
    } catch {
      return { type: "error", error: { type: "api_error", message: item.response_body.slice(0, 500) } };
    }
  }
  return { type: "error", error: { type: item.error_code === "untranslatable_field" ? "invalid_request_error" : "api_error", message: `${item.error_code}: ${item.error_message}` } };
}
