import { randomBytes } from "node:crypto";
import type { Batch, ItemOutcome, RequestItem } from "../core/batch.js";
import type { Provider } from "../providers/provider.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { OutcomeRecord, Store } from "../store/store.js";
import type { KeyVault } from "./key-vault.js";
import { ProviderRateLimiter } from "./rate-limiter.js";
import { coalesces, planCalls, type GroupEntry } from "./coalesce.js";
import type { Log } from "./log.js";
import type { NativeGate } from "./native/runner.js";
import type { RetrySettings } from "./retry-policy.js";
import { ItemSender, type DispatchObserver } from "./item-sender.js";
import { OutcomeRecorder } from "./outcome-recorder.js";
import { noAnswer } from "./upstream-answer.js";

export type { DispatchObserver } from "./item-sender.js";

/**
 * Most items one claim takes. A coalescing batch asks for up to 64 per free slot (4,096 with 64 slots): claiming them
 * took 61 ms and, grouped, held the event loop 119 ms (bench/coalesce.ts, rpm 3,000, loaded 2-core box; calls bunched
 * behind such a stall arrive close together and draw 429s); claims of 512 took 10-16 ms each.
 */
const CLAIM_MAX_ITEMS = 512;

/**
 * Longest an item claimed ahead waits to be sent, ms. Claiming ahead saves a round trip per round of calls, which only
 * matters while calls take milliseconds; an item that waits this long is returned to the queue (its claim still
 * counted an attempt) well before its lease could end.
 */
const READY_MAX_AGE_MS = 5_000;

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
  private readonly limiters = new Map<string, ProviderRateLimiter>();
  private readonly apiKeys = new Map<string, string | undefined>();
  private readonly finalizing = new Set<string>();
  /** The condition failing every dispatcher pass, while one does (logged once), and how many passes it failed. */
  private passFailure: { condition: string; count: number } | null = null;
  /**
   * Batch id → items claimed ahead and leased to this worker, not sent yet, and when the oldest of them was claimed
   * (unix ms; shared stores; see dispatchSingles).
   */
  private readonly ready = new Map<string, { items: RequestItem[]; at: number }>();
  /** Batches whose items waited too long once claimed ahead: they claim only for free slots from then on. */
  private readonly noAhead = new Set<string>();
  /** Batch id → items claimed per concurrency slot while its embeddings coalesce (engine/coalesce.ts). */
  private readonly coalesceFactor = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** A pass asked for at once (setImmediate, not a 1 ms timer; see `wake`). */
  private immediate: NodeJS.Immediate | null = null;
  private running = false;
  private again = false;
  private stopped = true;
  private lastSweep = 0;
  /** Provider name → round-robin position among its batches; moves only when a pass hands out work. */
  private readonly turn = new Map<string, number>();
  /** Sends claimed items upstream and counts the calls in flight (engine/item-sender.ts). */
  private readonly sender: ItemSender;
  /** Group commit of outcomes (engine/outcome-recorder.ts). */
  private readonly recorder: OutcomeRecorder;

  constructor(
    private readonly store: Store,
    private readonly providers: ProviderRegistry,
    private readonly vault: KeyVault,
    private readonly options: DispatcherOptions,
    private readonly log: Log,
    /** Writes result files and ends the batch; called once nothing of it is unfinished. */
    private readonly finalize: (batch: Batch) => Promise<void>,
    /** Told of every upstream answer (metrics); handed to the sender. */
    observer?: DispatchObserver,
    /** Says which batches run on a provider's own batch API (engine/native): their items are not claimed here. */
    private readonly native?: NativeGate,
  ) {
    this.sender = new ItemSender({
      workerId: this.workerId,
      store,
      log,
      retry: options.retry,
      maxResponseBytes: options.maxResponseBytes,
      observer,
      limiterFor: (provider) => this.limiterFor(provider),
      apiKeyFor: (batchId) => this.apiKeyFor(batchId),
      record: (r) => this.record(r),
      wake: () => this.wake(),
    });
    // A commit written wakes a pass: a batch whose last outcomes just landed can be finalized at once.
    this.recorder = new OutcomeRecorder(store, log, options.groupCommitMs, () => this.sender.totalInFlight(), () => this.wake());
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Stops scheduling, aborts calls in flight (their leases stay and return to the queue on restart) and flushes outcomes. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.sender.abortAll();
    this.ready.clear(); // leased to this worker: the store returns them when it closes, or their lease does
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
    this.ready.delete(batchId);
    this.sender.abortBatch(batchId);
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
    return this.sender.inFlightCount(provider);
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
    const running = new Set<string>();
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
      running.add(batch.id);
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
        // Whether this pass found the batch's due items exhausted: only then can its next retry time set the sleep.
        let drained = false;
        if (!provider) {
          // On a shared store another worker may have this provider (a GPU box's local model): leave its items to it.
          if (this.store.shared && batch.provider !== null) continue;
          await this.failUnroutable(batch, now);
        } else if (free > 0 && paused <= 0) {
          const share = Math.ceil(free / (order.length - i));
          const leaseUntil = now + (this.options.leaseMs ?? provider.timeoutMs + 60_000);
          // Coalescing embeddings: a slot carries up to embeddingsCoalesce items (one upstream call).
          const k = coalesces(provider, batch.endpoint) ? (this.coalesceFactor.get(batch.id) ?? provider.embeddingsCoalesce!) : 1;
          let started: number;
          if (k > 1) {
            const want = share * k;
            const items = await this.store.claimItems(batch.id, this.workerId, Math.min(want, CLAIM_MAX_ITEMS), now, leaseUntil);
            drained = items.length < Math.min(want, CLAIM_MAX_ITEMS);
            // The rest of a large claim comes in the next pass, at once: the event loop runs in between.
            if (want > CLAIM_MAX_ITEMS && items.length === CLAIM_MAX_ITEMS) this.wake();
            started = items.length > 0 ? await this.dispatchCoalesced(items, batch, provider, share, k) : 0;
          } else {
            ({ started, drained } = await this.dispatchSingles(batch, provider, share, now, leaseUntil));
          }
          free -= started;
          if (started > 0 && !claimed) {
            claimed = true;
            // The next pass that hands out work starts from the batch after this one.
            this.turn.set(name, offset + i + 1);
          }
        }
        if (!this.sender.hasCallsFor(batch.id) && !(await this.store.hasUnfinished(batch.id))) {
          await this.flush();
          if (await this.store.updateBatch(batch.id, ["in_progress"], { status: "finalizing", finalizing_at: Date.now(), final_status: "completed" })) {
            this.startFinalize({ ...batch, status: "finalizing", final_status: "completed" });
          }
          continue;
        }
        // With due items left or every slot busy, a call ending wakes the next pass; asking for the next retry time
        // then cost a query per pass (on PostgreSQL 8.6 ms of a 15 ms pass at 20,000 items: the scan passes over the
        // index entries of the items already claimed).
        if (!drained) continue;
        const next = await this.store.nextAttemptAt(batch.id);
        if (next !== null && next > now) sleep = Math.min(sleep, next - now);
      }
    }
    // Claimed ahead for a batch that is no longer run here (ended, cancelled, handed to a vendor): never sent; their
    // leases return them (settled ones are not touched again).
    for (const id of this.ready.keys()) if (!running.has(id)) this.ready.delete(id);
    return sleep;
  }

  /**
   * Starts up to `share` calls of one item each: first items claimed ahead in an earlier pass, then a claim. On a
   * shared store a claim is a round trip the freed slots would wait for, so it also takes up to `share` items more,
   * kept leased here for the next pass: slots freed by a commit start their next calls at once while this claim runs.
   * Measured together with store migration 5 and fresh planner statistics (bench/scale-out.ts, 50,000 items, instant
   * upstream, maxConcurrency 64, 2 runs alternating with the code before, quiet 2-core box): PostgreSQL 2,680–2,714 →
   * 3,912–4,211 items/s. Items claimed ahead that wait longer than readyMaxAgeMs (a slow upstream, where the round
   * trip is no matter) go back to the queue before their lease could run out, and the batch stops claiming ahead.
   * @returns calls started, and whether the claim found the batch's due items exhausted.
   */
  private async dispatchSingles(batch: Batch, provider: Provider, share: number, now: number, leaseUntil: number): Promise<{ started: number; drained: boolean }> {
    const maxAge = this.store.shared ? this.readyMaxAgeMs(provider) : 0;
    let held = this.ready.get(batch.id);
    if (held && now - held.at > maxAge) {
      this.ready.delete(batch.id);
      this.noAhead.add(batch.id);
      for (const item of held.items) await this.store.requeueItem(item.batch_id, item.line, this.workerId, now);
      held = undefined;
    }
    const ready = held?.items ?? [];
    const fromReady = ready.splice(0, share);
    for (const item of fromReady) void this.sender.send(item, batch, provider);
    const since = ready.length > 0 ? held!.at : now;
    const ahead = maxAge > 0 && !this.noAhead.has(batch.id) ? Math.max(0, share - ready.length) : 0;
    const limit = Math.min(share - fromReady.length + ahead, CLAIM_MAX_ITEMS);
    if (limit <= 0) {
      if (ready.length === 0) this.ready.delete(batch.id);
      return { started: fromReady.length, drained: false };
    }
    const items = await this.store.claimItems(batch.id, this.workerId, limit, now, leaseUntil);
    const sendNow = items.splice(0, share - fromReady.length);
    for (const item of sendNow) void this.sender.send(item, batch, provider);
    ready.push(...items);
    if (ready.length > 0) this.ready.set(batch.id, { items: ready, at: since });
    else this.ready.delete(batch.id);
    return { started: fromReady.length + sendNow.length, drained: sendNow.length + items.length < limit };
  }

  /**
   * Longest an item claimed ahead may wait to be sent, ms: READY_MAX_AGE_MS, or less when the lease leaves less than
   * that beyond one whole call (provider timeout); 0 or less: never claim ahead.
   */
  private readyMaxAgeMs(provider: Provider): number {
    const lease = this.options.leaseMs ?? provider.timeoutMs + 60_000;
    return Math.min(READY_MAX_AGE_MS, lease - provider.timeoutMs);
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
        this.noAhead.delete(batch.id);
      });
  }

  private async apiKeyFor(batchId: string): Promise<string | undefined> {
    if (!this.apiKeys.has(batchId)) {
      const sealed = await this.store.getProviderKey(batchId);
      this.apiKeys.set(batchId, sealed ? this.vault.open(sealed) : undefined);
    }
    return this.apiKeys.get(batchId);
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
    for (const c of calls) void (Array.isArray(c) ? this.sender.sendCoalesced(c, batch, provider) : this.sender.send(c, batch, provider));
    return calls.length;
  }

  /**
   * Buffers one call's outcomes (one, or a coalesced group's) for the next group commit.
   * @returns once the commit that holds them has ended (written or failed).
   */
  private record(r: OutcomeRecord | OutcomeRecord[]): Promise<void> {
    return this.recorder.record(r);
  }

  /** Writes buffered outcomes in one transaction (group commit). */
  async flush(): Promise<void> {
    return this.recorder.flush();
  }
}
