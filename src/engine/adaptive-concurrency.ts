/**
 * A latency-aware concurrency limit (Vegas style) for upstreams that queue instead of answering 429 (vLLM, Ollama,
 * llama.cpp server, TGI): past the server's own parallelism more calls in flight only wait in its queue, so
 * throughput stops rising while latency grows. The limit is set where throughput stops rising and held a little
 * above it, so the server never idles and its queue stays short.
 *
 * A window judges only calls sent since it opened (under the limit in force), at least max(8, limit) of them:
 * rtt = their mean latency and n = the mean calls in flight when they answered. The no-load latency `baseRtt` (a
 * mean too) is measured by probes (below), set by the first window, and lowered when two windows in a row agree on a
 * lower rtt (one window's noise does not lower it). When rtt is within 10 % + `toleranceMs` of baseRtt nothing
 * queues: the limit grows (doubling until two windows in a row saw a queue, then +max(1, 10 %)) provided the window
 * used the whole limit. Otherwise the server serves est = n × baseRtt ÷ rtt calls at once (Little's law: the rest
 * wait in its queue); the limit is kept within [1.1, 1.33] × est: above it drops to 1.25 × est, below it grows by
 * one. A 429, 5xx or a call without answer halves it (once a second).
 *
 * The mean, not the median: a server that serves in rounds (all slots start together) answers its queued calls in
 * the next round, and the median stays at the no-load latency until more than half the calls wait (limit > 2 ×
 * slots); the mean is what Little's law relates to the calls in flight. Fresh calls only: a call sent before a
 * change saw the old limit's queue, so after a cut the still-draining queue would read as a server serving far
 * fewer calls than it does, and after a doubling half the window would still look unqueued. Means on both sides,
 * not the lowest latency as a no-load value: service times vary (an LLM's answers differ in length), and a window's
 * minimum lies well below the no-load mean, so every window would read as queueing.
 *
 * A probe re-measures the no-load latency, for a server whose own latency rose (a slower model, longer inputs): the
 * limit is halved (or set to half the est of the last window that saw a queue, if lower) until at least 8, and two
 * rounds, of calls started after the cut have answered; their mean latency becomes baseRtt and the limit is restored
 * (doubling again if baseRtt rose by more than 25 %). Probes run after window 4 (the first windows run while the
 * upload is still being stored and may measure a too high baseRtt, which no queued window could lower), then every
 * `probeEvery` windows, and at once when a second cut in a row finds the server serving under 0.75 × the calls at
 * once the first cut measured (cutting took throughput away, so the "queue" is a server that got slower). Faster
 * servers lower baseRtt by themselves.
 *
 * Time comes from the caller (`now`, ms), so the algorithm runs unchanged in a simulated clock (see
 * test/adaptive-concurrency.test.ts).
 */
export interface AdaptiveConcurrencySettings {
  /** Starting limit (default 4). */
  initial?: number;
  /** Highest limit (maxConcurrency). */
  max: number;
  /** Latency above the no-load latency (besides 10 % of it) that does not count as queueing, ms (default 5: timers, loopback). */
  toleranceMs?: number;
  /** Windows between two probes of the no-load latency (default 40). */
  probeEvery?: number;
}

/** Fewest answers a window judges on. */
const MIN_WINDOW = 8;
/** Shortest time between two halvings, ms: one overload episode halves the limit once. */
const DECREASE_COOLDOWN_MS = 1000;
/**
 * Share of the no-load latency a window's mean may exceed it by without counting as a queue: service times vary
 * (a mean of 8 answers spread ±30 % moves ±6 %), and our own event loop answers late now and then.
 */
const QUEUE_SHARE = 0.1;
/** The band the limit is held in, as multiples of the calls the server serves at once. */
const BAND_LOW = 1.1;
const BAND_TARGET = 1.25;
const BAND_HIGH = 1.33;
/** Two cuts in a row with the second window's est below this share of the first's: the server got slower. */
const SLOWER_SERVER = 0.75;
/** Windows before the first scheduled probe. */
const FIRST_PROBE = 4;
/**
 * A probe that finds the no-load latency risen by this factor starts the search (doubling) again: a probe averages
 * 8 or more answers, ±6 % of noise with service times spread ±30 %; a server that got slower reads ~100 % higher.
 */
const SEARCH_AGAIN = 1.25;

interface Window {
  /** When it opened, ms: calls sent before saw the previous limit's queue. */
  start: number;
  /** Calls sent since `start` that answered: their summed latency (ms) and calls in flight at their answers. */
  count: number;
  sumLatency: number;
  sumInFlight: number;
  maxInFlight: number;
}

/** One provider's latency-aware limit (see the module docstring); fed by ProviderRateLimiter while no budget is known. */
export class AdaptiveConcurrency {
  private value: number;
  private readonly max: number;
  private readonly toleranceMs: number;
  private readonly probeEvery: number;
  /** No-load latency, ms (Infinity until the first window closes). */
  private baseRtt = Infinity;
  private slowStart = true;
  private windows = 0;
  private lastDecrease = -Infinity;
  /** The calls the server served at once by the window that last cut the limit (0: the last window did not cut). */
  private cutAtEst = 0;
  /** The last window saw a queue. */
  private queuedLast = false;
  /** The calls the server served at once by the last window that saw a queue (Infinity before one did). */
  private queuedEst = Infinity;
  /** The previous window's rtt, ms. */
  private lastRtt = Infinity;
  /** The window count at which the next scheduled probe runs. */
  private nextProbe = FIRST_PROBE;
  private window: Window | null = null;
  private probe: { start: number; restore: number; latencies: number[]; need: number } | null = null;

  constructor(settings: AdaptiveConcurrencySettings) {
    this.max = Math.max(1, settings.max);
    this.value = Math.min(this.max, Math.max(1, settings.initial ?? 4));
    this.toleranceMs = settings.toleranceMs ?? 5;
    this.probeEvery = settings.probeEvery ?? 40;
  }

  /** Calls allowed in flight now (≥ 1). */
  get limit(): number {
    return Math.max(1, Math.round(this.value));
  }

  /** The no-load latency in force, ms, or null before the first measurement. */
  get noLoadLatencyMs(): number | null {
    return Number.isFinite(this.baseRtt) ? this.baseRtt : null;
  }

  /**
   * One successful call's answer.
   * @param latencyMs time from sending to the answer; @param inFlight calls in flight when it answered (itself
   * included); @param now the clock, ms.
   */
  onSample(latencyMs: number, inFlight: number, now: number): void {
    if (!(latencyMs >= 0)) return;
    if (this.probe) return this.probeSample(latencyMs, now);
    const w = (this.window ??= openWindow(now - latencyMs));
    w.maxInFlight = Math.max(w.maxInFlight, inFlight);
    if (now - latencyMs < w.start) return; // sent under the previous limit (see the module docstring)
    w.count++;
    w.sumLatency += latencyMs;
    w.sumInFlight += inFlight;
    // At least 8 answers: a small limit's window would judge on the noise of two or three latencies.
    if (w.count < Math.max(MIN_WINDOW, this.limit)) return;
    this.window = openWindow(now);
    this.decide(w.sumLatency / w.count, w.sumInFlight / w.count, w.maxInFlight >= this.limit, now);
  }

  /** The upstream was overloaded (429, 5xx) or did not answer: halve, at most once per second. */
  onOverload(now: number): void {
    if (now - this.lastDecrease < DECREASE_COOLDOWN_MS) return;
    this.lastDecrease = now;
    this.slowStart = false;
    this.cutAtEst = 0;
    if (this.probe) {
      this.value = this.probe.restore;
      this.probe = null;
    }
    this.value = Math.max(1, this.value / 2);
    this.window = null;
  }

  /**
   * @param rtt the window's mean latency, ms; @param inFlight mean calls in flight at its answers; @param full
   * whether it used the whole limit.
   */
  private decide(rtt: number, inFlight: number, full: boolean, now: number): void {
    const cutAtEst = this.cutAtEst;
    this.cutAtEst = 0;
    // Lowered only to what two windows in a row saw: one window's noise does not set it.
    this.baseRtt = Number.isFinite(this.baseRtt) ? Math.min(this.baseRtt, Math.max(rtt, this.lastRtt)) : rtt;
    this.lastRtt = rtt;
    if (rtt <= this.baseRtt * (1 + QUEUE_SHARE) + this.toleranceMs) {
      this.queuedLast = false;
      if (full) this.value = Math.min(this.max, this.slowStart ? this.value * 2 : this.value + Math.max(1, this.value * 0.1));
    } else {
      // One queued window may be the noise of a busy start (the upload still being stored): slow start ends on the
      // second in a row. The cut below applies either way, so an overshoot is taken back at once.
      if (this.queuedLast) this.slowStart = false;
      this.queuedLast = true;
      const est = Math.max(1, (inFlight * this.baseRtt) / rtt);
      this.queuedEst = est;
      if (this.value > est * BAND_HIGH) {
        // The previous window cut too, and the server now completes far fewer calls at once: the cut took away
        // throughput, so what reads as a queue is a slower server (a queue of our own would have served the same).
        // Re-measure its no-load latency instead of cutting towards 1.
        if (est < cutAtEst * SLOWER_SERVER) return this.startProbe(now);
        this.value = Math.max(1, est * BAND_TARGET);
        // Not after a cut in slow start: the window right after a doubling is a transient (the first round of the
        // doubled limit), whose est is off by a third either way; what follows it is no evidence of a slower server.
        if (!this.slowStart) this.cutAtEst = est;
      } else if (this.value < est * BAND_LOW && full) this.value = Math.min(this.max, this.value + 1);
    }
    if (++this.windows >= this.nextProbe) {
      this.nextProbe = this.windows + this.probeEvery;
      this.startProbe(now);
    }
  }

  private startProbe(now: number): void {
    // Half the calls the server was last seen serving, when that is below the limit: a limit set against a too high
    // baseRtt is itself too high, and half of it could still queue (the probe would then measure a queue).
    const cut = Math.max(1, Math.floor(Math.min(this.value, this.queuedEst) / 2));
    // Two rounds of the probe's calls at least: the first answers of calls sent together are the fastest ones, and
    // with service times that vary a probe of one round would read a too low no-load latency.
    this.probe = { start: now, restore: this.value, latencies: [], need: Math.max(MIN_WINDOW, 2 * cut) };
    this.value = cut;
    this.window = null;
  }

  private probeSample(latencyMs: number, now: number): void {
    const p = this.probe!;
    // Calls sent before the cut may still have queued; only those sent after it show the no-load latency.
    if (now - latencyMs < p.start) return;
    p.latencies.push(latencyMs);
    if (p.latencies.length < p.need) return;
    const base = p.latencies.reduce((a, b) => a + b, 0) / p.latencies.length;
    // A no-load latency that rose means the windows before were judged against a wrong one (a slower server, or a
    // first window measured while the box was busy): where the limit belongs is unknown, so it searches again.
    if (base > this.baseRtt * SEARCH_AGAIN) this.slowStart = true;
    this.baseRtt = base;
    this.lastRtt = Infinity;
    this.queuedLast = false;
    this.cutAtEst = 0;
    this.value = p.restore;
    this.probe = null;
    this.window = openWindow(now);
  }
}

/** Below this busy share our event loop adds next to nothing to a call's latency; from LOOP_SATURATED, all of it. */
const LOOP_SLACK = 0.5;
const LOOP_SATURATED = 0.9;

/**
 * The part of a call's latency to judge the upstream by, leaving out what our own event loop added.
 * @param latencyMs the call's wall latency; @param loopBusy our event loop's utilization over the call, 0..1
 * (perf_hooks eventLoopUtilization). @returns ms, 0..latencyMs.
 *
 * An answer waits for our loop like a job in a queue at utilization `loopBusy`: the wait grows like b ÷ (1 − b),
 * a fraction of a callback at the 10–30 % a batch of slow calls keeps the loop busy, but all of the latency once the
 * loop is saturated (an instant or in-process upstream: then latency rises with calls in flight because our loop is
 * the queue). Subtracting the busy share outright (latency × (1 − b)) took 10–50 % off 200 ms calls that our loop
 * did not delay, and that noise pulled the no-load latency down until normal answers read as queueing (measured,
 * bench/coalesce.ts queueing fake on a loaded box: raw no-load mean 206 ms, min 202; corrected mean 185, min 115).
 * So nothing is taken out below LOOP_SLACK, the busy share in full from LOOP_SATURATED, linearly in between.
 */
export function upstreamLatency(latencyMs: number, loopBusy: number): number {
  const weight = Math.min(1, Math.max(0, (loopBusy - LOOP_SLACK) / (LOOP_SATURATED - LOOP_SLACK)));
  return latencyMs * (1 - Math.min(1, Math.max(0, loopBusy)) * weight);
}

function openWindow(start: number): Window {
  return { start, count: 0, sumLatency: 0, sumInFlight: 0, maxInFlight: 0 };
}
