import { Pool } from "undici";
import { UpstreamUnreachableError, type UpstreamResponse } from "./provider.js";

/**
 * One keep-alive connection pool to an upstream origin, sized to the provider's concurrency, whose headers/body
 * timeouts bound each call; shared by the native providers (Anthropic, Gemini). Every HTTP answer resolves; no answer
 * rejects with UpstreamUnreachableError (or the signal's reason when it aborted).
 */
export class HttpUpstream {
  private readonly pool: Pool;
  /** The base URL's path, without a trailing slash. */
  readonly basePath: string;

  constructor(
    private readonly name: string,
    baseURL: string,
    connections: number,
    private readonly timeoutMs: number,
  ) {
    const url = new URL(baseURL);
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.pool = new Pool(url.origin, { connections, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /**
   * POSTs `body` and reads the whole answer.
   * @param maxBytes longest body read (UpstreamRequest.maxResponseBytes); past it reading stops with ResponseTooLargeError.
   */
  async post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal, maxBytes?: number): Promise<UpstreamResponse> {
    try {
      const res = await this.pool.request({ method: "POST", path, headers, body, signal });
      const text = await readBoundedText(res, maxBytes);
      return { status: res.statusCode, headers: flattenHeaders(res.headers), body: text };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof ResponseTooLargeError) throw err;
      if (isTimeout(err)) {
        throw new UpstreamUnreachableError(`${this.name}: no answer within ${this.timeoutMs} ms`, "upstream_timeout");
      }
      throw new UpstreamUnreachableError(`${this.name}: ${(err as Error).message}`, "upstream_unreachable");
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** An upstream answer's body was longer than the cap (config `limits.maxResponseBytes`): that request fails alone. */
export class ResponseTooLargeError extends Error {
  constructor(
    /** The cap, bytes. */
    readonly limit: number,
    /** The answer's HTTP status. */
    readonly status: number,
  ) {
    super(`The upstream answered ${status} with a body larger than limits.maxResponseBytes (${limit} bytes); it was not read further.`);
    this.name = "ResponseTooLargeError";
  }
}

/**
 * Reads an undici answer's body as UTF-8 text, holding at most `maxBytes` of it: a declared `content-length` past the
 * cap, or bytes arriving past it, stop reading at once (the body is destroyed, so the connection is not drained).
 * @param maxBytes the cap, bytes; undefined reads it all.
 * @throws ResponseTooLargeError past the cap; the body's own errors as they are.
 */
export async function readBoundedText(
  res: { statusCode: number; headers: Record<string, string | string[] | undefined>; body: AsyncIterable<Uint8Array> & { text(): Promise<string>; destroy(err?: Error): unknown } },
  maxBytes: number | undefined,
): Promise<string> {
  if (maxBytes === undefined) return res.body.text();
  const tooLarge = () => {
    res.body.destroy();
    return new ResponseTooLargeError(maxBytes, res.statusCode);
  };
  const declared = Number(res.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.length;
    if (bytes > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes).toString("utf8");
}

/**
 * Puts `model` into a JSON request body that names none (a request translated from Gemini carries its model in the
 * upstream request, not the body). Fast path: a body with a `"model":` key anywhere is sent as it is; otherwise it is
 * parsed and re-serialized with `model` first.
 */
export function withModel(body: string, model: string | null): string {
  if (!model || /"model"\s*:/.test(body)) return body;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return body;
    const o = parsed as Record<string, unknown>;
    if (o.model !== undefined && o.model !== null) return body;
    const { model: _absent, ...rest } = o;
    return JSON.stringify({ model, ...rest });
  } catch {
    return body;
  }
}

/** A synthetic answer for a request the provider cannot even send (no model, wrong endpoint): the item fails with it. */
export function badRequest(body: unknown): UpstreamResponse {
  return { status: 400, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** True for undici's headers or body timeout (the pool's `headersTimeout`/`bodyTimeout` ran out). */
export function isTimeout(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

/** undici's response headers as one string per (lower-case) name; repeated headers are joined with ", ". */
export function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(", ") : v;
  return flat;
}

/** True for a `text/event-stream` content type (any parameters). */
export function isEventStream(headers: Record<string, string>): boolean {
  return /^\s*text\/event-stream\b/i.test(headers["content-type"] ?? "");
}

/**
 * Re-frames an upstream's server-sent events body so that every piece yielded ends on an event boundary (a blank line:
 * LF LF, CRLF CRLF or CR CR), whatever the network's chunking. A consumer that must append an event of its own (an
 * error after the upstream broke off) thus never glues it onto half an event. A last event without its blank line is
 * completed with one. Text is decoded as UTF-8 across chunk boundaries.
 * @param body the raw body; its errors propagate as they are (the caller maps them).
 */
export async function* sseFrames(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of body) {
    pending += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    const end = lastBoundary(pending);
    if (end > 0) {
      yield pending.slice(0, end);
      pending = pending.slice(end);
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== "") yield pending.endsWith("\n") || pending.endsWith("\r") ? pending + "\n" : pending + "\n\n";
}

/** Index just past the last blank line in `text`, or 0. */
function lastBoundary(text: string): number {
  let end = 0;
  for (const m of text.matchAll(/\r\n\r\n|\n\n|\r\r/g)) end = m.index + m[0].length;
  return end;
}
