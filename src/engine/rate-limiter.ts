import picomatch from "picomatch";
import type { ProviderBudgets } from "../providers/provider.js";
import { AdaptiveConcurrency } from "./adaptive-concurrency.js";
import { MinuteBudget } from "./minute-budget.js";
import { retryAfterMs } from "./retry-policy.js";


/** Budgets are spent at this share of the limit, so network jitter in arrival times does not cross the upstream's. */
const HEADROOM = 0.98;
/** Concurrency a provider without configured budgets starts from while its limits are discovered. */
const INITIAL_WINDOW = 4;
/** Shortest time between two multiplicative decreases, ms: one overload episode halves the window once. */
const DECREASE_COOLDOWN_MS = 1000;

/**
 * Rate limits of one provider: request and token budgets per minute (configured, or discovered from the upstream's
 * `x-ratelimit-*` headers) spent at 98 %, per-model budgets, a provider-wide pause after a 429 with Retry-After (or an
 * exhausted `remaining`), and, while no budget is known, an adaptive concurrency window: latency-aware (Vegas style,
 * engine/adaptive-concurrency.ts) once answers come with their latency, so a queueing server that never answers 429
 * is held where its throughput stops rising; before that (and for answers without a latency) AIMD, +1 per window's
 * worth of successes. Both halve on 429, 5xx or no answer. Once a request budget is known the window opens to
 * maxConcurrency.
 */
export class ProviderRateLimiter {
  private requests: MinuteBudget | null;
  private tokens: MinuteBudget | null;
  private readonly discoverRequests: boolean;
  private readonly discoverTokens: boolean;
  private readonly models: { match: (model: string) => boolean; requests: MinuteBudget | null; tokens: MinuteBudget | null }[];
  /** No new call starts before this time (ms). */
  pausedUntil = 0;
  /** Current concurrency window (AIMD); whole calls in flight allowed = floor(window). */
  private window: number;
  private successes = 0;
  private lastDecrease = 0;
  /** 429 answers seen. */
  throttled = 0;
  /** The latency-aware limit while no budget is known (null with budgets, or for an in-process provider). */
  private readonly adaptive: AdaptiveConcurrency | null;
  /** True once an answer came with its latency: the latency-aware limit drives the window from then on. */
  private sampled = false;

  /**
   * @param maxConcurrency ceiling of the window.
   * @param budgets configured budgets; null for an in-process provider (no limits, window fixed at the ceiling).
   */
  constructor(
    readonly maxConcurrency: number,
    budgets: ProviderBudgets | null,
  ) {
    this.requests = budgets?.rpm ? new MinuteBudget(budgets.rpm * HEADROOM) : null;
    this.tokens = budgets?.tpm ? new MinuteBudget(budgets.tpm * HEADROOM) : null;
    this.discoverRequests = budgets !== null && !budgets.rpm;
    this.discoverTokens = budgets !== null && !budgets.tpm;
    this.models = Object.entries(budgets?.modelBudgets ?? {}).map(([glob, b]) => ({
      match: picomatch(glob),
      requests: b.rpm ? new MinuteBudget(b.rpm * HEADROOM) : null,
      tokens: b.tpm ? new MinuteBudget(b.tpm * HEADROOM) : null,
    }));
    const adaptive = this.discoverRequests && this.discoverTokens;
    this.window = adaptive ? Math.min(INITIAL_WINDOW, maxConcurrency) : maxConcurrency;
    this.adaptive = adaptive ? new AdaptiveConcurrency({ initial: this.window, max: maxConcurrency }) : null;
  }

  /** The latency-aware limit in force (calls), or null while it does not drive the window (a budget is known, or no latency yet). */
  get adaptiveLimit(): number | null {
    return this.adaptiveInForce() ? this.adaptive!.limit : null;
  }

  /** The no-load latency the adaptive limit measures against, ms, or null while it does not drive the window. */
  get noLoadLatencyMs(): number | null {
    return this.adaptiveInForce() ? this.adaptive!.noLoadLatencyMs : null;
  }

  private adaptiveInForce(): boolean {
    return this.adaptive !== null && this.sampled && this.requests === null && this.tokens === null;
  }

  /** Calls this provider may have in flight now. */
  get concurrency(): number {
    return Math.max(1, Math.floor(this.window));
  }

  /** Requests per minute in force (configured or discovered), or null when none is known. */
  get rpm(): number | null {
    return this.requests?.perMinute ?? null;
  }

  /** Tokens per minute in force (configured or discovered), or null when none is known. */
  get tpm(): number | null {
    return this.tokens?.perMinute ?? null;
  }

  /** True when a send to `model` must know its token cost (some token budget applies). */
  needsTokenCost(model: string | null): boolean {
    return this.tokens !== null || this.modelBudgets(model).some((m) => m.tokens !== null);
  }

  /**
   * Waits until a call to `model` costing `tokens` fits every budget and no pause is in force, then spends it.
   * @throws the signal's reason when `signal` aborts while waiting.
   */
  async acquire(model: string | null, tokens: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const now = Date.now();
      const budgets = this.budgetsFor(model);
      let wait = this.pausedUntil - now;
      for (const b of budgets.requests) wait = Math.max(wait, b.waitMs(1, now));
      for (const b of budgets.tokens) wait = Math.max(wait, b.waitMs(tokens, now));
      if (wait <= 0) {
        for (const b of budgets.requests) b.spend(1, now);
        for (const b of budgets.tokens) b.spend(tokens, now);
        return;
      }
      await sleep(Math.ceil(wait), signal);
    }
  }

  /**
   * Learns from an upstream answer: discovered limits, exhausted budgets, Retry-After, and the concurrency window.
   * @param sample the call's latency (ms) and the calls in flight when it answered (itself included): what the
   * latency-aware limit learns from; an answer without one (a synchronous call) feeds AIMD until a sample arrives.
   */
  onAnswer(status: number, headers: Record<string, string>, now = Date.now(), sample?: { latencyMs: number; inFlight: number }): void {
    this.discover(headers, now);
    if (status === 429) {
      this.throttled++;
      const wait = retryAfterMs(headers, now);
      if (wait !== null) this.pausedUntil = Math.max(this.pausedUntil, now + wait);
      this.decrease(now);
    } else if (status >= 500) {
      this.decrease(now);
    } else if (status < 400) {
      if (sample && this.adaptive && this.requests === null && this.tokens === null) {
        this.sampled = true;
        this.adaptive.onSample(sample.latencyMs, sample.inFlight, now);
        this.window = Math.min(this.maxConcurrency, this.adaptive.limit);
      } else if (!this.adaptiveInForce()) this.increase();
    }
  }

  /** The upstream did not answer (reset, refused, timeout): back off like an overload. */
  onNoAnswer(now = Date.now()): void {
    this.decrease(now);
  }

  private increase(): void {
    if (this.window >= this.maxConcurrency) return;
    this.successes++;
    if (this.successes >= this.window) {
      this.successes = 0;
      this.window = Math.min(this.maxConcurrency, this.window + 1);
    }
  }

  private decrease(now: number): void {
    // With a request budget in force, the budget and the pause already hold the rate; halving concurrency as well
    // would starve a fast upstream (measured: 0.72-0.76 of capacity at 400 req/s, 0.94 without).
    if (this.requests !== null) return;
    if (this.adaptiveInForce()) {
      this.adaptive!.onOverload(now);
      this.window = this.adaptive!.limit;
      return;
    }
    if (now - this.lastDecrease < DECREASE_COOLDOWN_MS) return;
    this.lastDecrease = now;
    this.successes = 0;
    this.window = Math.max(1, this.window / 2);
  }

  private discover(headers: Record<string, string>, now: number): void {
    const limitRequests = Number(headers["x-ratelimit-limit-requests"]);
    if (this.discoverRequests && limitRequests > 0) {
      const perMinute = limitRequests * HEADROOM;
      if (!this.requests) {
        this.requests = new MinuteBudget(perMinute);
        // The budget paces sends from now on; concurrency only has to cover the latency.
        this.window = this.maxConcurrency;
      } else this.requests.perMinute = perMinute;
    }
    const limitTokens = Number(headers["x-ratelimit-limit-tokens"]);
    if (this.discoverTokens && limitTokens > 0) {
      const perMinute = limitTokens * HEADROOM;
      if (!this.tokens) this.tokens = new MinuteBudget(perMinute);
      else this.tokens.perMinute = perMinute;
    }
    for (const kind of ["requests", "tokens"] as const) {
      if (headers[`x-ratelimit-remaining-${kind}`] === "0") {
        const reset = parseResetDuration(headers[`x-ratelimit-reset-${kind}`]);
        if (reset !== null) this.pausedUntil = Math.max(this.pausedUntil, now + reset);
      }
    }
  }

  private modelBudgets(model: string | null) {
    return model === null ? [] : this.models.filter((m) => m.match(model));
  }

  private budgetsFor(model: string | null): { requests: MinuteBudget[]; tokens: MinuteBudget[] } {
    const requests: MinuteBudget[] = [];
    const tokens: MinuteBudget[] = [];
    if (this.requests) requests.push(this.requests);
    if (this.tokens) tokens.push(this.tokens);
    for (const m of this.modelBudgets(model)) {
      if (m.requests) requests.push(m.requests);
      if (m.tokens) tokens.push(m.tokens);
    }
    return { requests, tokens };
  }
}

/**
 * Parses an OpenAI rate-limit reset duration such as "1s", "6m0s", "20ms", "1.5s", "1h2m3s".
 * @returns ms, or null when absent or unreadable.
 */
export function parseResetDuration(text: string | undefined): number | null {
  if (!text) return null;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  let matched = "";
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    ms += Number(m[1]) * units[m[2]!]!;
    matched += m[0];
  }
  if (matched !== text) {
    const seconds = Number(text);
    return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : null;
  }
  return ms;
}

/**
 * Waits `ms` milliseconds, or until `signal` aborts.
 * @throws the signal's reason when it aborts first.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
