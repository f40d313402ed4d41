import type { BatchView } from "../../core/batch.js";
import { isoTime } from "../../core/time.js";
import type { FinishedItem } from "../../store/store.js";
import { anthropicErrorType } from "./errors.js";

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
    ended_at: isoTime(b.completed_at ?? b.expired_at ?? b.cancelled_at ?? b.failed_at),
    created_at: isoTime(b.created_at),
    expires_at: isoTime(b.expires_at),
    archived_at: null,
    cancel_initiated_at: isoTime(b.cancelling_at),
    results_url: ended ? `${origin}/v1/messages/batches/${toAnthropicId(b.id)}/results` : null,
  };
}

/**
 * One Anthropic results line (the SDK's `MessageBatchIndividualResponse`): `{custom_id, result}` with result
 * `{type:"succeeded", message}` (see {@link completeMessage}), `{type:"errored", error:{type:"error", error:{type,
 * message}, request_id}}`, `{type:"canceled"}` or `{type:"expired"}`. @returns the line with its newline.
 */
export function renderMessageResult(item: FinishedItem): string {
  let result: unknown;
  if (item.state === "succeeded") result = { type: "succeeded", message: completeMessage(JSON.parse(item.response_body ?? "null")) };
  else if (item.state === "cancelled") result = { type: "canceled" };
  else if (item.state === "expired") result = { type: "expired" };
  else result = { type: "errored", error: errorOf(item) };
  return JSON.stringify({ custom_id: item.custom_id, result }) + "\n";
}

/** `Message` fields that may be null, filled with null when an answer lacks them (the SDK types declare them required). */
const NULLABLE_MESSAGE_FIELDS = ["container", "diagnostics", "stop_details", "stop_sequence"] as const;
/** The same for `Usage`. */
const NULLABLE_USAGE_FIELDS = ["cache_creation", "cache_creation_input_tokens", "cache_read_input_tokens", "inference_geo", "output_tokens_details", "server_tool_use", "service_tier", "speed"] as const;

/**
 * A succeeded item's `message` with every field the current Messages API declares. An answer from an Anthropic
 * upstream is kept as it is (fields we do not know stay); only fields it lacks are added: the nullable ones above as
 * null, `citations: null` on text blocks, and `caller: {type:"direct"}` on tool_use blocks (what an API version from
 * before callers meant). Answers translated from other upstreams are already complete (providers/translate). A body
 * that is not an object is returned unchanged.
 */
export function completeMessage(message: unknown): unknown {
  if (!isObject(message)) return message;
  const out: Record<string, unknown> = { ...message };
  for (const k of NULLABLE_MESSAGE_FIELDS) if (!(k in out)) out[k] = null;
  if (Array.isArray(out.content)) {
    out.content = out.content.map((b: unknown) => {
      if (!isObject(b)) return b;
      if (b.type === "text" && !("citations" in b)) return { ...b, citations: null };
      if ((b.type === "tool_use" || b.type === "server_tool_use") && !("caller" in b)) return { ...b, caller: { type: "direct" } };
      return b;
    });
  }
  const usage: Record<string, unknown> = isObject(out.usage) ? { ...out.usage } : { input_tokens: 0, output_tokens: 0 };
  for (const k of NULLABLE_USAGE_FIELDS) if (!(k in usage)) usage[k] = null;
  out.usage = usage;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The Anthropic `ErrorResponse` of a failed item: the upstream's own when it was Anthropic-shaped (with its
 * `request_id`, or the item's), else one built from the upstream status and message, or from our error code.
 */
function errorOf(item: FinishedItem): unknown {
  const requestId = item.request_id;
  if (item.status_code !== null && item.response_body) {
    const type = anthropicErrorType(item.status_code);
    try {
      const body = JSON.parse(item.response_body) as { type?: string; request_id?: unknown; error?: { type?: string; message?: string } | string };
      if (body.type === "error" && isObject(body.error)) return { ...body, request_id: typeof body.request_id === "string" ? body.request_id : requestId };
      const message = typeof body.error === "string" ? body.error : (body.error?.message ?? item.response_body.slice(0, 500));
      return { type: "error", error: { type, message }, request_id: requestId };
    } catch {
      return { type: "error", error: { type, message: item.response_body.slice(0, 500) }, request_id: requestId };
    }
  }
  const type = item.error_code === "untranslatable_field" ? "invalid_request_error" : "api_error";
  return { type: "error", error: { type, message: `${item.error_code}: ${item.error_message}` }, request_id: requestId };
}
