import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "../store/store.js";
import type { DispatchObserver } from "./dispatcher.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";

/** What the metrics read at scrape time. */
export interface MetricsSources {
  store: Store;
  limiters: () => ReadonlyMap<string, ProviderRateLimiter>;
  inFlight: (provider: string) => number;
}

/**
 * Prometheus metrics of one engine (its own registry, so several engines in one process do not collide):
 * items by state and queue depth, upstream latency and answers (429s among them), and per provider the current
 * concurrency window, calls in flight, the latency-aware limit and its no-load latency (queueing upstreams), and the
 * request/token budgets in force. A coalesced embeddings call counts as one upstream answer.
 */
export class EngineMetrics implements DispatchObserver {
  readonly registry = new Registry();
  private readonly latency = new Histogram({
    name: "openbatch_upstream_latency_seconds",
    help: "Time from sending a request upstream to its answer.",
    labelNames: ["provider", "outcome"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  private readonly answers = new Counter({
    name: "openbatch_upstream_answers_total",
    help: "Upstream answers by HTTP status (or upstream_timeout / upstream_unreachable).",
    labelNames: ["provider", "status"],
    registers: [this.registry],
  });
  private readonly throttled = new Counter({
    name: "openbatch_upstream_429_total",
    help: "429 Too Many Requests answers from the upstream.",
    labelNames: ["provider"],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    new Gauge({
      name: "openbatch_items",
      help: "Request items by state, over all batches.",
      labelNames: ["state"],
      registers,
      async collect() {
        const t = await sources.store.itemTotals();
        this.set({ state: "pending" }, t.pending);
        this.set({ state: "succeeded" }, t.completed);
        this.set({ state: "failed" }, t.failed);
        this.set({ state: "expired" }, t.expired);
        this.set({ state: "cancelled" }, t.cancelled);
      },
    });
    new Gauge({
      name: "openbatch_queue_depth",
      help: "Request items not finished yet (queued or in flight).",
      registers,
      async collect() {
        this.set((await sources.store.itemTotals()).pending);
      },
    });
    const perProvider = (name: string, help: string, read: (l: ProviderRateLimiter, provider: string) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ["provider"],
        registers,
        collect() {
          // A value that no longer applies (the adaptive limit once a budget is known) leaves the exposition.
          this.reset();
          for (const [provider, limiter] of sources.limiters()) {
            const value = read(limiter, provider);
            if (value !== null) this.set({ provider }, value);
          }
        },
      });
    perProvider("openbatch_provider_concurrency", "Calls the provider may have in flight now (adaptive or AIMD window, or maxConcurrency under a budget).", (l) => l.concurrency);
    perProvider("openbatch_provider_in_flight", "Calls in flight to the provider.", (_, p) => sources.inFlight(p));
    perProvider(
      "openbatch_provider_adaptive_limit",
      "The latency-aware concurrency limit chosen for a provider with no budget known (a queueing server): where its throughput stops rising.",
      (l) => l.adaptiveLimit,
    );
    perProvider("openbatch_provider_noload_latency_seconds", "The no-load latency the adaptive limit compares answers with.", (l) => (l.noLoadLatencyMs === null ? null : l.noLoadLatencyMs / 1000));
    perProvider("openbatch_provider_rpm_budget", "Requests per minute in force (configured or discovered).", (l) => l.rpm);
    perProvider("openbatch_provider_tpm_budget", "Tokens per minute in force (configured or discovered).", (l) => l.tpm);
  }

  upstreamAnswer(provider: string, outcome: number | string, latencyMs: number): void {
    const status = String(outcome);
    this.answers.inc({ provider, status });
    if (outcome === 429) this.throttled.inc({ provider });
    this.latency.observe({ provider, outcome: typeof outcome === "number" ? `${Math.floor(outcome / 100)}xx` : outcome }, latencyMs / 1000);
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
