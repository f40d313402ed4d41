import { describe, expect, it } from "vitest";
import { AdaptiveConcurrency } from "../src/engine/adaptive-concurrency.js";
import { ProviderRateLimiter } from "../src/engine/rate-limiter.js";

/**
 * A queueing server in simulated time: `slots` requests served at once, each taking `serviceMs` (± jitter from a
 * seeded generator), the rest waiting in an unlimited FIFO queue; never a 429. A client keeps `limit()` calls in
 * flight and tells the limiter of each answer. No wall time is read: the clock is the simulation's.
 */
class QueueSim {
  now = 0;
  slots: number;
  private free: number[];
  private done: { at: number; sent: number }[] = [];
  private seed = 42;
  constructor(
    slots: number,
    private serviceMs: number,
    private readonly jitter = 0.1,
  ) {
    this.slots = slots;
    this.free = Array(slots).fill(0);
  }

  /** Changes the server's parallelism from now on. */
  setSlots(n: number): void {
    const busy = this.free.slice().sort((a, b) => b - a);
    this.free = n > busy.length ? [...busy, ...Array(n - busy.length).fill(this.now)] : busy.slice(busy.length - n);
    this.slots = n;
  }

  setServiceMs(ms: number): void {
    this.serviceMs = ms;
  }

  private random(): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2147483648;
    return this.seed / 2147483648;
  }

  private send(): void {
    // FIFO: each arrival takes the slot that frees first.
    let i = 0;
    for (let j = 1; j < this.free.length; j++) if (this.free[j]! < this.free[i]!) i = j;
    const start = Math.max(this.now, this.free[i]!);
    const end = start + this.serviceMs * (1 + this.jitter * (2 * this.random() - 1));
    this.free[i] = end;
    this.done.push({ at: end, sent: this.now });
    this.done.sort((a, b) => a.at - b.at);
  }

  /**
   * Runs `answers` completions. @returns per answer the limit after it, and the latency; and throughput, answers/s.
   */
  run(answers: number, limit: () => number, answered: (latencyMs: number, inFlight: number, now: number) => void) {
    const limits: number[] = [];
    const latencies: number[] = [];
    const t0 = this.now;
    for (let n = 0; n < answers; n++) {
      while (this.done.length < limit()) this.send();
      const c = this.done.shift()!;
      this.now = c.at;
      answered(c.at - c.sent, this.done.length + 1, this.now);
      limits.push(limit());
      latencies.push(c.at - c.sent);
    }
    return { limits, latencies, perS: (answers / (this.now - t0)) * 1000 };
  }
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Share of `xs` within [lo, hi]. */
function within(xs: number[], lo: number, hi: number): number {
  return xs.filter((x) => x >= lo && x <= hi).length / xs.length;
}

describe("latency-aware adaptive concurrency (simulated queueing server)", () => {
  it("settles just above the server's slot count: full throughput, p50 latency ≤ 1.5× unloaded, and follows slot changes", () => {
    const sim = new QueueSim(8, 200);
    const ac = new AdaptiveConcurrency({ initial: 4, max: 256 });
    const step = (n: number) => sim.run(n, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
    step(1000); // converge
    for (const slots of [8, 16, 4, 8]) {
      if (slots !== sim.slots) {
        sim.setSlots(slots);
        step(1500);
      }
      const r = step(2000);
      // The limit stays in a band around the slot count (probes halve it briefly now and then).
      expect(within(r.limits, slots, Math.ceil(slots * 1.5)), `limit band at ${slots} slots: ${median(r.limits)}`).toBeGreaterThanOrEqual(0.9);
      // Throughput is the server's (slots / service time) and latency stays near its no-load value.
      expect(r.perS, `throughput at ${slots} slots`).toBeGreaterThanOrEqual(0.95 * (slots / 0.2));
      expect(median(r.latencies), `p50 latency at ${slots} slots`).toBeLessThanOrEqual(1.5 * 200);
    }
  });

  it("follows a server whose own latency rises (probe re-measures the no-load latency)", () => {
    const sim = new QueueSim(8, 200);
    const ac = new AdaptiveConcurrency({ initial: 4, max: 256 });
    const step = (n: number) => sim.run(n, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
    step(1000);
    sim.setServiceMs(400);
    step(3000);
    const r = step(2000);
    expect(within(r.limits, 8, 12)).toBeGreaterThanOrEqual(0.9);
    expect(r.perS).toBeGreaterThanOrEqual(0.95 * (8 / 0.4));
  });

  it("never passes maxConcurrency, and halves on overload", () => {
    const ac = new AdaptiveConcurrency({ initial: 4, max: 6 });
    const sim = new QueueSim(64, 100);
    sim.run(500, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
    expect(ac.limit).toBe(6);
    ac.onOverload(sim.now);
    expect(ac.limit).toBe(3);
  });

  it("drives ProviderRateLimiter's window while no budget is known, and gives way to a discovered one", () => {
    const limiter = new ProviderRateLimiter(256, { modelBudgets: {} });
    const sim = new QueueSim(8, 200);
    const r = sim.run(3000, () => limiter.concurrency, (latencyMs, inFlight, now) => limiter.onAnswer(200, {}, now, { latencyMs, inFlight }));
    expect(within(r.limits.slice(1000), 8, 12)).toBeGreaterThanOrEqual(0.9);
    expect(limiter.adaptiveLimit).toBe(limiter.concurrency);
    limiter.onAnswer(200, { "x-ratelimit-limit-requests": "600" }, sim.now);
    expect(limiter.adaptiveLimit).toBeNull();
    expect(limiter.concurrency).toBe(256);
  });
});
