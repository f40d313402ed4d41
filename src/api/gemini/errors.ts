import { OpenBatchError } from "../../core/errors.js";

const STATUS: Record<string, string> = {
  invalid_request: "INVALID_ARGUMENT",
  authentication: "UNAUTHENTICATED",
  permission: "PERMISSION_DENIED",
  not_found: "NOT_FOUND",
  conflict: "FAILED_PRECONDITION",
  payload_too_large: "INVALID_ARGUMENT",
  bad_gateway: "UNAVAILABLE",
  internal: "INTERNAL",
};

/** Renders any error as a Google API error `{error:{code, message, status}}`. @returns status and body. */
export function renderGeminiError(err: unknown): { status: number; body: unknown } {
  if (err instanceof OpenBatchError) {
    return { status: err.status, body: { error: { code: err.status, message: err.message, status: STATUS[err.kind] } } };
  }
  const e = err as { statusCode?: number; message?: string };
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: { code: e.statusCode, message: e.message ?? "Bad request", status: "INVALID_ARGUMENT" } } };
  }
  return { status: 500, body: { error: { code: 500, message: "Internal error.", status: "INTERNAL" } } };
}
