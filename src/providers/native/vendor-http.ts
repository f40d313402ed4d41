import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { Agent, request, type Dispatcher } from "undici";
import { flattenHeaders, isTimeout } from "../http-upstream.js";
import type { VendorCall, VendorLimits } from "./native-api.js";
import { VendorError } from "./native-api.js";

/** What a vendor answered: status, lower-case headers, and the body as text. */
export interface VendorAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Body of a vendor call: JSON text, or pieces streamed in order (a large upload). */
export type VendorBody = string | AsyncIterable<string | Uint8Array>;

const RETRYABLE = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500;

/**
 * HTTP to a vendor's batch API: one keep-alive agent, a per-call timeout, and errors as VendorError (retryable for
 * 408/409/429/5xx and network errors, with the vendor's Retry-After). Absolute URLs are accepted (Anthropic's
 * `results_url`).
 */
export class VendorHttp {
  private readonly agent: Agent;

  constructor(
    private readonly name: string,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({ connections: 8, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** Sends one call and reads its whole answer. @throws VendorError for a non-2xx answer or none. */
  async call(method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body: VendorBody | null, signal: AbortSignal): Promise<VendorAnswer> {
    const res = await this.open(method, url, headers, body, signal);
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw this.noAnswer(err, signal);
    }
    const answer = { status: res.statusCode, headers: flattenHeaders(res.headers), text };
    if (res.statusCode < 200 || res.statusCode >= 300) throw errorOf(this.name, method, url, answer);
    return answer;
  }

  /** Sends one call and parses its JSON answer. @throws VendorError as `call`, or for a 2xx that is not JSON (retryable). */
  async json(method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body: VendorBody | null, signal: AbortSignal): Promise<Record<string, unknown>> {
    const answer = await this.call(method, url, headers, body, signal);
    try {
      const parsed = JSON.parse(answer.text) as unknown;
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // below
    }
    throw new VendorError(`${this.name}: ${method} ${pathOf(url)} answered ${answer.status} with a body that is not a JSON object: ${answer.text.slice(0, 200)}`, answer.status, true);
  }

  /**
   * The non-blank lines of a 2xx answer, as they arrive (a results file). @throws VendorError for a non-2xx answer, or
   * when the body breaks off (retryable; what was yielded before stays valid).
   */
  async *lines(url: string, headers: Record<string, string>, signal: AbortSignal): AsyncGenerator<string> {
    const res = await this.open("GET", url, headers, null, signal);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = await res.body.text().catch(() => "");
      throw errorOf(this.name, "GET", url, { status: res.statusCode, headers: flattenHeaders(res.headers), text });
    }
    try {
      for await (const line of createInterface({ input: res.body, crlfDelay: Infinity })) if (line.trim()) yield line;
    } catch (err) {
      throw this.noAnswer(err, signal);
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  private async open(method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body: VendorBody | null, signal: AbortSignal) {
    try {
      return await request(url, {
        method,
        headers,
        body: body === null ? undefined : typeof body === "string" ? body : Readable.from(body),
        signal,
        dispatcher: this.agent,
      });
    } catch (err) {
      throw this.noAnswer(err, signal);
    }
  }

  private noAnswer(err: unknown, signal: AbortSignal): unknown {
    if (signal.aborted) return signal.reason;
    if (err instanceof VendorError) return err;
    const what = isTimeout(err) ? `no answer within ${this.timeoutMs} ms` : (err as Error).message;
    return new VendorError(`${this.name}: ${what}`, null, true);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * What the three batch-API adapters share: their VendorHttp, limits, credentials and `close`. A subclass says how the
 * key is sent (`keyHeader`); a call's headers are the provider's, then the call's own (`extra`), then the key (the
 * call's key, a gateway batch's own, over the provider's).
 */
export abstract class VendorBatches {
  protected readonly http: VendorHttp;

  constructor(
    name: string,
    private readonly apiKey: string | undefined,
    private readonly headers: Record<string, string>,
    readonly limits: VendorLimits,
    timeoutMs: number,
  ) {
    this.http = new VendorHttp(name, timeoutMs);
  }

  /** The header(s) that carry an API key to this vendor. */
  protected abstract keyHeader(key: string): Record<string, string>;

  protected auth(call: VendorCall, extra: Record<string, string> = {}): Record<string, string> {
    const key = call.apiKey ?? this.apiKey;
    return { ...this.headers, ...extra, ...(key ? this.keyHeader(key) : {}) };
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

/**
 * The API root of a vendor whose `baseURL` is an origin: origin plus path without trailing slashes or a trailing
 * `/{version}` (tolerated), then `/{version}{rest}`. @throws TypeError when `baseURL` is not a URL.
 */
export function versionRoot(baseURL: string, version: string, rest = ""): string {
  const url = new URL(baseURL);
  return url.origin + url.pathname.replace(/\/+$/, "").replace(new RegExp(`/${version}$`), "") + `/${version}${rest}`;
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

/** The VendorError of a non-2xx answer, with the vendor's message when its body has one. */
function errorOf(name: string, method: string, url: string, a: VendorAnswer): VendorError {
  let message = a.text.slice(0, 500);
  try {
    const body = JSON.parse(a.text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof body.error === "string") message = body.error;
    else if (typeof body.error?.message === "string") message = body.error.message;
    else if (typeof body.message === "string") message = body.message;
  } catch {
    // not JSON: the text as it is
  }
  const retryAfter = Number(a.headers["retry-after"]);
  return new VendorError(`${name}: ${method} ${pathOf(url)} answered ${a.status}: ${message}`, a.status, RETRYABLE(a.status), Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : null);
}
