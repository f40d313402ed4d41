import type { BatchStatus, BatchView } from "../core/batch.js";
import type { Engine } from "../engine/engine.js";
import type { Log } from "../engine/log.js";

/** Batch statuses whose counts may still change: the sampler re-reads these every tick. */
const LIVE_STATUSES: readonly BatchStatus[] = ["created", "validating", "in_progress", "cancelling", "finalizing"];
/** Key of the series summed over every owner (what a caller sees with auth off). */
const ALL = "\u0000all";
/** Window the provider panels describe (latency quantiles, recent 429s), ms. */
const PROVIDER_WINDOW_MS = 5 * 60_000;
/** Window a batch's recent rate (and so its ETA) is measured over, ms. */
const RATE_WINDOW_MS = 30_000;

/** One throughput point: unix ms, items that succeeded and items that failed during the tick before it. */
export type ThroughputPoint = [t: number, done: number, failed: number];

/** What one tick tells a subscriber: its throughput point and the batches of its owner that changed. */
export interface Tick {
  point: ThroughputPoint;
  changed: BatchView[];
}

/** A live listener (one server-sent-events connection): `caller` null sees every owner's batches. */
export interface Subscriber {
  caller: string | null;
  onTick(tick: Tick): void;
}

/** Live state of one provider, as the overview's panel shows it. */
export interface ProviderPanel {
  name: string;
  in_flight: number;
  /** Calls it may have in flight now (AIMD window, or maxConcurrency once a request budget is known). */
  concurrency: number;
  max_concurrency: number;
  /** Budgets in force (configured or discovered), per minute; null when none is known. */
  rpm: number | null;
  tpm: number | null;
  /** Upstream answers in the last minute (requests spent against rpm). */
  requests_last_minute: number;
  /** Tokens of our items that succeeded on it in the last minute (prompt + completion, from their usage). */
  tokens_last_minute: number;
  throttled_total: number;
  /** 429 answers in the last 5 minutes. */
  throttled_recent: number;
  /** No new call starts before this unix ms (a Retry-After pause), or null when none is in force. */
  paused_until: number | null;
  /** Upstream latency quantiles over the last 5 minutes, ms (bucket-interpolated); null without calls. */
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  calls_recent: number;
}

interface BatchTrack {
  owner: string;
  provider: string | null;
  completed: number;
  failed: number;
  tokens: number;
  signature: string;
  /** (t, completed + failed) samples over the last RATE_WINDOW_MS. */
  progress: [number, number][];
}

/** Cumulative upstream numbers of one provider at one moment (from the metrics registry). */
interface ProviderSnapshot {
  t: number;
  /** Cumulative latency bucket counts, `le` in seconds (Infinity last), summed over outcomes. */
  buckets: Map<number, number>;
  answers: number;
  throttled: number;
  tokens: number;
}

/**
 * The dashboard's clock: every `tickMs` it re-reads the batches that may still change (engine.getBatch), turns the
 * change of their counts into throughput per owner (items succeeded and failed per tick, kept for an hour), keeps
 * each running batch's recent rate for its ETA, samples the provider metrics for the panels, and pushes to every
 * subscriber the batches of its owner that changed. Counts come from the store, so what it shows is what the API
 * answers; nothing is kept on disk (an hour of history starts again with the process).
 */
export class LiveSampler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private readonly tracks = new Map<string, BatchTrack>();
  private readonly series = new Map<string, ThroughputPoint[]>();
  private readonly snapshots = new Map<string, ProviderSnapshot[]>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly pending = new Map<string, number>();
  private readonly keep: number;
  private lastError = 0;
  /** When the last tick read the batches (unix ms). */
  private lastSample = Date.now();
  /** Batches watched in the last hour, with when they were last read: a batch is counted from 0 once only. */
  private readonly seen = new Map<string, number>();

  /**
   * @param engine where batches and metrics are read.
   * @param tickMs how often (ms, ≥ 50) batches are re-read and subscribers told.
   * @param log where a failing tick is reported (once a minute at most).
   */
  constructor(
    private readonly engine: Engine,
    readonly tickMs: number,
    private readonly log: Log,
  ) {
    if (!Number.isInteger(tickMs) || tickMs < 50) throw new RangeError(`tickMs must be a whole number of ms ≥ 50, got ${tickMs}`);
    this.keep = Math.ceil(3_600_000 / tickMs);
  }

  /** Starts ticking (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.tick().finally(() => (this.running = null));
    }, this.tickMs);
    this.timer.unref();
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.subscribers.clear();
    await this.running;
  }

  /** Adds a live listener. @returns a function that removes it. */
  subscribe(s: Subscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  /** The last hour of throughput of `caller`'s batches (every owner's when null), oldest first. */
  throughput(caller: string | null): ThroughputPoint[] {
    return [...(this.series.get(caller ?? ALL) ?? [])];
  }

  /** Items queued or in flight in `caller`'s batches (every owner's when null), as of the last tick. */
  queueDepth(caller: string | null): number {
    return this.pending.get(caller ?? ALL) ?? 0;
  }

  /** A running batch's rate over the last 30 s, items per second; null when it has not been watched that long. */
  recentRate(batchId: string): number | null {
    const p = this.tracks.get(batchId)?.progress;
    if (!p || p.length < 2) return null;
    const [t0, n0] = p[0]!;
    const [t1, n1] = p[p.length - 1]!;
    return t1 > t0 ? ((n1 - n0) * 1000) / (t1 - t0) : null;
  }

  /** The provider panels (every provider the dispatcher has called so far). */
  async providers(): Promise<ProviderPanel[]> {
    const now = Date.now();
    const current = await this.providerSnapshots(now);
    const panels: ProviderPanel[] = [];
    for (const [name, limiter] of this.engine.rateLimiters()) {
      const cur = current.get(name) ?? emptySnapshot(now);
      const ring = this.snapshots.get(name) ?? [];
      // Counters start at zero with the process: a window reaching back before it starts from zero.
      const since = (ms: number) => (this.startedAt >= now - ms ? emptySnapshot(this.startedAt) : (ring.find((s) => s.t >= now - ms) ?? emptySnapshot(this.startedAt)));
      const windowStart = since(PROVIDER_WINDOW_MS);
      const minuteStart = since(60_000);
      const diff = diffBuckets(cur.buckets, windowStart.buckets);
      const calls = diff.get(Infinity) ?? 0;
      panels.push({
        name,
        in_flight: this.engine.inFlightCount(name),
        concurrency: limiter.concurrency,
        max_concurrency: limiter.maxConcurrency,
        rpm: limiter.rpm,
        tpm: limiter.tpm,
        requests_last_minute: cur.answers - minuteStart.answers,
        tokens_last_minute: cur.tokens - minuteStart.tokens,
        throttled_total: limiter.throttled,
        throttled_recent: cur.throttled - windowStart.throttled,
        paused_until: limiter.pausedUntil > now ? limiter.pausedUntil : null,
        latency_p50_ms: quantileMs(diff, 0.5),
        latency_p95_ms: quantileMs(diff, 0.95),
        calls_recent: calls,
      });
    }
    return panels.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One pass: re-read live batches, record throughput, sample providers, tell subscribers. Exposed for tests. */
  async tick(): Promise<void> {
    try {
      await this.sample(Date.now());
    } catch (err) {
      // A locked or closing database skips a tick; the next one catches up from the stored counts.
      if (Date.now() - this.lastError > 60_000) this.log.warn({ err }, "dashboard sampling failed");
      this.lastError = Date.now();
    }
  }

  private async sample(now: number): Promise<void> {
    const live = await this.engine.store.batchesInStatus(LIVE_STATUSES);
    // Batches that ended since the last tick are read once more, so their last items and final status are seen; and
    // batches created since the last tick that already ended (a small batch on a fast upstream) are read once too.
    const ids = new Set([...live.map((b) => b.id), ...this.tracks.keys(), ...(await this.createdSince(this.lastSample - 1000))]);
    this.lastSample = now;
    const deltas = new Map<string, { done: number; failed: number }>();
    const pending = new Map<string, number>();
    const changed: BatchView[] = [];
    const tokensBy = new Map<string, number>();
    for (const id of ids) {
      let view: BatchView;
      try {
        view = await this.engine.getBatch(null, id);
      } catch {
        this.tracks.delete(id); // deleted meanwhile
        continue;
      }
      const c = view.request_counts;
      const tokens = view.usage.input_tokens + view.usage.output_tokens;
      const signature = JSON.stringify([view.status, c, view.usage, view.output_file_id, view.error_file_id, view.errors]);
      let track = this.tracks.get(id);
      // A batch first seen after the sampler started was created since: all of its progress happened while watched.
      const fresh = !track && !this.seen.has(id) && view.created_at >= this.startedAt;
      if (!track) {
        track = { owner: view.owner, provider: view.provider, completed: fresh ? 0 : c.completed, failed: fresh ? 0 : c.failed, tokens: fresh ? 0 : tokens, signature: fresh ? "" : signature, progress: [] };
        this.tracks.set(id, track);
      }
      const d = { done: Math.max(0, c.completed - track.completed), failed: Math.max(0, c.failed - track.failed) };
      for (const key of [view.owner, ALL]) {
        const sum = deltas.get(key) ?? { done: 0, failed: 0 };
        sum.done += d.done;
        sum.failed += d.failed;
        deltas.set(key, sum);
        pending.set(key, (pending.get(key) ?? 0) + c.pending);
      }
      if (view.provider) tokensBy.set(view.provider, (tokensBy.get(view.provider) ?? 0) + Math.max(0, tokens - track.tokens));
      if (signature !== track.signature) changed.push(view);
      track.completed = c.completed;
      track.failed = c.failed;
      track.tokens = tokens;
      track.signature = signature;
      track.provider = view.provider;
      track.progress.push([now, c.completed + c.failed + c.expired + c.cancelled]);
      while (track.progress.length > 2 && track.progress[0]![0] < now - RATE_WINDOW_MS) track.progress.shift();
      if (!LIVE_STATUSES.includes(view.status)) this.tracks.delete(id);
      this.seen.set(id, now);
    }
    for (const key of new Set([...this.series.keys(), ...deltas.keys()])) {
      const d = deltas.get(key) ?? { done: 0, failed: 0 };
      const s = this.series.get(key) ?? [];
      s.push([now, d.done, d.failed]);
      if (s.length > this.keep) s.splice(0, s.length - this.keep);
      this.series.set(key, s);
    }
    this.pending.clear();
    for (const [k, v] of pending) this.pending.set(k, v);
    await this.recordProviders(now, tokensBy);
    for (const sub of this.subscribers) {
      const key = sub.caller ?? ALL;
      const point = this.series.get(key)?.at(-1) ?? [now, 0, 0];
      sub.onTick({ point, changed: sub.caller === null ? changed : changed.filter((b) => b.owner === sub.caller) });
    }
  }

  private readonly tokensTotal = new Map<string, number>();

  /** Ids of batches created at or after `since` (unix ms) that were never watched, newest first (at most 1,000). */
  private async createdSince(since: number): Promise<string[]> {
    for (const [id, at] of this.seen) if (at < Date.now() - 3_600_000) this.seen.delete(id);
    const out: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await this.engine.store.listBatches({ owner: null, after, limit: 100 });
      for (const b of page.data) {
        if (b.created_at < since || b.created_at < this.startedAt) return out;
        if (!this.seen.has(b.id) && !this.tracks.has(b.id)) out.push(b.id);
      }
      if (!page.has_more || page.data.length === 0) return out;
      after = page.data[page.data.length - 1]!.id;
    }
    return out;
  }

  private async recordProviders(now: number, tokensBy: Map<string, number>): Promise<void> {
    for (const [p, n] of tokensBy) this.tokensTotal.set(p, (this.tokensTotal.get(p) ?? 0) + n);
    const current = await this.providerSnapshots(now);
    for (const [name, snap] of current) {
      const ring = this.snapshots.get(name) ?? [];
      // One snapshot per 5 s is fine grain enough for 1- and 5-minute windows.
      if (ring.length === 0 || now - ring[ring.length - 1]!.t >= 5_000) ring.push(snap);
      while (ring.length > 0 && ring[0]!.t < now - PROVIDER_WINDOW_MS - 10_000) ring.shift();
      this.snapshots.set(name, ring);
    }
  }

  /** Cumulative upstream counters per provider now, from the engine's metrics registry. */
  private async providerSnapshots(now: number): Promise<Map<string, ProviderSnapshot>> {
    const out = new Map<string, ProviderSnapshot>();
    const of = (p: string) => {
      let s = out.get(p);
      if (!s) out.set(p, (s = { ...emptySnapshot(now), tokens: this.tokensTotal.get(p) ?? 0 }));
      return s;
    };
    const reg = this.engine.metrics.registry;
    const latency = await reg.getSingleMetric("openbatch_upstream_latency_seconds")?.get();
    for (const v of latency?.values ?? []) {
      // Histogram values carry the series they belong to (_bucket, _sum, _count); prom-client's type leaves it out.
      if ((v as { metricName?: string }).metricName !== "openbatch_upstream_latency_seconds_bucket") continue;
      const le = v.labels.le === "+Inf" ? Infinity : Number(v.labels.le);
      const s = of(String(v.labels.provider));
      s.buckets.set(le, (s.buckets.get(le) ?? 0) + v.value);
    }
    for (const v of (await reg.getSingleMetric("openbatch_upstream_answers_total")?.get())?.values ?? []) of(String(v.labels.provider)).answers += v.value;
    for (const v of (await reg.getSingleMetric("openbatch_upstream_429_total")?.get())?.values ?? []) of(String(v.labels.provider)).throttled += v.value;
    return out;
  }
}

function emptySnapshot(t: number): ProviderSnapshot {
  return { t, buckets: new Map(), answers: 0, throttled: 0, tokens: 0 };
}

function diffBuckets(now: Map<number, number>, then: Map<number, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [le, n] of now) out.set(le, n - (then.get(le) ?? 0));
  return out;
}

/** The q-quantile of cumulative histogram buckets (le in seconds), linearly interpolated inside a bucket, in ms. */
export function quantileMs(buckets: Map<number, number>, q: number): number | null {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? 0;
  if (total <= 0) return null;
  const target = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const count = buckets.get(le)!;
    if (count >= target) {
      // Past the last finite bucket the best we can say is "at least its bound".
      if (le === Infinity) return prevLe * 1000;
      const share = count === prevCount ? 1 : (target - prevCount) / (count - prevCount);
      return (prevLe + (le - prevLe) * share) * 1000;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe * 1000;
}
