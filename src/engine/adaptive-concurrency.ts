/**
 * A latency-aware concurrency limit (Vegas style) for upstreams that queue instead of answering 429 (vLLM, Ollama,
 * llama.cpp server, TGI): past the server's own parallelism more calls in flight only wait in its queue, so
 * throughput stops rising while latency grows. The limit is set where throughput stops rising and held a little
 * above it, so the server never idles and its queue stays short.
 *
 * Per window (at least `limit` answers and one no-load round trip): rtt = the window's median latency, the no-load
 * latency `baseRtt` = the lowest window median seen (re-measured by a periodic probe), n = the mean calls in flight.
 * When rtt is within `toleranceMs` of baseRtt nothing queues: the limit grows (doubling until the first queue is
 * seen, then +max(1, 10 %)) provided the window used the whole limit. Otherwise the server serves
 * est = n × baseRtt ÷ rtt calls at once (Little's law: the rest wait in its queue); the limit is kept within
 * [1.1, 1.33] × est: above it drops to 1.25 × est, below it grows by one. A 429, 5xx or a call without answer halves
 * it (once a second).
 *
 * The probe follows a server whose no-load latency rose (a slower model, longer inputs): every `probeEvery` windows
 * the limit is halved until calls started after the cut have answered, their median latency becomes the new baseRtt,
 * and the limit is restored. Faster servers lower baseRtt by themselves.
 *
 * Time comes from the caller (`now`, ms), so the algorithm runs unchanged in a simulated clock (see
 * test/adaptive-concurrency.test.ts).
 */
export interface AdaptiveConcurrencySettings {
  /** Starting limit (default 4). */
  initial?: number;
  /** Highest limit (maxConcurrency). */
  max: number;
  /** Latency above the no-load latency that does not count as queueing, ms (default 5: timer and loopback jitter). */
  toleranceMs?: number;
  /** Windows between two probes of the no-load latency (default 40). */
  probeEvery?: number;
}

/** Fewest answers a window judges on. */
const MIN_WINDOW = 8;
/** Shortest time between two halvings, ms: one overload episode halves the limit once. */
const DECREASE_COOLDOWN_MS = 1000;

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
  private window: { start: number; latencies: number[]; maxInFlight: number; sumInFlight: number } | null = null;
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
    const w = (this.window ??= { start: now - latencyMs, latencies: [], maxInFlight: 0, sumInFlight: 0 });
    w.latencies.push(latencyMs);
    w.maxInFlight = Math.max(w.maxInFlight, inFlight);
    w.sumInFlight += inFlight;
    const elapsed = now - w.start;
    // At least 8 answers: a small limit's window would judge on the noise of two or three latencies.
    if (w.latencies.length < Math.max(MIN_WINDOW, this.limit) || elapsed < Math.min(this.baseRtt, latencyMs)) return;
    this.window = null;
    this.decide(median(w.latencies), w.sumInFlight / w.latencies.length, w.maxInFlight >= this.limit, now);
  }

  /** The upstream was overloaded (429, 5xx) or did not answer: halve, at most once per second. */
  onOverload(now: number): void {
    if (now - this.lastDecrease < DECREASE_COOLDOWN_MS) return;
    this.lastDecrease = now;
    this.slowStart = false;
    if (this.probe) {
      this.value = this.probe.restore;
      this.probe = null;
    }
    this.value = Math.max(1, this.value / 2);
    this.window = null;
  }

  private decide(rtt: number, inFlight: number, full: boolean, now: number): void {
    this.baseRtt = Math.min(this.baseRtt, rtt);
    if (rtt <= this.baseRtt + this.toleranceMs) {
      if (full) this.value = Math.min(this.max, this.slowStart ? this.value * 2 : this.value + Math.max(1, this.value * 0.1));
    } else {
      this.slowStart = false;
      const est = Math.max(1, (inFlight * this.baseRtt) / rtt);
      if (this.value > est * 1.33) this.value = Math.max(1, est * 1.25);
      else if (this.value < est * 1.1 && full) this.value = Math.min(this.max, this.value + 1);
    }
    if (++this.windows % this.probeEvery === 0) {
      const cut = Math.max(1, Math.floor(this.value / 2));
      this.probe = { start: now, restore: this.value, latencies: [], need: Math.max(2, cut) };
      this.value = cut;
    }
  }

  private probeSample(latencyMs: number, now: number): void {
    const p = this.probe!;
    // Calls sent before the cut may still have queued; only those sent after it show the no-load latency.
    if (now - latencyMs < p.start) return;
    p.latencies.push(latencyMs);
    if (p.latencies.length < p.need) return;
    this.baseRtt = median(p.latencies);
    this.value = p.restore;
    this.probe = null;
  }
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
