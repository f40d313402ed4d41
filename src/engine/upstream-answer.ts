import type { ItemOutcome } from "../core/batch.js";
import { newId } from "../core/ids.js";
import type { ResponseTooLargeError } from "../providers/http-upstream.js";
import type { Judged } from "./coalesce.js";
import { isRetryableStatus, retryAfterMs } from "./retry-policy.js";
import { readUsage } from "./usage.js";

/**
 * Decides what an upstream answer means: a final outcome, or a retry (with the outcome to keep if none is left).
 * @param status the upstream HTTP status; @param headers its headers (lower-case names); @param text its body, already
 * translated back to the batch's format when 2xx.
 * @returns `{ outcome }` when final, `{ retryAfter, last }` (retryAfter in ms, or null) when worth another attempt.
 */
export function judgeAnswer(status: number, headers: Record<string, string>, text: string): Judged {
  const requestId = headers["x-request-id"] ?? newId("req_");
  let json: unknown;
  let parsed = true;
  try {
    json = JSON.parse(text);
  } catch {
    parsed = false;
  }
  if (status >= 200 && status < 300) {
    if (parsed && typeof json === "object" && json !== null) {
      return { outcome: { state: "succeeded", status_code: status, request_id: requestId, response_body: text, error_code: null, error_message: null, usage: readUsage(json) } };
    }
    // A 2xx we cannot read is an upstream glitch; try again, and report it if it persists.
    return { retryAfter: null, last: noAnswer("failed", "invalid_upstream_response", `Upstream answered ${status} with a body that is not a JSON object: ${text.slice(0, 200)}`) };
  }
  const outcome: ItemOutcome = {
    state: "failed",
    status_code: status,
    request_id: requestId,
    response_body: parsed ? text : JSON.stringify({ error: { message: text.slice(0, 10_000), type: "upstream_error" } }),
    error_code: null,
    error_message: null,
    usage: null,
  };
  if (isRetryableStatus(status)) return { retryAfter: retryAfterMs(headers), last: outcome };
  return { outcome };
}

/**
 * The outcome of a 2xx answer whose body a provider wrote itself as a JSON object (a coalesced call split per item,
 * see providers/coalesce-embeddings.ts CoalescedAnswer), given that body's `usage` field: what judgeAnswer makes of
 * it, without parsing the body again.
 */
export function builtAnswer(status: number, headers: Record<string, string>, text: string, usage: Record<string, unknown> | null): ItemOutcome {
  const requestId = headers["x-request-id"] ?? newId("req_");
  return { state: "succeeded", status_code: status, request_id: requestId, response_body: text, error_code: null, error_message: null, usage: readUsage({ usage }) };
}

/** True when `text` takes more than `limit` bytes in UTF-8 (it takes at least one per UTF-16 unit, at most three). */
export function utf8LengthOver(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return Buffer.byteLength(text, "utf8") > limit;
}

/** The outcome of an item whose answer was past the cap: failed alone, at once (the same request answers as much again). */
export function tooLarge(err: ResponseTooLargeError): ItemOutcome {
  return noAnswer("failed", "response_too_large", err.message);
}

/** An outcome without an upstream answer (no status, body or request id): `code` and `message` say why. */
export function noAnswer(state: ItemOutcome["state"], code: string, message: string): ItemOutcome {
  return { state, status_code: null, request_id: null, response_body: null, error_code: code, error_message: message, usage: null };
}
