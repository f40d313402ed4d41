import { OpenBatchError } from "../../core/errors.js";

/** OpenAI error body: `{error:{message, type, param, code}}`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const TYPE: Record<string, string> = {
  invalid_request: "invalid_request_error",
  authentication: "authentication_error",
  permission: "permission_error",
  not_found: "invalid_request_error",
  conflict: "invalid_request_error",
  payload_too_large: "invalid_request_error",
  bad_gateway: "server_error",
  internal: "server_error",
};

/** Renders any error in OpenAI's shape. @returns the HTTP status and body. */
export function renderOpenAIError(err: unknown): { status: number; body: OpenAIErrorBody } {
  if (err instanceof OpenBatchError) {
    return { status: err.status, body: { error: { message: err.message, type: TYPE[err.kind]!, param: err.param, code: err.code } } };
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own 4xx (unparseable JSON, unsupported media type, body too large).
    return { status: e.statusCode, body: { error: { message: e.message ?? "Bad request", type: "invalid_request_error", param: null, code: e.code ?? null } } };
  }
  return { status: 500, body: { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } } };
}
