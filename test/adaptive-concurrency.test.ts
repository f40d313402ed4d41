import { describe, expect, it } from "vitest";
import { AdaptiveConcurrency, upstreamLatency } from "../src/engine/adaptive-concurrency.js";
import { ProviderRateLimiter } from "../src/engine/rate-limiter.js";

/** What the client side of the simulation adds to what the server does, as the real engine sees it. */
interface ClientShape {
  /** Service time spread, share (0: every call takes exactly serviceMs, so the server runs in rounds). */
  jitter?: number;
  /** Upward noise on each measured latency, ms: our event loop answering late (mean of a uniform 0..2×). */
  noiseMs?: number;
  /** Measured latencies are this much higher until `busyUntilMs` (the upload still being stored at the start). */
  busyFactor?: number;
  busyUntilMs?: number;
  /** A call keeps its slot this long after its answer (the outcome's commit), ms. */
  holdMs?: number;
}

/**
 * A queueing server in simulated time: `slots` requests served at once, each taking `serviceMs` (± jitter from a
 * seeded generator), the rest waiting in an unlimited FIFO queue; never a 429. A client keeps `limit()` calls in
 * flight (a call counts until `holdMs` after its answer) and tells the limiter of each answer with its measured
 * latency. No wall time is read: the clock is the simulation's.
 */
class QueueSim {
  now = 0;
  slots: number;
  private free: number[];
  /** Answers to come, by time. */
  private answers: { at: number; sent: number }[] = [];
  /** Times at which answered calls give their slot back. */
  private releases: number[] = [];
  /** Calls sent and not yet given back. */
  private outstanding = 0;
  private seed = 42;
  private readonly shape: Required<ClientShape>;

  constructor(
    slots: number,
    private serviceMs: number,
    shape: ClientShape = {},
  ) {
    this.slots = slots;
    this.free = Array(slots).fill(0);
    this.shape = { jitter: 0.1, noiseMs: 0, busyFactor: 1, busyUntilMs: 0, holdMs: 0, ...shape };
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
    const end = start + this.serviceMs * (1 + this.shape.jitter * (2 * this.random() - 1));
    this.free[i] = end;
    this.answers.push({ at: end, sent: this.now });
    this.answers.sort((a, b) => a.at - b.at);
    this.outstanding++;
  }

  private measured(latencyMs: number): number {
    const busy = this.now < this.shape.busyUntilMs ? this.shape.busyFactor : 1;
    return latencyMs * busy + this.shape.noiseMs * 2 * this.random();
  }

  /**
   * Runs `answers` completions. @returns per answer the limit after it, and the server-side latency; and
   * throughput, answers/s.
   */
  run(answers: number, limit: () => number, answered: (latencyMs: number, inFlight: number, now: number) => void) {
    const limits: number[] = [];
    const latencies: number[] = [];
    const t0 = this.now;
    while (limits.length < answers) {
      while (this.outstanding < limit()) this.send();
      if (this.releases.length > 0 && (this.answers.length === 0 || this.releases[0]! < this.answers[0]!.at)) {
        this.now = this.releases.shift()!;
        this.outstanding--;
        continue;
      }
      const c = this.answers.shift()!;
      this.now = c.at;
      answered(this.measured(c.at - c.sent), this.outstanding, this.now);
      this.releases.push(this.now + this.shape.holdMs);
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

/** What the engine around the limiter looks like against the bench's queueing fake (bench/fake-embeddings.ts). */
const ENGINE_LIKE: ClientShape = { jitter: 0, noiseMs: 4, busyFactor: 1.4, busyUntilMs: 1500, holdMs: 3 };

/** Throughput of the best fixed concurrency of the bench's sweep, answers/s, on the same simulated server. */
function bestFixed(slots: number, serviceMs: number, answers: number): number {
  return Math.max(...[4, 8, 12, 16, 256].map((c) => new QueueSim(slots, serviceMs, ENGINE_LIKE).run(answers, () => c, () => {}).perS));
}

describe("latency-aware adaptive concurrency (simulated queueing server)", () => {
  for (const max of [16, 256]) {
    it(`maxConcurrency ${max}: ≥ 0.95 of the best fixed concurrency with p50 ≤ 1.5× unloaded, the limit near the slot count`, () => {
      const sim = new QueueSim(8, 200, ENGINE_LIKE);
      const ac = new AdaptiveConcurrency({ initial: 4, max });
      // 800 answers from a cold start, as in bench/coalesce.ts: the ramp counts.
      const r = sim.run(800, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
      const best = bestFixed(8, 200, 800);
      expect(r.perS / best, `throughput ratio (limits p50 ${median(r.limits)})`).toBeGreaterThanOrEqual(0.95);
      expect(median(r.latencies), "p50 latency").toBeLessThanOrEqual(1.5 * 200);
      // Past the ramp the limit neither follows the configured max into the queue nor falls below the slots.
      expect(within(r.limits.slice(200), 8, 12), `limit band (p50 ${median(r.limits)})`).toBeGreaterThanOrEqual(0.9);
    });
  }

  it("maxConcurrency 256 follows the slot count 8 → 16 → 4 → 8: held within [slots, 1.5 × slots], full throughput", () => {
    const sim = new QueueSim(8, 200, ENGINE_LIKE);
    const ac = new AdaptiveConcurrency({ initial: 4, max: 256 });
    const step = (n: number) => sim.run(n, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
    step(1000); // converge
    for (const slots of [8, 16, 4, 8]) {
      if (slots !== sim.slots) {
        sim.setSlots(slots);
        step(Math.max(500, slots * 60));
      }
      const r = step(2000);
      // Probes halve the limit for a round trip now and then: 90 % of answers, not all.
      expect(within(r.limits, slots, Math.ceil(slots * 1.5)), `limit band at ${slots} slots: p50 ${median(r.limits)}`).toBeGreaterThanOrEqual(0.9);
      expect(r.perS, `throughput at ${slots} slots`).toBeGreaterThanOrEqual(0.95 * (slots / 0.2));
      expect(median(r.latencies), `p50 latency at ${slots} slots`).toBeLessThanOrEqual(1.5 * 200);
    }
  });

  it("follows a server whose own latency rises (a probe re-measures the no-load latency)", () => {
    for (const shape of [{}, ENGINE_LIKE]) {
      const sim = new QueueSim(8, 200, shape);
      const ac = new AdaptiveConcurrency({ initial: 4, max: 256 });
      const step = (n: number) => sim.run(n, () => ac.limit, (l, f, t) => ac.onSample(l, f, t));
      step(1000);
      sim.setServiceMs(400);
      step(1000);
      const r = step(2000);
      expect(within(r.limits, 8, 12), `limit band: p50 ${median(r.limits)}`).toBeGreaterThanOrEqual(0.9);
      expect(r.perS).toBeGreaterThanOrEqual(0.95 * (8 / 0.4));
      // Re-measured (it was 200): within the ±10 % service-time spread of 400.
      expect(ac.noLoadLatencyMs!).toBeGreaterThanOrEqual(360);
    }
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

describe("upstreamLatency: what of a call's latency is the upstream's", () => {
  it("keeps the whole latency while our event loop has slack, and takes out its busy share once it is saturated", () => {
    // A 200 ms call while the loop was 30 % busy: the loop did not hold the answer back 60 ms.
    expect(upstreamLatency(200, 0.3)).toBe(200);
    expect(upstreamLatency(200, 0)).toBe(200);
    // Saturated (an in-process upstream answering through our own loop): the busy share is our queue.
    expect(upstreamLatency(100, 0.95)).toBeCloseTo(5);
    expect(upstreamLatency(100, 1)).toBe(0);
    // In between it takes out more as the loop gets busier, and never more than the busy share.
    const mid = [0.5, 0.6, 0.7, 0.8, 0.9].map((b) => upstreamLatency(100, b));
    for (let i = 1; i < mid.length; i++) expect(mid[i]!).toBeLessThan(mid[i - 1]!);
    for (const [i, b] of [0.5, 0.6, 0.7, 0.8, 0.9].entries()) expect(mid[i]!).toBeGreaterThanOrEqual(100 * (1 - b) - 1e-9);
  });
});
