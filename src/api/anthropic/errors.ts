import { OpenBatchError } from "../../core/errors.js";

const TYPE: Record<string, string> = {
  invalid_request: "invalid_request_error",
  authentication: "authentication_error",
  permission: "permission_error",
  not_found: "not_found_error",
  conflict: "invalid_request_error",
  payload_too_large: "request_too_large",
  bad_gateway: "api_error",
  internal: "api_error",
};

/** Renders any error in Anthropic's shape `{type:"error", error:{type, message}}`. @returns status and body. */
export function renderAnthropicError(err: unknown): { status: number; body: unknown } {
  if (err instanceof OpenBatchError) {
    return { status: err.status, body: { type: "error", error: { type: TYPE[err.kind], message: err.message } } };
  }
  const e = err as { statusCode?: number; message?: string };
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { type: "error", error: { type: "invalid_request_error", message: e.message ?? "Bad request" } } };
  }
  return { status: 500, body: { type: "error", error: { type: "api_error", message: "Internal server error" } } };
}
