import type { Provider } from "../providers/provider.js";
import { MinuteBudget } from "./minute-budget.js";
import { parseResetDuration, ProviderRateLimiter, sleep } from "./rate-limiter.js";
import { retryAfterMs } from "./retry-policy.js";

/** The share of a limit spent, as ProviderRateLimiter does, so arrival jitter does not cross the upstream's limit. */
const HEADROOM = 0.98;

/**
 * What several workers on one shared store agree on about a provider's budgets (store/postgres/budgets.ts keeps it in
 * PostgreSQL): this worker's share of them, and a pause any worker set.
 */
export interface BudgetCoordinator {
  /** This worker's share, in (0, 1], of a provider's rpm and tpm: 1 / the live workers that have the provider. */
  share(provider: string): number;
  /** Unix ms before which no worker may call the provider (a Retry-After one of them was told); 0 when none. */
  pausedUntil(provider: string): number;
  /** Pauses the provider for every worker until `until` (unix ms); a later pause already set stays. */
  pause(provider: string, until: number): Promise<void>;
  /**
   * Reserves the provider's next send slot on one schedule all workers share, slots `intervalMs` apart (60 s ÷ the
   * rpm spent). @returns ms from now until this worker's slot (0 when it is now). Optional: without it, each worker
   * paces its own share of the rpm.
   * @throws when the shared schedule cannot be reached (the caller falls back to its share).
   */
  reserveSlot?(provider: string, intervalMs: number): Promise<number>;
}

/**
 * A provider's rate limiter when many workers share its budgets: everything ProviderRateLimiter does locally, plus
 * this worker's share of each request and token budget (configured, or discovered from `x-ratelimit-limit-*` headers),
 * rebalanced as workers come and go, and pauses shared with every worker. N workers together therefore stay within the
 * budget, each spending it evenly (GCRA pacing, minute-budget.ts), while all are busy.
 */
export class SharedRateLimiter extends ProviderRateLimiter {
  private readonly rpmLimit: number | null;
  private readonly tpmLimit: number | null;
  private discoveredRpm: number | null = null;
  private discoveredTpm: number | null = null;
  private requestShare: MinuteBudget | null = null;
  private tokenShare: MinuteBudget | null = null;

  constructor(
    private readonly provider: Pick<Provider, "name" | "maxConcurrency" | "budgets">,
    private readonly coordinator: BudgetCoordinator,
  ) {
    super(provider.maxConcurrency, provider.budgets);
    this.rpmLimit = provider.budgets?.rpm ?? null;
    this.tpmLimit = provider.budgets?.tpm ?? null;
  }

  /** This worker's request budget per minute now (its share of the provider's), or null when none is known. */
  get sharedRpm(): number | null {
    const rpm = this.rpmLimit ?? this.discoveredRpm;
    return rpm === null ? null : rpm * HEADROOM * this.coordinator.share(this.provider.name);
  }

  /** The per-minute share budgets, made or resized to the current share. */
  private shares(): { requests: MinuteBudget | null; tokens: MinuteBudget | null } {
    const share = this.coordinator.share(this.provider.name);
    const rpm = this.rpmLimit ?? this.discoveredRpm;
    const tpm = this.tpmLimit ?? this.discoveredTpm;
    if (rpm !== null) {
      if (!this.requestShare) this.requestShare = new MinuteBudget(rpm * HEADROOM * share);
      else this.requestShare.perMinute = rpm * HEADROOM * share;
    }
    if (tpm !== null) {
      if (!this.tokenShare) this.tokenShare = new MinuteBudget(tpm * HEADROOM * share);
      else this.tokenShare.perMinute = tpm * HEADROOM * share;
    }
    return { requests: this.requestShare, tokens: this.tokenShare };
  }

  /**
   * Waits until the shared pause is over and the call fits this worker's share, then the local limits (per-model
   * budgets, local pause), then spends the share; with a shared schedule (`reserveSlot`), the request then waits for
   * its slot on it. @throws the signal's reason when `signal` aborts while waiting.
   */
  override async acquire(model: string | null, tokens: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.waitShare(tokens, signal);
      await super.acquire(model, tokens, signal);
      const now = Date.now();
      const { requests, tokens: tokenBudget } = this.shares();
      const scheduled = this.coordinator.reserveSlot !== undefined && requests !== null;
      // The local wait may have outlasted a pause or share set meanwhile: check again before spending.
      const wait = Math.max(this.coordinator.pausedUntil(this.provider.name) - now, scheduled ? 0 : (requests?.waitMs(1, now) ?? 0), tokenBudget?.waitMs(tokens, now) ?? 0);
      if (wait <= 0) {
        tokenBudget?.spend(tokens, now);
        if (scheduled) await this.waitSlot(requests, signal);
        else requests?.spend(1, now);
        return;
      }
    }
  }

  /**
   * Waits for this request's slot on the schedule every worker shares. Measured (bench/scale-out.ts, 3 workers at rpm
   * = the upstream's capacity, 1 s sliding window): each worker pacing its own third drew 5.7 % 429s, as independent
   * pacers line up in some windows and a new worker spends a whole share before it counts the others; one schedule
   * spaces every send 60 s ÷ rpm apart whoever sends it. When the schedule cannot be reached, the worker's own share
   * paces the request instead.
   */
  private async waitSlot(share: MinuteBudget, signal: AbortSignal): Promise<void> {
    const rpm = (this.rpmLimit ?? this.discoveredRpm)! * HEADROOM;
    let delay: number;
    try {
      delay = await this.coordinator.reserveSlot!(this.provider.name, 60_000 / rpm);
    } catch {
      for (let now = Date.now(); share.waitMs(1, now) > 0; now = Date.now()) await sleep(Math.ceil(share.waitMs(1, now)), signal);
      share.spend(1, Date.now());
      return;
    }
    if (delay > 0) await sleep(Math.ceil(delay), signal);
  }

  private async waitShare(tokens: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const now = Date.now();
      const { requests, tokens: tokenBudget } = this.shares();
      const scheduled = this.coordinator.reserveSlot !== undefined;
      const wait = Math.max(this.coordinator.pausedUntil(this.provider.name) - now, scheduled ? 0 : (requests?.waitMs(1, now) ?? 0), tokenBudget?.waitMs(tokens, now) ?? 0);
      if (wait <= 0) return;
      await sleep(Math.ceil(wait), signal);
    }
  }

  /** Learns locally (ProviderRateLimiter), discovers limits for the share, and shares any pause with every worker. */
  override onAnswer(...args: Parameters<ProviderRateLimiter["onAnswer"]>): void {
    super.onAnswer(...args);
    const [status, headers] = args;
    const now = Date.now();
    const budgets = this.provider.budgets;
    const limitRequests = Number(headers["x-ratelimit-limit-requests"]);
    if (budgets !== null && !budgets.rpm && limitRequests > 0) this.discoveredRpm = limitRequests;
    const limitTokens = Number(headers["x-ratelimit-limit-tokens"]);
    if (budgets !== null && !budgets.tpm && limitTokens > 0) this.discoveredTpm = limitTokens;
    let until = 0;
    if (status === 429) {
      const wait = retryAfterMs(headers, now);
      if (wait !== null) until = now + wait;
    }
    for (const kind of ["requests", "tokens"] as const) {
      if (headers[`x-ratelimit-remaining-${kind}`] === "0") {
        const reset = parseResetDuration(headers[`x-ratelimit-reset-${kind}`]);
        if (reset !== null) until = Math.max(until, now + reset);
      }
    }
    if (until > now) void this.coordinator.pause(this.provider.name, until).catch(() => undefined);
  }
}
