/** Retry settings (config `retry`). */
export interface RetrySettings {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Upstream statuses worth another attempt: timeouts, conflicts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * Reads `retry-after-ms` (ms) or `retry-after` (seconds, or an HTTP date) from lower-cased response headers.
 * @returns the wait in ms, or null when absent or unreadable.
 */
export function retryAfterMs(headers: Record<string, string>, now = Date.now()): number | null {
  const ms = Number(headers["retry-after-ms"]);
  if (headers["retry-after-ms"] !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const ra = headers["retry-after"];
  if (ra === undefined) return null;
  const seconds = Number(ra);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/**
 * Delay before attempt `attempt + 1`, ms: exponential backoff with full jitter, capped at maxDelayMs; an upstream
 * Retry-After is a floor (honoured even above the cap).
 * @param attempt attempts made so far (≥ 1). @param random a [0,1) source, injectable for tests.
 */
export function backoffMs(attempt: number, settings: RetrySettings, retryAfter: number | null, random = Math.random): number {
  const exp = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  return retryAfter === null ? jittered : Math.max(retryAfter, jittered);
}
