import type { FastifyRequest } from "fastify";
import { OpenBatchError } from "../../core/errors.js";
import { newId } from "../../core/ids.js";

/**
 * Anthropic's error `type` for an HTTP status, per its errors page and the SDK's `ErrorType`: 400
 * invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error,
 * 409 conflict_error, 413 request_too_large, 429 rate_limit_error, 504 timeout_error, 529 overloaded_error; any other
 * 4xx is invalid_request_error (as Anthropic documents) and any other status api_error.
 */
export function anthropicErrorType(status: number): string {
  const known: Record<number, string> = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
  };
  return known[status] ?? (status >= 400 && status < 500 ? "invalid_request_error" : "api_error");
}

const requestIds = new WeakMap<FastifyRequest, string>();

/**
 * The Anthropic `request-id` of one HTTP request (`req_` + 24 hex digits), made on first use and the same on every
 * later call for that request, so the `request-id` header, an error body's `request_id` and the log agree.
 */
export function anthropicRequestId(req: FastifyRequest): string {
  let id = requestIds.get(req);
  if (id === undefined) {
    id = newId("req_");
    requestIds.set(req, id);
  }
  return id;
}

/**
 * Renders any error in Anthropic's shape `{type:"error", error:{type, message}, request_id}` (the SDK's
 * `ErrorResponse`). OpenBatch errors and framework 4xx errors keep their status and message; anything else is a 500
 * `api_error` whose details stay in the log. `req` gives the request id; without it `request_id` is null.
 * @returns status and body.
 */
export function renderAnthropicError(err: unknown, req?: FastifyRequest): { status: number; body: unknown } {
  const requestId = req ? anthropicRequestId(req) : null;
  const body = (status: number, message: string) => ({ status, body: { type: "error", error: { type: anthropicErrorType(status), message }, request_id: requestId } });
  if (err instanceof OpenBatchError) return body(err.status, err.message);
  const e = err as { statusCode?: number; message?: string };
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) return body(e.statusCode, e.message ?? "Bad request");
  return body(500, "Internal server error");
}
