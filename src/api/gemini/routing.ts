import type { IncomingMessage } from "node:http";

/**
 * Which Gemini API version a path was called under. `@google/genai` 3.x calls `/v1/...` by default, 2.x and raw
 * callers `/v1beta/...`; both reach the same routes (registered under `/v1beta`, see `geminiRewriteUrl`).
 */
export type GeminiApiVersion = "v1" | "v1beta";

/**
 * Paths of the Gemini routes, which every Gemini call reaches after `geminiRewriteUrl`: `/v1beta/…`,
 * `/upload/v1beta/…`, `/download/v1beta/…`. Errors on them render in Google's shape.
 */
export const GEMINI_PATH = /^\/(?:upload\/|download\/)?v1beta\//;

/** Gemini's resource collections; under `/v1` they share their paths with OpenAI's Files and Batches. */
const V1_RESOURCE = /^\/v1\/(?:models|batches|files)(?:[/?]|$)/;
/**
 * A `:method` suffix (`batches/{id}:cancel`, `files/{id}:download`) is Google's custom-method syntax; OpenAI's ids never
 * hold a colon, so such a path is Gemini's whoever calls it. Under `models/` only a POST counts (a GET of
 * `/v1/models/llama3:latest` is an OpenAI-style model id, not a method).
 */
const V1_FILE_OR_BATCH_METHOD = /^\/v1\/(?:batches|files)\/[^/?]+:[a-zA-Z]+$/;
const V1_MODEL_METHOD = /^\/v1\/models\/.+:[a-zA-Z]+$/;

/** Query parameters only Google's APIs use (OpenAI pages with `limit`/`after`). */
const GOOGLE_QUERY = /(?:^|&)(?:key|pageSize|pageToken|page_size|page_token|alt|upload_id|upload_protocol)=/;

/**
 * True when a request comes from a Gemini client: `@google/genai` always sends `x-goog-api-client` and (with an API
 * key) `x-goog-api-key`; raw callers may pass the key as `?key=` or page with `pageSize`/`pageToken`. No OpenAI SDK
 * sends any of these.
 */
export function isGeminiCaller(headers: IncomingMessage["headers"], query: string): boolean {
  return headers["x-goog-api-key"] !== undefined || headers["x-goog-api-client"] !== undefined || GOOGLE_QUERY.test(query);
}

/**
 * Fastify `rewriteUrl` hook: maps a Gemini call under `/v1` onto the `/v1beta` routes, so Gemini's `/v1` is served too
 * and a Gemini-shaped call is never answered by an OpenAI route. `/upload/v1/…`, `/download/v1/…` and `:method` paths are
 * Gemini's whoever calls; `/v1/models|batches|files…`, which OpenAI shares, are Gemini's when `isGeminiCaller` says so.
 * Every other URL is returned as it came. The handlers read `req.originalUrl` (see `apiVersionOf`) to hand out URLs
 * under the version the caller used.
 * @param req the raw request (only `url`, `method` and `headers` are read). @returns the URL to route.
 */
export function geminiRewriteUrl(req: Pick<IncomingMessage, "url" | "method" | "headers">): string {
  const url = req.url ?? "/";
  if (url.startsWith("/upload/v1/") || url.startsWith("/download/v1/")) return url.replace("/v1/", "/v1beta/");
  if (!url.startsWith("/v1/")) return url;
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? "" : url.slice(q + 1);
  const gemini =
    V1_FILE_OR_BATCH_METHOD.test(path) ||
    (req.method === "POST" && V1_MODEL_METHOD.test(path)) ||
    (V1_RESOURCE.test(path) && isGeminiCaller(req.headers, query));
  return gemini ? "/v1beta/" + url.slice("/v1/".length) : url;
}

/**
 * The Gemini API version a request was made under, from the URL before any rewrite.
 * @param req a Fastify request (its `originalUrl`). @returns "v1" or "v1beta".
 */
export function apiVersionOf(req: { originalUrl: string }): GeminiApiVersion {
  return /^\/(?:upload\/|download\/)?v1\//.test(req.originalUrl) ? "v1" : "v1beta";
}
