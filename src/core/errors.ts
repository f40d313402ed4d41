/**
 * Typed, dialect-neutral errors. Each dialect adapter renders them in its own error shape
 * (OpenAI: `{error:{message,type,param,code}}`); the HTTP status lives here so every dialect agrees on it.
 */
export type ErrorKind =
  | "invalid_request"
  | "authentication"
  | "permission"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "bad_gateway"
  | "internal";

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  authentication: 401,
  permission: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  bad_gateway: 502,
  internal: 500,
};

/** An error a caller caused or can act on. `param` names the offending field, `code` is a stable machine code. */
export class OpenBatchError extends Error {
  readonly kind: ErrorKind;
  readonly param: string | null;
  readonly code: string | null;
  constructor(kind: ErrorKind, message: string, opts: { param?: string | null; code?: string | null } = {}) {
    super(message);
    this.name = "OpenBatchError";
    this.kind = kind;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }
  /** HTTP status for this error (400, 401, 403, 404, 409, 413, 500 or 502). */
  get status(): number {
    return STATUS[this.kind];
  }
}

/** 400 with the offending parameter. */
export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new OpenBatchError("invalid_request", message, { param, code });

/** 404 for a missing (or, with auth on, someone else's) object. */
export const notFound = (message: string, param: string | null = null) =>
  new OpenBatchError("not_found", message, { param, code: "not_found" });
