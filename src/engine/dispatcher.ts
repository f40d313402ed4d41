import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Batch, ItemOutcome, RequestItem } from "../core/batch.js";
import { newId } from "../core/ids.js";
import type { Provider } from "../providers/provider.js";
import { UpstreamUnreachableError } from "../providers/provider.js";
import { ResponseTooLargeError } from "../providers/http-upstream.js";
import { TranslationError, translateRequest, translateResponse } from "../providers/translate/translate.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { OutcomeRecord, Store } from "../store/store.js";
import type { KeyVault } from "./key-vault.js";
import { ProviderRateLimiter } from "./rate-limiter.js";
import { coalesces, planCalls, sendGroup, type GroupEntry, type GroupHost, type Judged } from "./coalesce.js";
import { requestTokenCost } from "./token-cost.js";
import type { Log } from "./log.js";
import type { NativeGate } from "./native/runner.js";
import { backoffMs, isRetryableStatus, retryAfterMs, type RetrySettings } from "./retry-policy.js";
import { readUsage } from "./usage.js";

/** Longest wait between dispatcher passes while every pass fails (a full disk, a locked database), ms. */
const PASS_BACKOFF_MAX_MS = 30_000;

/** Dispatcher settings. Times in ms. */
export interface DispatcherOptions {
  retry: RetrySettings;
  /** Lease length; defaults to the provider timeout + 60 s so a live call never loses its lease. */
  leaseMs?: number;
  /** Longest sleep between scheduling passes when nothing wakes the dispatcher. */
  pollMs: number;
  /** How often leases of dead workers are swept back into the queue. */
  leaseSweepMs: number;
  /**
   * Longest wait, ms, before a group commit writes the outcomes buffered so far (default 5). A commit happens sooner
   * when every call in flight is waiting for it, or 1024 outcomes are buffered.
   */
  groupCommitMs?: number;
  /**
   * Longest upstream answer body kept for one item, bytes (config `limits.maxResponseBytes`). A longer one is not read
   * further (providers stop reading) nor stored: the item fails alone with `response_too_large`, without retry.
   */
  maxResponseBytes?: number;
  /** Makes a provider's rate limiter (default: a local ProviderRateLimiter); workers sharing a database share budgets. */
  limiterFor?: (provider: Provider) => ProviderRateLimiter;
}

/** Hears about upstream calls as they end (e.g. for Prometheus metrics). */
export interface DispatchObserver {
  /** @param outcome the HTTP status, or "upstream_timeout" / "upstream_unreachable"; @param latencyMs time to answer. */
  upstreamAnswer(provider: string, outcome: number | string, latencyMs: number): void;
}

/** Raised into an aborted call's signal so the call knows it was stopped on purpose. */
class DispatchStopped extends Error {}

/**
 * Sends request items upstream. One scheduling pass (`tick`) expires overdue batches, settles cancelling ones, leases
 * queued items of in-progress batches up to each provider's free concurrency (round-robin over batches), and hands
 * batches with nothing left to `finalize`. Outcomes are recorded in group commits; a call's outcome is only written
 * while this worker still holds its lease, so an item repeated after a crash is recorded exactly once. A call keeps
 * its concurrency slot until its outcome is committed, so calls answered but not yet written plus calls in flight
 * never exceed the provider's maxConcurrency: that bounds what a kill -9 makes us send again.
 */
export class Dispatcher {
  readonly workerId = "worker_" + randomBytes(6).toString("hex");
  private readonly inFlight = new Map<string, number>();
  private readonly inFlightByBatch = new Map<string, Set<AbortController>>();
  private readonly limiters = new Map<string, ProviderRateLimiter>();
  private readonly apiKeys = new Map<string, string | undefined>();
  private readonly finalizing = new Set<string>();
  /** The condition failing every dispatcher pass, while one does (logged once), and how many passes it failed. */
  private passFailure: { condition: string; count: number } | null = null;
  /** Outcomes waiting for the next group commit, by the call that waits for them (a coalesced call has many). */
  private pending: { records: OutcomeRecord[]; committed: () => void }[] = [];
  /** Outcomes in `pending`. */
  private pendingRecords = 0;
  /** Batch id → items claimed per concurrency slot while its embeddings coalesce (engine/coalesce.ts). */
  private readonly coalesceFactor = new Map<string, number>();
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** A pass asked for at once (setImmediate, not a 1 ms timer; see `wake`). */
  private immediate: NodeJS.Immediate | null = null;
  private running = false;
  private again = false;
  private stopped = true;
  private lastSweep = 0;
  /** Provider name → round-robin position among its batches; moves only when a pass hands out work. */
  private readonly turn = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly providers: ProviderRegistry,
    private readonly vault: KeyVault,
    private readonly options: DispatcherOptions,
    private readonly log: Log,
    /** Writes result files and ends the batch; called once nothing of it is unfinished. */
    private readonly finalize: (batch: Batch) => Promise<void>,
    /** Told of every upstream answer (metrics). */
    private readonly observer?: DispatchObserver,
    /** Says which batches run on a provider's own batch API (engine/native): their items are not claimed here. */
    private readonly native?: NativeGate,
  ) {}

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Stops scheduling, aborts calls in flight (their leases stay and return to the queue on restart) and flushes outcomes. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    for (const set of this.inFlightByBatch.values()) for (const c of set) c.abort(new DispatchStopped("stopping"));
    await this.flush();
  }

  /** Asks for a scheduling pass soon (new work, a finished call, a cancel). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.nextPass(0);
  }

  /**
   * Schedules the next pass in `ms` (replacing one scheduled before). At 0 it runs on setImmediate: a timer of 0 waits
   * at least 1 ms, and with an instant upstream every pass after a group commit waited that long with all calls idle
   * (bench/overhead.ts, 10,000 items: ~200 passes, so ~0.2 s of a ~4 s run). Measured with the positional outcome
   * binding of store/sqlite (same commit), 5,000 items × 3 rounds, 3 runs alternating with the code before, loaded
   * 2-core box: median batch ÷ direct 1.00 / 0.92 / 0.77 against 0.92 / 0.82 / 0.69.
   */
  private nextPass(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (ms > 0) {
      if (this.immediate) clearImmediate(this.immediate);
      this.immediate = null;
      this.timer = setTimeout(() => void this.tick(), ms);
    } else if (!this.immediate) {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.tick();
      });
    }
  }

  /** Aborts every call in flight for a batch (cancel, expiry). */
  abortBatch(batchId: string): void {
    for (const c of this.inFlightByBatch.get(batchId) ?? []) c.abort(new DispatchStopped("batch ended"));
  }

  /** The rate limiter of a provider, made on first use from its configured budgets. */
  limiterFor(provider: Provider): ProviderRateLimiter {
    let limiter = this.limiters.get(provider.name);
    if (!limiter) {
      limiter = this.options.limiterFor?.(provider) ?? new ProviderRateLimiter(provider.maxConcurrency, provider.budgets);
      this.limiters.set(provider.name, limiter);
    }
    return limiter;
  }

  /** Rate limiters made so far, by provider name (for metrics). */
  rateLimiters(): ReadonlyMap<string, ProviderRateLimiter> {
    return this.limiters;
  }

  /** Calls in flight from this worker to a provider. */
  inFlightCount(provider: string): number {
    return this.inFlight.get(provider) ?? 0;
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.stopped) return;
    this.running = true;
    let sleep = this.options.pollMs;
    try {
      sleep = await this.schedule();
      if (this.passFailure) {
        this.log.info({ failedPasses: this.passFailure.count }, "dispatcher passes succeed again");
        this.passFailure = null;
      }
    } catch (err) {
      // A lasting condition (a full disk, a locked database) fails every pass: log it once, back off, and say when
      // it clears, rather than a line per poll.
      const condition = String((err as { code?: unknown }).code ?? (err as Error).message);
      if (this.passFailure?.condition !== condition) {
        this.log.error({ err }, "dispatcher pass failed; retrying with backoff until it succeeds");
        this.passFailure = { condition, count: 0 };
      }
      this.passFailure.count++;
      sleep = Math.min(PASS_BACKOFF_MAX_MS, this.options.pollMs * 2 ** Math.min(this.passFailure.count, 10));
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.passFailure) {
      this.again = false;
      this.nextPass(sleep);
      return;
    }
    if (this.again) {
      this.again = false;
      sleep = 0;
    }
    this.nextPass(Math.max(0, Math.min(sleep, this.options.pollMs)));
  }

  /** One scheduling pass. @returns ms until the next pass is useful. */
  private async schedule(): Promise<number> {
    const now = Date.now();
    let sleep = this.options.pollMs;
    const sweep = now - this.lastSweep >= this.options.leaseSweepMs;
    if (sweep) this.lastSweep = now;

    const active = await this.store.batchesInStatus(["in_progress", "cancelling", "finalizing", "created"]);
    const byProvider = new Map<string, Batch[]>();
    for (const batch of active) {
      // Vendor jobs hold a native batch until they hand it back (engine/native); expiry and cancel included.
      if ((batch.status === "in_progress" || batch.status === "cancelling") && this.native && (await this.native.holds(batch))) continue;
      if (batch.status === "created") {
        // Never started (seed 001): it expires after its window all the same, and its sealed key is erased then.
        if (batch.expires_at <= now) await this.end(batch, "expired", now);
        else sleep = Math.min(sleep, batch.expires_at - now);
        continue;
      }
      if (batch.status === "in_progress" && batch.expires_at <= now) {
        await this.end(batch, "expired", now);
        continue;
      }
      if (batch.status === "cancelling") {
        // A file batch cancelled while validating is settled once all its items are stored.
        if (batch.in_progress_at === null && batch.input_file_id !== null) continue;
        await this.end(batch, "cancelled", now);
        continue;
      }
      if (batch.status === "finalizing") {
        // An expiry cut short by a crash may have left items unsettled; settling again is harmless.
        if (batch.final_status === "expired") await this.end(batch, "expired", now);
        else this.startFinalize(batch);
        continue;
      }
      if (sweep) await this.store.releaseLeases(batch.id, now);
      const list = byProvider.get(batch.provider ?? "") ?? [];
      list.push(batch);
      byProvider.set(batch.provider ?? "", list);
      sleep = Math.min(sleep, batch.expires_at - now);
    }

    for (const [name, batches] of byProvider) {
      const provider = name ? this.providers.get(name) : undefined;
      const limiter = provider ? this.limiterFor(provider) : null;
      const paused = (limiter?.pausedUntil ?? 0) - now;
      if (paused > 0) sleep = Math.min(sleep, paused);
      let free = limiter ? limiter.concurrency - this.inFlightCount(name) : 0;
      // Higher priority first; batches of equal priority take turns: the pass starts after the last batch served.
      const offset = this.turn.get(name) ?? 0;
      const rotated = batches.map((_, i) => batches[(i + offset) % batches.length]!);
      const order = rotated.sort((a, b) => b.priority - a.priority);
      let claimed = false;
      for (let i = 0; i < order.length; i++) {
        const batch = order[i]!;
        if (!provider) {
          // On a shared store another worker may have this provider (a GPU box's local model): leave its items to it.
          if (this.store.shared && batch.provider !== null) continue;
          await this.failUnroutable(batch, now);
        } else if (free > 0 && paused <= 0) {
          const share = Math.ceil(free / (order.length - i));
          const leaseUntil = now + (this.options.leaseMs ?? provider.timeoutMs + 60_000);
          // Coalescing embeddings: a slot carries up to embeddingsCoalesce items (one upstream call).
          const k = coalesces(provider, batch.endpoint) ? (this.coalesceFactor.get(batch.id) ?? provider.embeddingsCoalesce!) : 1;
          const items = await this.store.claimItems(batch.id, this.workerId, share * k, now, leaseUntil);
          if (items.length > 0 && !claimed) {
            claimed = true;
            // The next pass that hands out work starts from the batch after this one.
            this.turn.set(name, offset + i + 1);
          }
          if (k > 1) free -= await this.dispatchCoalesced(items, batch, provider, share, k);
          else {
            free -= items.length;
            for (const item of items) void this.send(item, batch, provider);
          }
        }
        if (!this.inFlightByBatch.get(batch.id)?.size && !(await this.store.hasUnfinished(batch.id))) {
          await this.flush();
          if (await this.store.updateBatch(batch.id, ["in_progress"], { status: "finalizing", finalizing_at: Date.now(), final_status: "completed" })) {
            this.startFinalize({ ...batch, status: "finalizing", final_status: "completed" });
          }
          continue;
        }
        const next = await this.store.nextAttemptAt(batch.id);
        if (next !== null && next > now) sleep = Math.min(sleep, next - now);
      }
    }
    return sleep;
  }

  /** Ends a batch early (expiry or cancellation): aborts its calls and settles every unfinished item. */
  private async end(batch: Batch, why: "expired" | "cancelled", now: number): Promise<void> {
    if (why === "expired" && (batch.status === "in_progress" || batch.status === "created")) {
      if (!(await this.store.updateBatch(batch.id, [batch.status], { status: "finalizing", finalizing_at: now, final_status: "expired" }))) return;
    }
    this.abortBatch(batch.id);
    await this.flush();
    const outcome: ItemOutcome =
      why === "expired"
        ? noAnswer("expired", "batch_expired", "This request could not be executed before the completion window expired.")
        : noAnswer("cancelled", "batch_cancelled", "This request was not executed because the batch was cancelled.");
    await this.store.settleUnfinished(batch.id, outcome, now);
    this.startFinalize({ ...batch, status: why === "expired" ? "finalizing" : batch.status, final_status: why });
  }

  private async failUnroutable(batch: Batch, now: number): Promise<void> {
    const model = batch.model ?? "(none)";
    const outcome =
      batch.provider === null
        ? noAnswer(
            "failed",
            "model_not_found",
            `No provider serves model "${model}". Configure one with --config, e.g. a local GGUF model: ` +
              `{"providers":{"llm":{"type":"local-llm","model":"./model.gguf"}},"models":{"${model}":"llm"}}, ` +
              `or an OpenAI-compatible server: {"providers":{"up":{"type":"openai-compatible","baseURL":"http://127.0.0.1:8000/v1"}},"models":{"*":"up"}}. ` +
              `"local/glove-100d" (embeddings) needs no config.`,
          )
        : noAnswer("failed", "provider_not_found", `No provider named "${batch.provider}" is configured any more.`);
    await this.store.settleUnfinished(batch.id, outcome, now);
  }

  /**
   * Finalizes a batch unless another process of a shared store is finalizing it (its lock, store.lockBatch) or already
   * has: the batch is read again under the lock, so a finished finalization is not repeated.
   */
  private async finalizeOnce(batch: Batch): Promise<void> {
    if (!this.store.lockBatch) return this.finalize(batch);
    const release = await this.store.lockBatch(batch.id);
    if (!release) return;
    try {
      const fresh = await this.store.getBatch(batch.id);
      if (!fresh || (fresh.status !== "finalizing" && fresh.status !== "cancelling")) return;
      await this.finalize({ ...fresh, final_status: fresh.final_status ?? batch.final_status });
    } finally {
      await release();
    }
  }

  private startFinalize(batch: Batch): void {
    if (this.finalizing.has(batch.id)) return;
    this.finalizing.add(batch.id);
    this.finalizeOnce(batch)
      .catch((err) => this.log.error({ err, batch: batch.id }, "finalization failed; it will be retried"))
      .finally(() => {
        this.finalizing.delete(batch.id);
        this.apiKeys.delete(batch.id);
        this.coalesceFactor.delete(batch.id);
      });
  }

  private async apiKeyFor(batchId: string): Promise<string | undefined> {
    if (!this.apiKeys.has(batchId)) {
      const sealed = await this.store.getProviderKey(batchId);
      this.apiKeys.set(batchId, sealed ? this.vault.open(sealed) : undefined);
    }
    return this.apiKeys.get(batchId);
  }

  /** Sends one leased item and records what happened: an outcome, or a requeue with backoff. */
  private async send(item: RequestItem, batch: Batch, provider: Provider): Promise<void> {
    const controller = new AbortController();
    const set = this.inFlightByBatch.get(batch.id) ?? new Set();
    set.add(controller);
    this.inFlightByBatch.set(batch.id, set);
    this.inFlight.set(provider.name, this.inFlightCount(provider.name) + 1);
    try {
      const apiKey = await this.apiKeyFor(batch.id);
      const limiter = this.limiterFor(provider);
      let result: { outcome: ItemOutcome } | { retryAfter: number | null; last: ItemOutcome };
      let started = 0;
      try {
        const tokens = limiter.needsTokenCost(batch.model) ? requestTokenCost(item.body) : 0;
        await limiter.acquire(batch.model, tokens, controller.signal);
        const wire = translateRequest(batch.endpoint, item.body, provider.format);
        started = performance.now();
        const loopAtStart = performance.eventLoopUtilization();
        const cap = this.options.maxResponseBytes;
        const res = await provider.send({ endpoint: wire.endpoint, model: batch.model, body: wire.body, apiKey, maxResponseBytes: cap }, controller.signal);
        const latencyMs = performance.now() - started;
        // The latency-aware limit looks for the upstream's queue: the share of the call our own event loop was busy
        // (other calls' parsing, commits, an in-process upstream) is our queue, not the server's, so it is left out.
        // Measured (bench/overhead.ts, instant upstream, 10,000 items, maxConcurrency 64, loaded 2-core box): with the
        // raw latency the loop's own lag (p50 1.2 ms, p90 7 ms) read as queueing and held the limit at 3 (p50), 650
        // items/s, 0.28 of the plain client; leaving the busy share out lets it open to the configured 64.
        const busy = performance.eventLoopUtilization(loopAtStart).utilization;
        limiter.onAnswer(res.status, res.headers, Date.now(), { latencyMs: latencyMs * (1 - busy), inFlight: this.inFlightCount(provider.name) });
        this.observer?.upstreamAnswer(provider.name, res.status, latencyMs);
        const ok = res.status >= 200 && res.status < 300;
        // In-process providers build their answers themselves: the cap holds for them too.
        if (cap !== undefined && utf8LengthOver(res.body, cap)) result = { outcome: tooLarge(new ResponseTooLargeError(cap, res.status)) };
        else result = this.judge(res.status, res.headers, ok ? translateResponse(batch.endpoint, wire.endpoint, res.body) : res.body);
      } catch (err) {
        if (controller.signal.aborted) return; // cancel, expiry or shutdown decides this item's fate
        if (err instanceof ResponseTooLargeError) {
          limiter.onAnswer(err.status, {});
          this.observer?.upstreamAnswer(provider.name, err.status, performance.now() - started);
          await this.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: tooLarge(err) });
          return;
        }
        if (err instanceof TranslationError) {
          const message = `Field '${err.param}' cannot be translated for provider ${provider.name}: ${err.message}`;
          result = { outcome: noAnswer("failed", "untranslatable_field", message) };
          await this.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: result.outcome });
          return;
        }
        const code = err instanceof UpstreamUnreachableError ? err.code : "upstream_unreachable";
        limiter.onNoAnswer();
        this.observer?.upstreamAnswer(provider.name, code, started ? performance.now() - started : 0);
        result = { retryAfter: null, last: noAnswer("failed", code, (err as Error).message) };
      }
      // Awaiting the commit keeps this call's slot until its outcome is durable (see the class docstring).
      if ("outcome" in result) {
        await this.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: result.outcome });
      } else if (item.attempts >= this.options.retry.maxAttempts) {
        await this.record({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: result.last });
      } else {
        const delay = backoffMs(item.attempts, this.options.retry, result.retryAfter);
        await this.store.requeueItem(item.batch_id, item.line, this.workerId, Date.now() + delay);
      }
    } catch (err) {
      this.log.error({ err, batch: batch.id, custom_id: item.custom_id }, "dispatch failed; the lease will return the item to the queue");
    } finally {
      set.delete(controller);
      if (set.size === 0) this.inFlightByBatch.delete(batch.id);
      this.inFlight.set(provider.name, this.inFlightCount(provider.name) - 1);
      this.wake();
    }
  }

  /**
   * Starts the calls of a coalescing claim (engine/coalesce.ts): one per group, one per item that goes alone, at most
   * `share` of them; the items of calls past it go back to the queue at once (their claim counted an attempt). The
   * batch's claim factor follows how well its items group (halved towards items per call on such an overflow,
   * doubled back up to embeddingsCoalesce otherwise), so a batch of list inputs soon claims one item per slot.
   * @returns the calls started (concurrency slots taken).
   */
  private async dispatchCoalesced(items: RequestItem[], batch: Batch, provider: Provider, share: number, k: number): Promise<number> {
    const plan = planCalls(items, batch.endpoint, provider, batch.model);
    const calls: (GroupEntry[] | RequestItem)[] = [...plan.groups, ...plan.alone];
    const max = provider.embeddingsCoalesce ?? 1;
    if (calls.length > share) {
      for (const c of calls.slice(share)) {
        for (const item of Array.isArray(c) ? c.map((e) => e.item) : [c]) await this.store.requeueItem(item.batch_id, item.line, this.workerId, Date.now());
      }
      this.coalesceFactor.set(batch.id, Math.max(1, Math.floor(items.length / calls.length)));
      calls.length = share;
    } else if (k < max) this.coalesceFactor.set(batch.id, Math.min(max, k * 2));
    for (const c of calls) void (Array.isArray(c) ? this.sendCoalesced(c, batch, provider) : this.send(c, batch, provider));
    return calls.length;
  }

  /**
   * Sends one group of leased embeddings items as one call (split and sent again when the upstream refuses the group)
   * and records every item's outcome in one commit, holding one concurrency slot throughout, as `send` does for one.
   */
  private async sendCoalesced(entries: GroupEntry[], batch: Batch, provider: Provider): Promise<void> {
    const controller = new AbortController();
    const set = this.inFlightByBatch.get(batch.id) ?? new Set();
    set.add(controller);
    this.inFlightByBatch.set(batch.id, set);
    this.inFlight.set(provider.name, this.inFlightCount(provider.name) + 1);
    try {
      const limiter = this.limiterFor(provider);
      const host: GroupHost = {
        provider,
        limiter,
        model: batch.model,
        apiKey: await this.apiKeyFor(batch.id),
        maxResponseBytes: this.options.maxResponseBytes,
        judge: (status, headers, text) => this.judge(status, headers, text),
        translateBack: (wireEndpoint, body) => translateResponse(batch.endpoint, wireEndpoint, body),
        answered: (outcome, latencyMs, status, headers) => {
          if (status === null) limiter.onNoAnswer();
          else limiter.onAnswer(status, headers ?? {}, Date.now(), { latencyMs, inFlight: this.inFlightCount(provider.name) });
          this.observer?.upstreamAnswer(provider.name, outcome, latencyMs);
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
        if ("outcome" in r) records.push({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: r.outcome });
        else if (item.attempts >= this.options.retry.maxAttempts) records.push({ batch_id: item.batch_id, line: item.line, lease_owner: this.workerId, outcome: r.last });
        else {
          const key = `${item.attempts}/${r.retryAfter}`;
          if (!due.has(key)) due.set(key, Date.now() + backoffMs(item.attempts, this.options.retry, r.retryAfter));
          requeues.push(this.store.requeueItem(item.batch_id, item.line, this.workerId, due.get(key)!));
        }
      });
      await Promise.all(requeues);
      // Awaiting the commit keeps this call's slot until its outcomes are durable (see the class docstring).
      if (records.length > 0) await this.record(records);
    } catch (err) {
      this.log.error({ err, batch: batch.id, items: entries.length }, "coalesced dispatch failed; the leases will return the items to the queue");
    } finally {
      set.delete(controller);
      if (set.size === 0) this.inFlightByBatch.delete(batch.id);
      this.inFlight.set(provider.name, this.inFlightCount(provider.name) - 1);
      this.wake();
    }
  }

  /** Decides what an upstream answer means: a final outcome, or a retry (with the outcome to keep if none is left). */
  private judge(status: number, headers: Record<string, string>, text: string): { outcome: ItemOutcome } | { retryAfter: number | null; last: ItemOutcome } {
    const requestId = headers["x-request-id"] ?? newId("req_");
    let json: unknown;
    let parsed = true;
    try {
      json = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (status >= 200 && status < 300) {
      if (parsed && typeof json === "object" && json !== null) {
        return { outcome: { state: "succeeded", status_code: status, request_id: requestId, response_body: text, error_code: null, error_message: null, usage: readUsage(json) } };
      }
      // A 2xx we cannot read is an upstream glitch; try again, and report it if it persists.
      return { retryAfter: null, last: noAnswer("failed", "invalid_upstream_response", `Upstream answered ${status} with a body that is not a JSON object: ${text.slice(0, 200)}`) };
    }
    const outcome: ItemOutcome = {
      state: "failed",
      status_code: status,
      request_id: requestId,
      response_body: parsed ? text : JSON.stringify({ error: { message: text.slice(0, 10_000), type: "upstream_error" } }),
      error_code: null,
      error_message: null,
      usage: null,
    };
    if (isRetryableStatus(status)) return { retryAfter: retryAfterMs(headers), last: outcome };
    return { outcome };
  }

  /**
   * Buffers one call's outcomes (one, or a coalesced group's) for the next group commit.
   * @returns once the commit that holds them has ended (written or failed).
   */
  private record(r: OutcomeRecord | OutcomeRecord[]): Promise<void> {
    return new Promise((committed) => {
      const records = Array.isArray(r) ? r : [r];
      this.pending.push({ records, committed });
      this.pendingRecords += records.length;
      // Every call in flight waiting for the commit: waiting longer groups nothing more.
      let calls = 0;
      for (const n of this.inFlight.values()) calls += n;
      if (this.pendingRecords >= 1024 || this.pending.length >= calls) void this.flush();
      else if (this.pending.length === 1) setTimeout(() => void this.flush(), this.options.groupCommitMs ?? 5);
    });
  }

  /** Writes buffered outcomes in one transaction (group commit). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const group = this.pending;
    this.pending = [];
    this.pendingRecords = 0;
    this.flushing = this.store
      .recordOutcomes(
        group.length === 1 ? group[0]!.records : group.flatMap((g) => g.records),
        Date.now(),
      )
      // A batch whose last outcomes just landed can be finalized now rather than at the next poll.
      .then(() => this.wake())
      .catch((err) => this.log.error({ err }, "recording outcomes failed; their leases will return them to the queue"))
      .finally(() => {
        this.flushing = null;
        for (const g of group) g.committed();
      });
    await this.flushing;
  }
}

/** True when `text` takes more than `limit` bytes in UTF-8 (it takes at least one per UTF-16 unit, at most three). */
function utf8LengthOver(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return Buffer.byteLength(text, "utf8") > limit;
}

/** The outcome of an item whose answer was past the cap: failed alone, at once (the same request answers as much again). */
function tooLarge(err: ResponseTooLargeError): ItemOutcome {
  return noAnswer("failed", "response_too_large", err.message);
}

function noAnswer(state: ItemOutcome["state"], code: string, message: string): ItemOutcome {
  return { state, status_code: null, request_id: null, response_body: null, error_code: code, error_message: message, usage: null };
}
