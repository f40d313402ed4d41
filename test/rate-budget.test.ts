import { describe, expect, it } from "vitest";
import { MinuteBudget } from "../src/engine/minute-budget.js";
import { parseResetDuration, ProviderRateLimiter } from "../src/engine/rate-limiter.js";

/** Drives a budget with a simulated clock: each send waits as told, then spends. @returns the spend log. */
function simulate(budget: MinuteBudget, amounts: number[], gapMs: () => number) {
  const log: { at: number; amount: number }[] = [];
  let now = 0;
  for (const amount of amounts) {
    now += gapMs();
    for (let wait = budget.waitMs(amount, now); wait > 0; wait = budget.waitMs(amount, now)) now += wait;
    budget.spend(amount, now);
    log.push({ at: now, amount: Math.min(amount, budget.perMinute) });
  }
  return log;
}

function maxInWindow(log: { at: number; amount: number }[], windowMs: number): number {
  let best = 0;
  let sum = 0;
  let j = 0;
  for (let i = 0; i < log.length; i++) {
    sum += log[i]!.amount;
    while (log[j]!.at <= log[i]!.at - windowMs) sum -= log[j++]!.amount;
    best = Math.max(best, sum);
  }
  return best;
}

describe("a per-minute budget", () => {
  it("is never exceeded over any sliding 60 s window, whatever the arrival pattern", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (const perMinute of [30, 600, 2400]) {
      const budget = new MinuteBudget(perMinute);
      const log = simulate(budget, Array.from({ length: perMinute * 3 }, () => 1), () => (random() < 0.1 ? random() * 5000 : 0));
      expect(maxInWindow(log, 60_000)).toBeLessThanOrEqual(perMinute);
    }
  });

  it("paces sends evenly: one second never holds much more than a second's share", () => {
    const budget = new MinuteBudget(2400); // 40 per second
    const log = simulate(budget, Array.from({ length: 400 }, () => 1), () => 0);
    expect(maxInWindow(log, 1000)).toBeLessThanOrEqual(40 + 5);
    expect(log.at(-1)!.at).toBeGreaterThanOrEqual(9_000); // 400 sends at 40/s take ~10 s, not a burst
  });

  it("keeps token budgets too, and lets an item larger than the budget go alone", () => {
    const budget = new MinuteBudget(1000);
    const log = simulate(budget, [400, 400, 400, 5000, 100], () => 0);
    expect(maxInWindow(log, 60_000)).toBeLessThanOrEqual(1000);
    expect(log).toHaveLength(5);
  });
});

describe("rate-limit headers", () => {
  it("reads OpenAI reset durations", () => {
    expect(parseResetDuration("1s")).toBe(1000);
    expect(parseResetDuration("6m0s")).toBe(360_000);
    expect(parseResetDuration("20ms")).toBe(20);
    expect(parseResetDuration("1.5s")).toBe(1500);
    expect(parseResetDuration("2")).toBe(2000);
    expect(parseResetDuration("soon")).toBeNull();
    expect(parseResetDuration(undefined)).toBeNull();
  });

  it("adapts concurrency (AIMD) while no budget is known, and pauses on Retry-After", () => {
    const limiter = new ProviderRateLimiter(32, { modelBudgets: {} });
    expect(limiter.concurrency).toBe(4);
    expect(limiter.rpm).toBeNull();
    for (let i = 0; i < 4 + 5 + 6; i++) limiter.onAnswer(200, {}, 0);
    expect(limiter.concurrency).toBe(7);
    limiter.onAnswer(429, { "retry-after": "2" }, 10_000);
    expect(limiter.pausedUntil).toBe(12_000);
    expect(limiter.concurrency).toBe(3);
    limiter.onAnswer(429, {}, 10_500); // same overload episode: no second halving
    expect(limiter.concurrency).toBe(3);
    expect(limiter.throttled).toBe(2);
  });

  it("discovers budgets from headers (spent at 98 %), then lets the budget pace at full concurrency", () => {
    const limiter = new ProviderRateLimiter(32, { modelBudgets: {} });
    limiter.onAnswer(200, { "x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "100000" }, 0);
    expect(limiter.rpm).toBeCloseTo(588);
    expect(limiter.tpm).toBeCloseTo(98_000);
    expect(limiter.concurrency).toBe(32);
    limiter.onAnswer(429, { "retry-after-ms": "500" }, 1_000);
    expect(limiter.pausedUntil).toBe(1_500);
    expect(limiter.concurrency).toBe(32); // the budget and the pause hold the rate; no halving on top
    limiter.onAnswer(200, { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s" }, 20_000);
    expect(limiter.pausedUntil).toBe(25_000);
  });

  it("configured budgets keep the full concurrency and are not overridden by headers", () => {
    const limiter = new ProviderRateLimiter(16, { rpm: 120, modelBudgets: { "gpt-*": { tpm: 1000 } } });
    expect(limiter.concurrency).toBe(16);
    limiter.onAnswer(200, { "x-ratelimit-limit-requests": "9999" }, 0);
    expect(limiter.rpm).toBeCloseTo(117.6); // 98 % of the configured 120
    expect(limiter.needsTokenCost("gpt-4o")).toBe(true);
    expect(limiter.needsTokenCost("llama")).toBe(false);
  });
});
