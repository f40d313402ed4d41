/** Base of every error the client throws. */
export class OpenBatchClientError extends Error {
  override name = "OpenBatchClientError";
}

/** The server answered with an error status (after retries when the status was transient), or a GraphQL error. */
export class ApiError extends OpenBatchClientError {
  override name = "ApiError";
  constructor(
    /** HTTP status (200 for GraphQL errors delivered in a 200). */
    readonly status: number,
    message: string,
    /** The parsed body, when there was one. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** The server could not be reached, the connection broke, or the request timed out (after retries). */
export class ConnectionError extends OpenBatchClientError {
  override name = "ConnectionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The message of a Weaviate-style error body: `{error:[{message}]}`, `{error:{message}}`, `{message}`, or a string.
 * @returns the messages joined by "; ", or null when the body carries none.
 */
export function errorMessageOf(body: unknown): string | null {
  if (typeof body === "string") return body.trim() || null;
  if (!body || typeof body !== "object") return null;
  const b = body as Record<string, unknown>;
  const list = Array.isArray(b.error) ? b.error : Array.isArray(b.errors) ? b.errors : null;
  if (list) {
    const messages = list.map((e) => (e && typeof e === "object" ? (e as { message?: unknown }).message : e)).filter((m) => typeof m === "string" && m);
    if (messages.length) return messages.join("; ");
  }
  if (b.error && typeof b.error === "object" && typeof (b.error as { message?: unknown }).message === "string") return (b.error as { message: string }).message;
  if (typeof b.error === "string") return b.error;
  if (typeof b.message === "string") return b.message;
  return null;
}
