import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal, type LocalHttpServer } from "./local-http.js";

/** Capacity a LoadTarget enforces, the way a vendor does. */
export interface LoadTargetOptions {
  /**
   * Requests per second, enforced over a sliding window of `windowMs` (default 1 s): a request is accepted only if
   * fewer than `rps × windowMs / 1000` were accepted in the window `(now − windowMs, now]`. This is how vendors
   * quantize a per-minute limit (OpenAI: "60,000 RPM may be enforced as 1,000 requests per second").
   */
  rps: number;
  /** Length of the requests window, ms (default 1000). */
  windowMs?: number;
  /**
   * Tokens per minute, enforced over a sliding window of `tokensWindowMs` (default 60 s): a request is accepted only if
   * the tokens accepted in `(now − tokensWindowMs, now]` plus its own cost stay ≤ tpm × tokensWindowMs / 60 s.
   * Cost = `max_tokens` (or `max_completion_tokens`, 0 if absent) + ceil(prompt characters / 4), see `tokenCost`.
   * OpenBatch counts prompt tokens with a real tokenizer (o200k_base), so its count of the same request differs
   * (for short English prompts it is usually a little higher); tests check which way before comparing budgets.
   */
  tpm?: number;
  /** Length of the tokens window, ms (default 60 000; shorter quantizes the per-minute limit, as for requests). */
  tokensWindowMs?: number;
  /** Answer time of an accepted request, ms, uniform in [min, max]. Refusals (429) are answered at once. */
  latencyMs?: [number, number];
  /** Send OpenAI's x-ratelimit-* headers on every answer (default true). */
  headers?: boolean;
  /**
   * A hook run on every arrival before the capacity check: return a refusal to inject one (a 429 storm, a vendor
   * cool-down). `n` is the 1-based arrival number of this key. Injected refusals are counted in `rejected` too.
   */
  inject?: (arrival: { key: string; n: number; at: number }) => { status?: number; retryAfterMs?: number } | null;
}

/** One request the target accepted. `at` is the arrival time (epoch ms, sub-ms precision). */
export interface Accepted {
  at: number;
  key: string;
  tokens: number;
}

/** One request the target refused. */
export interface Rejected {
  at: number;
  key: string;
  status: number;
  /** The Retry-After it carried, ms (null when none). */
  retryAfterMs: number | null;
  reason: "requests" | "tokens" | "too_large" | "injected";
}

/** Epoch ms with sub-ms precision, monotonic within the process. */
const now = (): number => performance.timeOrigin + performance.now();

/**
 * Token cost of a chat request as the target counts it: max_tokens (or max_completion_tokens) + ceil(chars / 4) of every
 * message content (string, or the `text` of content parts).
 */
export function tokenCost(body: Record<string, unknown>): number {
  let chars = 0;
  const messages = body.messages;
  if (Array.isArray(messages)) {
    for (const m of messages as { content?: unknown }[]) {
      if (typeof m?.content === "string") chars += m.content.length;
      else if (Array.isArray(m?.content)) for (const p of m.content as { text?: unknown }[]) if (typeof p?.text === "string") chars += p.text.length;
    }
  }
  const maxOut = Number(body.max_tokens ?? body.max_completion_tokens ?? 0) || 0;
  return maxOut + Math.ceil(chars / 4);
}

/**
 * Go duration text, as OpenAI writes x-ratelimit-reset-*: "20ms", "1s", "1.5s", "6m0s", "1h2m3s".
 */
export function goDuration(ms: number): string {
  if (ms <= 0) return "0s";
  if (ms < 1000) return `${Math.max(1, Math.round(ms))}ms`;
  const totalS = Math.round(ms) / 1000;
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS - h * 3600) / 60);
  const s = +(totalS - h * 3600 - m * 60).toFixed(3);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * An OpenAI-compatible upstream on 127.0.0.1 that ENFORCES a capacity like a real vendor (see LoadTargetOptions) and
 * records what it accepted and refused, so a test can prove a budget was never exceeded.
 *
 * Over capacity it answers 429 at once with `retry-after` (whole seconds, rounded up, as OpenAI sends it),
 * `retry-after-ms` (exact: when the window will next admit this request) and the rate-limit headers.
 *
 * Rate-limit headers (when `headers`) are OpenAI's token-bucket reading of the per-minute limits: a bucket per limit,
 * holding `limit` when full, refilled at limit / 60 s, emptied by what the target accepts:
 * - `x-ratelimit-limit-requests` = rps × 60 and `x-ratelimit-limit-tokens` = tpm (per minute);
 * - `x-ratelimit-remaining-*` = the bucket's level (after this request), rounded down;
 * - `x-ratelimit-reset-*` = time until the bucket is full again, (limit − level) × 60 s / limit, in Go duration text
 *   ("25ms", "1s", "6m0s"), so a client can read the rate as (limit − remaining) / reset.
 * The buckets only report; admission is decided by the sliding windows above. Like OpenAI's, these headers do not
 * reveal the quantization: a client that bursts its "remaining" is refused; one that paces at limit / 60 s is not.
 */
export class LoadTarget {
  readonly accepted: Accepted[] = [];
  readonly rejected: Rejected[] = [];
  /** Arrivals per key (accepted or not). */
  readonly arrivals = new Map<string, number>();
  /** Accepted requests per key (key = first message content). */
  readonly perKey = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;
  url = "";

  private http: LocalHttpServer | null = null;
  /** Index of the oldest accepted request inside the requests window / the tokens window, and the tokens in it. */
  private reqHead = 0;
  private tokHead = 0;
  private tokSum = 0;
  private readonly windowMs: number;
  private readonly perWindow: number;
  private readonly tokensWindowMs: number;
  private readonly tokensPerWindow: number;
  /** Header buckets: level and when it was last refilled. */
  private readonly buckets = { requests: { level: 0, at: 0 }, tokens: { level: 0, at: 0 } };

  constructor(readonly options: LoadTargetOptions) {
    this.windowMs = options.windowMs ?? 1000;
    this.perWindow = (options.rps * this.windowMs) / 1000;
    this.tokensWindowMs = options.tokensWindowMs ?? 60_000;
    this.tokensPerWindow = ((options.tpm ?? Infinity) * this.tokensWindowMs) / 60_000;
    this.buckets.requests.level = this.rpm;
    this.buckets.tokens.level = options.tpm ?? 0;
    if (Math.floor(this.perWindow) < 1) throw new Error(`LoadTarget: rps ${options.rps} over ${this.windowMs} ms admits no request; use a longer windowMs`);
  }

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res), { keepAliveTimeoutMs: 60_000 });
    this.url = this.http.origin + "/v1";
    return this;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }

  /** Requests refused with 429 (capacity and injected). */
  get count429(): number {
    return this.rejected.filter((r) => r.status === 429).length;
  }

  get acceptedTotal(): number {
    return this.accepted.length;
  }

  /** Requests per minute the target allows (what x-ratelimit-limit-requests says). */
  get rpm(): number {
    return Math.round(this.options.rps * 60);
  }

  /**
   * The most requests (or tokens) accepted in any window `(t − windowMs, t]`: proof that a budget was never exceeded.
   */
  maxInAnyWindow(windowMs: number, what: "requests" | "tokens" = "requests"): number {
    const a = this.accepted;
    let best = 0;
    let sum = 0;
    let i = 0;
    for (let j = 0; j < a.length; j++) {
      sum += what === "tokens" ? a[j]!.tokens : 1;
      while (a[j]!.at - a[i]!.at >= windowMs) {
        sum -= what === "tokens" ? a[i]!.tokens : 1;
        i++;
      }
      best = Math.max(best, sum);
    }
    return best;
  }

  /** Arrivals (accepted and refused) with `from < at < to`, in time order. */
  arrivalsBetween(from: number, to: number): { at: number; key: string; accepted: boolean }[] {
    const all = [...this.accepted.map((a) => ({ at: a.at, key: a.key, accepted: true })), ...this.rejected.map((r) => ({ at: r.at, key: r.key, accepted: false }))];
    return all.filter((x) => x.at > from && x.at < to).sort((x, y) => x.at - y.at);
  }

  /** Accepted calls for a key. */
  count(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const at = now();
    if (req.method !== "POST" || !(req.url ?? "").endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}`, type: "invalid_request_error" } }));
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error" } }));
      return;
    }
    const key = keyOf(body);
    const n = (this.arrivals.get(key) ?? 0) + 1;
    this.arrivals.set(key, n);
    const tokens = tokenCost(body);

    const injected = this.options.inject?.({ key, n, at });
    if (injected) {
      this.refuse(res, { at, key, status: injected.status ?? 429, retryAfterMs: injected.retryAfterMs ?? null, reason: "injected" }, "Rate limit reached (injected).");
      return;
    }
    const decision = this.admit(at, tokens);
    if (decision) {
      this.refuse(res, { at, key, status: 429, ...decision }, decision.reason === "requests" ? `Rate limit reached for requests: limit ${this.rpm} / min.` : `Rate limit reached for tokens: limit ${this.options.tpm} / min, requested ${tokens}.`);
      return;
    }
    this.accepted.push({ at, key, tokens });
    this.tokSum += tokens;
    this.drain("requests", 1, at);
    if (this.options.tpm !== undefined) this.drain("tokens", tokens, at);
    this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
    const headers = this.rateHeaders(at);

    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) this.inFlight--;
      done = true;
    };
    res.on("close", finish);
    const [lo, hi] = this.options.latencyMs ?? [0, 0];
    const delay = lo + Math.random() * (hi - lo);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (res.destroyed) return finish();
    res.writeHead(200, { "content-type": "application/json", "x-request-id": `req_load_${this.accepted.length}`, ...headers }).end(JSON.stringify(answer(body, key, tokens)));
    finish();
  }

  /** @returns null to accept, or why not and when the window will admit this request. */
  private admit(at: number, tokens: number): { retryAfterMs: number | null; reason: Rejected["reason"] } | null {
    const a = this.accepted;
    while (this.reqHead < a.length && a[this.reqHead]!.at <= at - this.windowMs) this.reqHead++;
    while (this.tokHead < a.length && a[this.tokHead]!.at <= at - this.tokensWindowMs) this.tokSum -= a[this.tokHead++]!.tokens;
    const inWindow = a.length - this.reqHead;
    if (inWindow + 1 > this.perWindow) {
      // Oldest requests that must leave the window before one more fits.
      const leave = inWindow + 1 - Math.floor(this.perWindow);
      return { retryAfterMs: Math.max(1, a[this.reqHead + leave - 1]!.at + this.windowMs - at), reason: "requests" };
    }
    if (this.options.tpm !== undefined) {
      if (tokens > this.tokensPerWindow) return { retryAfterMs: null, reason: "too_large" };
      if (this.tokSum + tokens > this.tokensPerWindow) {
        let freed = 0;
        for (let i = this.tokHead; i < a.length; i++) {
          freed += a[i]!.tokens;
          if (this.tokSum - freed + tokens <= this.tokensPerWindow) return { retryAfterMs: Math.max(1, a[i]!.at + this.tokensWindowMs - at), reason: "tokens" };
        }
      }
    }
    return null;
  }

  /** Refills a header bucket to `at`, then takes `amount` from it. */
  private drain(kind: "requests" | "tokens", amount: number, at: number): void {
    this.refill(kind, at);
    this.buckets[kind].level = Math.max(0, this.buckets[kind].level - amount);
  }

  private refill(kind: "requests" | "tokens", at: number): void {
    const limit = kind === "requests" ? this.rpm : this.options.tpm ?? 0;
    const b = this.buckets[kind];
    b.level = Math.min(limit, b.level + ((at - b.at) * limit) / 60_000);
    b.at = at;
  }

  private rateHeaders(at: number): Record<string, string> {
    if (this.options.headers === false) return {};
    const h: Record<string, string> = {};
    const limits: ["requests" | "tokens", number | undefined][] = [["requests", this.rpm], ["tokens", this.options.tpm]];
    for (const [kind, limit] of limits) {
      if (limit === undefined) continue;
      this.refill(kind, at);
      const remaining = Math.floor(this.buckets[kind].level);
      h[`x-ratelimit-limit-${kind}`] = String(limit);
      h[`x-ratelimit-remaining-${kind}`] = String(remaining);
      h[`x-ratelimit-reset-${kind}`] = goDuration(((limit - this.buckets[kind].level) * 60_000) / limit);
    }
    return h;
  }

  private refuse(res: ServerResponse, r: Rejected, message: string): void {
    this.rejected.push(r);
    const headers: Record<string, string> = { "content-type": "application/json", ...this.rateHeaders(r.at) };
    if (r.retryAfterMs !== null) {
      headers["retry-after"] = String(Math.ceil(r.retryAfterMs / 1000));
      headers["retry-after-ms"] = String(Math.ceil(r.retryAfterMs));
    }
    const type = r.reason === "tokens" || r.reason === "too_large" ? "tokens" : "requests";
    res.writeHead(r.status, headers).end(JSON.stringify({ error: { message, type, param: null, code: r.status === 429 ? "rate_limit_exceeded" : null } }));
  }
}

/** First message content (string), as FakeUpstream keys calls. */
function keyOf(body: Record<string, unknown>): string {
  const messages = body.messages as { content?: unknown }[] | undefined;
  if (Array.isArray(messages) && typeof messages[0]?.content === "string") return messages[0].content;
  return JSON.stringify(body);
}

/** An OpenAI chat.completion that echoes the key, with usage as the target counts it. */
function answer(body: Record<string, unknown>, key: string, cost: number): unknown {
  const maxOut = Number(body.max_tokens ?? body.max_completion_tokens ?? 16) || 16;
  const completion = Math.min(maxOut, 4);
  const maxTokens = Number(body.max_tokens ?? body.max_completion_tokens ?? 0) || 0;
  const prompt = cost - maxTokens;
  return {
    id: "chatcmpl-load",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: String(body.model ?? "load-model"),
    choices: [{ index: 0, message: { role: "assistant", content: "echo: " + key }, logprobs: null, finish_reason: completion < maxOut ? "stop" : "length" }],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}
