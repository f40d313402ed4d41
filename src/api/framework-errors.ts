import { OpenBatchError, type ErrorKind } from "../core/errors.js";

/**
 * An error the HTTP framework (Fastify, @fastify/multipart, busboy, Node's request stream) raised before a route ran,
 * re-expressed as our own OpenBatchError so each dialect renders it in its own shape with our code, never Fastify's
 * `FST_ERR_…` code or message. Its HTTP status is carried explicitly because 415 (unsupported media type) has no
 * ErrorKind of its own: it renders as an invalid request with status 415.
 */
export class FrameworkRequestError extends OpenBatchError {
  private readonly httpStatus: number;
  constructor(kind: ErrorKind, status: number, message: string, code: string, param: string | null = null) {
    super(kind, message, { code, param });
    this.httpStatus = status;
  }
  override get status(): number {
    return this.httpStatus;
  }
}

/** What the translator may read of the request: the route's body limit (bytes), when Fastify knows it. */
export interface FrameworkErrorContext {
  bodyLimit?: number;
}

/** Fastify and @fastify/multipart codes of errors the caller caused, and what each becomes. */
const TRANSLATIONS: Record<string, (ctx: FrameworkErrorContext) => FrameworkRequestError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => invalidJson(),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => invalidJson(),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new FrameworkRequestError("invalid_request", 415, "Unsupported content-type: send the body as application/json (uploads: multipart/form-data).", "unsupported_media_type"),
  FST_ERR_CTP_BODY_TOO_LARGE: (ctx) =>
    new FrameworkRequestError(
      "payload_too_large",
      413,
      ctx.bodyLimit ? `The request body is larger than the limit of ${ctx.bodyLimit} bytes.` : "The request body is too large.",
      "request_too_large",
    ),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    new FrameworkRequestError("invalid_request", 400, "The request body's size does not match its content-length header.", "invalid_content_length"),
  FST_ERR_BAD_URL: () => new FrameworkRequestError("invalid_request", 400, "The request URL is not validly percent-encoded.", "invalid_url"),
  // @fastify/multipart (uploads).
  FST_INVALID_MULTIPART_CONTENT_TYPE: () => invalidMultipart("The request is not multipart/form-data."),
  FST_PROTO_VIOLATION: () => invalidMultipart("A multipart field name is not allowed."),
  FST_INVALID_JSON_FIELD_ERROR: () => invalidMultipart("A multipart field declared as JSON is not valid JSON."),
  FST_MP_PREMATURE_CLOSE: () => invalidMultipart("The request ended before the multipart body was complete."),
  FST_PARTS_LIMIT: () => new FrameworkRequestError("payload_too_large", 413, "The multipart body has too many parts.", "request_too_large"),
  FST_FILES_LIMIT: () => new FrameworkRequestError("payload_too_large", 413, "Send one file per upload.", "request_too_large", "file"),
  FST_FIELDS_LIMIT: () => new FrameworkRequestError("payload_too_large", 413, "The multipart body has too many fields.", "request_too_large"),
  FST_REQ_FILE_TOO_LARGE: () => new FrameworkRequestError("payload_too_large", 413, "The file is larger than the upload limit.", "file_too_large", "file"),
};

/** Codes of a full disk or quota (Node's fs, SQLite): the server's condition, answered 507 rather than 500. */
const STORAGE_FULL = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

const invalidJson = () => new FrameworkRequestError("invalid_request", 400, "The request body is not valid JSON.", "invalid_json");
const invalidMultipart = (message: string) => new FrameworkRequestError("invalid_request", 400, message, "invalid_multipart", "file");

/**
 * Translates an error raised by the framework into an OpenBatchError; our own errors, and anything that is a server
 * fault (5xx, or no status at all), pass through unchanged for the dialect's renderer (which answers a 500 without
 * internals). A 4xx from anywhere else in the framework or Node (an aborted or unreadable body) becomes a generic 4xx
 * of ours: its message and code are never echoed, since they describe our internals, not the caller's request.
 * @param err what the error handler received. @param ctx what is known of the request.
 * @returns the error to render.
 */
export function translateFrameworkError(err: unknown, ctx: FrameworkErrorContext = {}): unknown {
  if (err instanceof OpenBatchError || typeof err !== "object" || err === null) return err;
  const e = err as { code?: unknown; statusCode?: unknown };
  const translate = typeof e.code === "string" ? TRANSLATIONS[e.code] : undefined;
  if (translate) return translate(ctx);
  if (typeof e.code === "string" && STORAGE_FULL.has(e.code)) {
    return new FrameworkRequestError("internal", 507, "The server is out of storage space: delete files or batches to free some, or try again later.", "insufficient_storage");
  }
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return new FrameworkRequestError("payload_too_large", 413, "The request body is too large.", "request_too_large");
    return new FrameworkRequestError("invalid_request", e.statusCode === 415 ? 415 : 400, "The request body could not be read.", "invalid_body");
  }
  return err;
}

/**
 * For a failure while reading a multipart upload: framework errors are translated; an error with neither a code
 * nor a status comes from the multipart parser (busboy: "Unexpected end of form", "Malformed part header", …) and is
 * the caller's malformed body, a 400. Errors of our own and disk errors (they carry `syscall`) pass through.
 * @returns the error to throw.
 */
export function translateMultipartError(err: unknown): unknown {
  const translated = translateFrameworkError(err);
  if (translated !== err || err instanceof OpenBatchError || typeof err !== "object" || err === null) return translated;
  const e = err as { code?: unknown; statusCode?: unknown; syscall?: unknown };
  if (e.code === undefined && e.statusCode === undefined && e.syscall === undefined) return invalidMultipart("The multipart body is malformed.");
  return err;
}
