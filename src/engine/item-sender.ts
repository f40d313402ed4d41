import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import type { Batch, ItemOutcome, RequestItem } from "../core/batch.js";
import type { Provider } from "../providers/provider.js";
import { UpstreamUnreachableError } from "../providers/provider.js";
import { ResponseTooLargeError } from "../providers/http-upstream.js";
import { TranslationError, translateRequest, translateResponse } from "../providers/translate/translate.js";
import type { OutcomeRecord, Store } from "../store/store.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";
import { upstreamLatency } from "./adaptive-concurrency.js";
import { sendGroup, type GroupEntry, type GroupHost, type Judged } from "./coalesce.js";
import { requestTokenCost } from "./token-cost.js";
import type { Log } from "./log.js";
import { backoffMs, type RetrySettings } from "./retry-policy.js";
import { judgeAnswer, noAnswer, tooLarge, utf8LengthOver } from "./upstream-answer.js";

/** Hears about upstream calls as they end (e.g. for Prometheus metrics). */
export interface DispatchObserver {
  /** @param outcome the HTTP status, or "upstream_timeout" / "upstream_unreachable"; @param latencyMs time to answer. */
  upstreamAnswer(provider: string, outcome: number | string, latencyMs: number): void;
}

/** What an ItemSender uses of the dispatcher that owns it. */
export interface SenderHost {
  /** The worker whose leases the sent items are under (outcomes are written only while it holds them). */
  readonly workerId: string;
  readonly store: Store;
  readonly log: Log;
  readonly retry: RetrySettings;
  /** Longest upstream answer body kept for one item, bytes; see DispatcherOptions.maxResponseBytes. */
  readonly maxResponseBytes: number | undefined;
  /** Told of every upstream answer (metrics). */
  readonly observer: DispatchObserver | undefined;
  limiterFor(provider: Provider): ProviderRateLimiter;
  /** The batch's provider key, opened from its sealed copy (undefined: the provider's own key). */
  apiKeyFor(batchId: string): Promise<string | undefined>;
  /** Buffers outcomes for the next group commit; resolves once that commit has ended. */
  record(r: OutcomeRecord | OutcomeRecord[]): Promise<void>;
  /** Asks for a scheduling pass soon (a call just ended and freed its slot). */
  wake(): void;
}

/** Raised into an aborted call's signal so the call knows it was stopped on purpose. */
export class DispatchStopped extends Error {}

/** A controller for every call of one batch: each call listens on its signal, so no listener limit applies. */
function sharedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * Sends leased items upstream (one item per call, or a coalesced group of embeddings) and turns each answer into an
 * outcome to record or a requeue with backoff. Keeps count of the calls in flight, per provider and per batch, so they
 * can be aborted (cancel, expiry, shutdown); a call counts as in flight until its outcome is committed.
 */
export class ItemSender {
  private readonly inFlight = new Map<string, number>();
  /**
   * Per batch: the calls in flight and one controller their signal comes from. Calls are only ever aborted a batch (or
   * all) at a time, so they share it: an AbortController per call was 8 µs of an item's ~550 µs (CPU profile of
   * bench/overhead.ts, 20,000 items, loaded 2-core box). An aborted batch's next call gets a fresh one.
   */
  private readonly inFlightByBatch = new Map<string, { calls: number; controller: AbortController }>();

  constructor(private readonly host: SenderHost) {}

  /** Calls in flight from this worker to a provider. */
  inFlightCount(provider: string): number {
    return this.inFlight.get(provider) ?? 0;
  }

  /** Calls in flight from this worker, all providers together. */
  totalInFlight(): number {
    let calls = 0;
    for (const n of this.inFlight.values()) calls += n;
    return calls;
  }

  /** True while a call for the batch is in flight. */
  hasCallsFor(batchId: string): boolean {
    return (this.inFlightByBatch.get(batchId)?.calls ?? 0) > 0;
  }

  /** Aborts every call in flight for a batch (cancel, expiry). */
  abortBatch(batchId: string): void {
    this.inFlightByBatch.get(batchId)?.controller.abort(new DispatchStopped("batch ended"));
  }

  /** Aborts every call in flight (shutdown); their leases stay and return the items to the queue on restart. */
  abortAll(): void {
    for (const b of this.inFlightByBatch.values()) b.controller.abort(new DispatchStopped("stopping"));
  }

  /** Counts one call in flight for a batch and a provider. @returns the controller that aborts it (cancel, expiry). */
  private takeSlot(batchId: string, providerName: string): AbortController {
    let b = this.inFlightByBatch.get(batchId);
    if (!b) this.inFlightByBatch.set(batchId, (b = { calls: 0, controller: sharedController() }));
    else if (b.controller.signal.aborted) b.controller = sharedController();
    b.calls++;
    this.inFlight.set(providerName, this.inFlightCount(providerName) + 1);
    return b.controller;
  }

  /** Ends what takeSlot counted and wakes the dispatcher: a slot is free. */
  private releaseSlot(batchId: string, providerName: string): void {
    const b = this.inFlightByBatch.get(batchId);
    if (b && --b.calls === 0) this.inFlightByBatch.delete(batchId);
    this.inFlight.set(providerName, this.inFlightCount(providerName) - 1);
    this.host.wake();
  }

  /** Sends one leased item and records what happened: an outcome, or a requeue with backoff. */
  async send(item: RequestItem, batch: Batch, provider: Provider): Promise<void> {
    const controller = this.takeSlot(batch.id, provider.name);
    try {
      const apiKey = await this.host.apiKeyFor(batch.id);
      const limiter = this.host.limiterFor(provider);
      let result: { outcome: ItemOutcome } | { retryAfter: number | null; last: ItemOutcome };
      let started = 0;
      try {
        const tokens = limiter.needsTokenCost(batch.model) ? requestTokenCost(item.body) : 0;
        await limiter.acquire(batch.model, tokens, controller.signal);
        const wire = translateRequest(batch.endpoint, item.body, provider.format);
        started = performance.now();
        const loopAtStart = performance.eventLoopUtilization();
        const cap = this.host.maxResponseBytes;
        const res = await provider.send({ endpoint: wire.endpoint, model: batch.model, body: wire.body, apiKey, maxResponseBytes: cap }, controller.signal);
        const latencyMs = performance.now() - started;
        // The latency-aware limit looks for the upstream's queue: what our own saturated event loop added (other
        // calls' parsing, commits, an in-process upstream) is our queue, not the server's (see upstreamLatency).
        // Measured (bench/overhead.ts, instant upstream, 10,000 items, maxConcurrency 64, loaded 2-core box): with the
        // raw latency the loop's own lag (p50 1.2 ms, p90 7 ms) read as queueing and held the limit at 3 (p50), 650
        // items/s, 0.28 of the plain client; leaving the busy share out lets it open to the configured 64.
        const busy = performance.eventLoopUtilization(loopAtStart).utilization;
        limiter.onAnswer(res.status, res.headers, Date.now(), { latencyMs: upstreamLatency(latencyMs, busy), inFlight: this.inFlightCount(provider.name) });
        this.host.observer?.upstreamAnswer(provider.name, res.status, latencyMs);
        const ok = res.status >= 200 && res.status < 300;
        // In-process providers build their answers themselves: the cap holds for them too.
        if (cap !== undefined && utf8LengthOver(res.body, cap)) result = { outcome: tooLarge(new ResponseTooLargeError(cap, res.status)) };
        else result = judgeAnswer(res.status, res.headers, ok ? translateResponse(batch.endpoint, wire.endpoint, res.body) : res.body);
      } catch (err) {
        if (controller.signal.aborted) return; // cancel, expiry or shutdown decides this item's fate
        if (err instanceof ResponseTooLargeError) {
          limiter.onAnswer(err.status, {});
          this.host.observer?.upstreamAnswer(provider.name, err.status, performance.now() - started);
          await this.host.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: tooLarge(err) });
          return;
        }
        if (err instanceof TranslationError) {
          const message = `Field '${err.param}' cannot be translated for provider ${provider.name}: ${err.message}`;
          result = { outcome: noAnswer("failed", "untranslatable_field", message) };
          await this.host.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: result.outcome });
          return;
        }
        const code = err instanceof UpstreamUnreachableError ? err.code : "upstream_unreachable";
        limiter.onNoAnswer();
        this.host.observer?.upstreamAnswer(provider.name, code, started ? performance.now() - started : 0);
        result = { retryAfter: null, last: noAnswer("failed", code, (err as Error).message) };
      }
      // Awaiting the commit keeps this call's slot until its outcome is durable (see the class docstring).
      if ("outcome" in result) {
        await this.host.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: result.outcome });
      } else if (item.attempts >= this.host.retry.maxAttempts) {
        await this.host.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: result.last });
      } else {
        const delay = backoffMs(item.attempts, this.host.retry, result.retryAfter);
        await this.host.store.requeueItem(item.batch_id, item.line, this.host.workerId, Date.now() + delay);
      }
    } catch (err) {
      this.host.log.error({ err, batch: batch.id, custom_id: item.custom_id }, "dispatch failed; the lease will return the item to the queue");
    } finally {
      this.releaseSlot(batch.id, provider.name);
    }
  }

  /**
   * Sends one group of leased embeddings items as one call (split and sent again when the upstream refuses the group)
   * and records every item's outcome in one commit, holding one concurrency slot throughout, as `send` does for one.
   */
  async sendCoalesced(entries: GroupEntry[], batch: Batch, provider: Provider): Promise<void> {
    const controller = this.takeSlot(batch.id, provider.name);
    try {
      const limiter = this.host.limiterFor(provider);
      const host: GroupHost = {
        provider,
        limiter,
        model: batch.model,
        apiKey: await this.host.apiKeyFor(batch.id),
        maxResponseBytes: this.host.maxResponseBytes,
        judge: judgeAnswer,
        translateBack: (wireEndpoint, body) => translateResponse(batch.endpoint, wireEndpoint, body),
        answered: (outcome, latencyMs, status, headers) => {
          if (status === null) limiter.onNoAnswer();
          else limiter.onAnswer(status, headers ?? {}, Date.now(), { latencyMs, inFlight: this.inFlightCount(provider.name) });
          this.host.observer?.upstreamAnswer(provider.name, outcome, latencyMs);
        },
      };
      let judged: Judged[];
      try {
        judged = await sendGroup(host, entries, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) return; // cancel, expiry or shutdown decides these items' fate
        throw err;
      }
      const records: OutcomeRecord[] = [];
      const requeues: Promise<boolean>[] = [];
      // One backoff per attempt count: a group retried together comes due together, and coalesces again.
      const due = new Map<string, number>();
      entries.forEach(({ item }, i) => {
        const r = judged[i]!;
        if ("outcome" in r) records.push({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: r.outcome });
        else if (item.attempts >= this.host.retry.maxAttempts) records.push({ batch_id: item.batch_id, line: item.line, lease_owner: this.host.workerId, outcome: r.last });
        else {
          const key = `${item.attempts}/${r.retryAfter}`;
          if (!due.has(key)) due.set(key, Date.now() + backoffMs(item.attempts, this.host.retry, r.retryAfter));
          requeues.push(this.host.store.requeueItem(item.batch_id, item.line, this.host.workerId, due.get(key)!));
        }
      });
      await Promise.all(requeues);
      // Awaiting the commit keeps this call's slot until its outcomes are durable (see the class docstring).
      if (records.length > 0) await this.host.record(records);
    } catch (err) {
      this.host.log.error({ err, batch: batch.id, items: entries.length }, "coalesced dispatch failed; the leases will return the items to the queue");
    } finally {
      this.releaseSlot(batch.id, provider.name);
    }
  }
}
