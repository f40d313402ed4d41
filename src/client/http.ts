import { ApiError, ConnectionError, errorMessageOf } from "./errors.js";

/** Retries of transient failures (connection errors, timeouts, 429 and 5xx): exponential backoff with jitter. */
export interface RetryOptions {
  /** Further attempts after the first (default 5). */
  maxRetries?: number;
  /** First delay, ms (default 250); doubles each attempt. */
  baseDelayMs?: number;
  /** Delay cap, ms (default 10 000); a server's Retry-After is honoured up to 60 s. */
  maxDelayMs?: number;
}

/** Options of {@link HttpClient}. */
export interface HttpOptions {
  /** Server root, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted). */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Default per-request timeout, ms (default 120 000: a batch with a vectorizer can take a while). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

/** One call of {@link HttpClient.request}. */
export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /** Retry transient failures (default true). Every call the client makes is idempotent, batches included (client uuids). */
  retry?: boolean;
  timeoutMs?: number;
  /** Statuses returned to the caller instead of thrown (e.g. 404 for "does not exist"). */
  accept?: number[];
}

/** A parsed answer. */
export interface HttpResponse<T> {
  status: number;
  body: T;
}

/** Statuses worth another attempt. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * The transport under every resource: JSON in and out, auth header, timeouts, and retries of transient failures with
 * exponential backoff (429/5xx/connection errors). Non-transient error statuses throw {@link ApiError} with the server's
 * message; unreachable servers throw {@link ConnectionError}.
 */
export class HttpClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions>;

  constructor(options: HttpOptions) {
    this.baseUrl = options.url.replace(/\/+$/, "").replace(/\/v1$/, "");
    this.headers = { accept: "application/json", ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}), ...options.headers };
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.retry = { maxRetries: 5, baseDelayMs: 250, maxDelayMs: 10_000, ...options.retry };
  }

  /** Backoff before retry number `attempt` (1-based), ms: exponential with jitter in [half, full]; Retry-After is a floor. */
  backoffMs(attempt: number, retryAfterMs: number | null = null): number {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    const jittered = exp / 2 + Math.random() * (exp / 2);
    return retryAfterMs === null ? jittered : Math.max(jittered, Math.min(retryAfterMs, 60_000));
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers = body === undefined ? this.headers : { ...this.headers, "content-type": "application/json" };
    const maxRetries = options.retry === false ? 0 : this.retry.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs) });
        text = await res.text();
      } catch (err) {
        if (attempt < maxRetries) {
          await sleep(this.backoffMs(attempt + 1));
          continue;
        }
        const reason = err instanceof Error ? (err.name === "TimeoutError" ? "timed out" : describeCause(err)) : String(err);
        throw new ConnectionError(`${method} ${url.pathname}: ${reason}${maxRetries ? ` (after ${attempt + 1} attempts)` : ""}`, { cause: err });
      }
      const parsed = parseBody(text);
      if (res.ok || options.accept?.includes(res.status)) return { status: res.status, body: parsed as T };
      if (isTransientStatus(res.status) && attempt < maxRetries) {
        await sleep(this.backoffMs(attempt + 1, retryAfter(res.headers)));
        continue;
      }
      const message = errorMessageOf(parsed) ?? (res.statusText || "error");
      throw new ApiError(res.status, `${method} ${url.pathname}: ${res.status} ${message}${attempt ? ` (after ${attempt + 1} attempts)` : ""}`, parsed);
    }
  }
}

function parseBody(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function retryAfter(headers: Headers): number | null {
  const v = headers.get("retry-after");
  if (v === null) return null;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** fetch's "fetch failed" hides the reason in `cause` (ECONNREFUSED, ECONNRESET, …). */
function describeCause(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause ? `${err.message} (${cause.code ?? cause.message ?? "unknown cause"})` : err.message;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
