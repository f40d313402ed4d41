import { join } from "node:path";
import { isTerminal, type Batch, type BatchEndpoint, type BatchView, type ItemState } from "../core/batch.js";
import type { Config } from "../core/config.js";
import type { ModelPrice } from "../core/pricing.js";
import type { ProviderRateLimiter } from "./rate-limiter.js";
import { invalidRequest, notFound, OpenBatchError } from "../core/errors.js";
import { ProviderRegistry } from "../providers/registry.js";
import type { BlobStorage } from "../store/blob-store.js";
import { openStore } from "../store/open.js";
import { SharedRateLimiter, type BudgetCoordinator } from "./shared-budget.js";
import type { BatchListQuery, FinishedItem, Page, Store } from "../store/store.js";
import { DirectCalls, type InferAnswer } from "./direct-calls.js";
import { Dispatcher } from "./dispatcher.js";
import { FileService, type Caller } from "./files.js";
import { Finalizer, type FinalizeOptions } from "./finalizer.js";
import { sweepOrphans } from "./orphan-sweep.js";
import { KeyVault } from "./key-vault.js";
import { EngineMetrics } from "./metrics.js";
import { silentLog, type Log } from "./log.js";
import { WebhookSender } from "./webhooks.js";
import type { WebhookDeliveryLog } from "../store/webhook-outbox.js";
import { RetentionSweeper, type RetentionOptions } from "./retention.js";
import { NativeRunner } from "./native/runner.js";
import { GatewayRouting } from "./gateway-routing.js";
import { InlineBatches } from "./inline-batches.js";
import { retryBatch } from "./batch-retry.js";
import { FileBatches } from "./file-batches.js";
import { withCounts } from "./batch-counts.js";
import type { CreateBatchInput, EngineOptions, InlineBatchInput, InlineRequest } from "./engine-types.js";

// The input and option types live in engine-types.ts; callers keep importing them from here.
export type { CreateBatchInput, EngineOptions, InlineBatchInput, InlineRequest } from "./engine-types.js";

/** Most bytes of results read from the store at once for a listing or a results stream (at least one item). */
const RESULT_PAGE_BYTES = 16 * 1024 * 1024;

/**
 * The batch engine: the operations every dialect calls (createBatch, getBatch, listBatches, cancelBatch, files),
 * over a Store, blob storage, providers and the Dispatcher. Owns start-up recovery and finalization.
 */
export class Engine {
  readonly files: FileService;
  readonly providers: ProviderRegistry;
  readonly metrics: EngineMetrics;
  private readonly dispatcher: Dispatcher;
  private readonly direct: DirectCalls;
  private readonly webhooks: WebhookSender;
  private readonly retention: RetentionSweeper;
  private readonly native: NativeRunner;
  private readonly finalizer: Finalizer;
  private readonly routing: GatewayRouting;
  private readonly inline: InlineBatches;
  private readonly fileBatches: FileBatches;
  /** Bytes of results per store page in listings and results streams. */
  private readonly pageBytes: number;

  private constructor(
    readonly store: Store,
    private readonly blobs: BlobStorage,
    vault: KeyVault,
    private readonly config: Config,
    private readonly log: Log,
    pollMs: number,
    cacheDir: string,
    retention: RetentionOptions = {},
    finalization: FinalizeOptions = {},
    /** Budgets shared with other workers (PostgreSQL), and whether this process dispatches. */
    private readonly scale: { budgets: BudgetCoordinator | null; dispatch: boolean } = { budgets: null, dispatch: true },
  ) {
    this.files = new FileService(store, blobs, config.limits.maxFileBytes, retention.now);
    this.finalizer = new Finalizer(store, this.files, log, finalization);
    this.pageBytes = finalization.pageBytes ?? RESULT_PAGE_BYTES;
    this.retention = new RetentionSweeper(store, this.files, log, retention);
    this.providers = new ProviderRegistry(config, { cacheDir });
    this.metrics = new EngineMetrics({
      store,
      limiters: () => this.dispatcher.rateLimiters(),
      inFlight: (provider) => this.dispatcher.inFlightCount(provider),
    });
    this.native = new NativeRunner(store, this.providers, vault, log, this.metrics.registry, () => this.dispatcher.wake());
    this.dispatcher = new Dispatcher(
      store,
      this.providers,
      vault,
      {
        retry: config.retry,
        leaseMs: config.leaseMs,
        pollMs,
        leaseSweepMs: 5_000,
        maxResponseBytes: config.limits.maxResponseBytes,
        // Workers sharing a database spend their share of each provider's budgets and share its pauses.
        limiterFor: scale.budgets ? (provider) => new SharedRateLimiter(provider, scale.budgets!) : undefined,
      },
      log,
      (batch) => this.finalize(batch),
      this.metrics,
      this.native,
    );
    this.direct = new DirectCalls(this.providers, (provider) => this.dispatcher.limiterFor(provider), config.retry);
    this.webhooks = new WebhookSender(store.webhookOutbox, config.webhooks, config.webhookDelivery, log, pollMs);
    this.routing = new GatewayRouting(this.providers, vault);
    this.fileBatches = new FileBatches({
      store,
      files: this.files,
      providers: this.providers,
      routing: this.routing,
      config,
      view: (id) => this.view(id),
      wake: () => this.dispatcher.wake(),
    });
    this.inline = new InlineBatches({
      store,
      providers: this.providers,
      routing: this.routing,
      config,
      getBatch: (caller, id) => this.getBatch(caller, id),
      view: (id) => this.view(id),
      wake: () => this.dispatcher.wake(),
    });
  }

  /**
   * Opens (creating if needed) the store: the embedded one in `dataDir` (`openbatch.db` in SQLite, and `files/`), or
   * PostgreSQL when `databaseUrl` is given (store/open.ts picks).
   */
  static async open(options: EngineOptions): Promise<Engine> {
    const { kind, store, blobs, vault, budgets } = await openStore({ dataDir: options.dataDir, databaseUrl: options.databaseUrl }, { blobs: options.blobs });
    return new Engine(
      store,
      blobs,
      vault,
      options.config,
      options.log ?? silentLog,
      // On PostgreSQL, NOTIFY wakes dispatchers when work arrives: the poll is only a fallback.
      options.pollMs ?? (kind === "postgres" ? 1000 : 250),
      options.cacheDir ?? join(options.dataDir, "cache"),
      options.retention,
      options.finalization,
      { budgets, dispatch: options.dispatch ?? true },
    );
  }

  /**
   * Recovers what a previous process left (the embedded store has one owner, so every lease it held is returned to
   * the queue, validations cut short are redone, and files a write cut short left are deleted), then starts dispatching.
   */
  async start(): Promise<void> {
    await sweepOrphans(this.store, this.blobs, this.log);
    if (this.store.shared) return this.startShared();
    for (const batch of await this.store.batchesInStatus(["in_progress", "cancelling", "finalizing"])) {
      const released = await this.store.releaseLeases(batch.id, Infinity);
      if (released > 0) this.log.info({ batch: batch.id, released }, "returned items leased by a previous process to the queue");
    }
    for (const batch of await this.store.batchesInStatus(["validating", "cancelling"])) {
      if (batch.in_progress_at !== null || batch.input_file_id === null) continue;
      // Cut short while validating: validate again, unless the user cancelled meanwhile.
      await this.store.deleteItems(batch.id);
      if (batch.status === "validating") await this.ingest(batch);
      else await this.store.updateBatch(batch.id, ["cancelling"], { status: "cancelled", cancelled_at: Date.now() });
    }
    this.dispatcher.start();
    this.native.start();
    this.webhooks.start();
    this.retention.start();
  }

  /**
   * Start-up on a store many processes share: leases and validations in progress may be other live processes', so none
   * is taken back here (a dead worker's leases return when its heartbeat stops, or at lease expiry). A dispatching
   * process registers its worker with the providers it has, and wakes whenever another process announces work.
   */
  private async startShared(): Promise<void> {
    if (this.scale.dispatch) {
      await this.store.registerWorker?.(this.dispatcher.workerId, this.providers.names());
      this.store.onWork?.(() => {
        this.dispatcher.wake();
        this.native.wake();
      });
      this.dispatcher.start();
      this.native.start();
    }
    this.webhooks.start();
    this.retention.start();
  }

  async close(): Promise<void> {
    await this.retention.stop();
    await this.native.stop();
    await this.dispatcher.stop();
    await this.webhooks.stop();
    await this.providers.close();
    await this.store.close();
  }

  /**
   * Creates a batch from an uploaded JSONL file. Every request line is a durable item before this returns; an invalid
   * file yields a batch in `failed` with `errors` (1-based lines), as OpenAI does (engine/file-batches.ts).
   * @throws OpenBatchError 400 for a bad endpoint, window, metadata, provider header, or a missing/foreign file.
   */
  createBatch(caller: Caller, input: CreateBatchInput): Promise<BatchView> {
    return this.fileBatches.createBatch(caller, input);
  }

  /**
   * Creates a batch from requests sent inline (Anthropic, Gemini, seed 001) rather than a file. With `start`, it runs
   * at once; without, it waits in `created` for more `addRequests` calls and `startBatch`. Every request is a durable
   * item before this returns (engine/inline-batches.ts).
   * @throws OpenBatchError 400 for a duplicate custom_id, a bad window, or an unknown gateway provider.
   */
  createInlineBatch(caller: Caller, input: InlineBatchInput): Promise<BatchView> {
    return this.inline.createInlineBatch(caller, input);
  }

  /**
   * Adds requests to a batch that is `created` or still running (seed 001 allows both).
   * @throws OpenBatchError 404, 400 (duplicate custom_id: none of the call's requests is added), 409 once it ended.
   */
  addRequests(caller: Caller, id: string, requests: InlineRequest[]): Promise<BatchView> {
    return this.inline.addRequests(caller, id, requests);
  }

  /**
   * Starts a `created` batch; its completion window counts from now. Starting a running batch is a no-op.
   * @throws OpenBatchError 404, or 409 when it ended or has no requests.
   */
  startBatch(caller: Caller, id: string): Promise<BatchView> {
    return this.inline.startBatch(caller, id);
  }

  /**
   * One page of a batch's items in input order, optionally only those in `states`; `after` is an item id cursor.
   * Results of finished items are readable while the batch still runs. @throws OpenBatchError 404.
   */
  async listItems(caller: Caller, id: string, q: { after?: string; limit: number; states?: readonly ItemState[] }): Promise<Page<FinishedItem>> {
    await this.getBatch(caller, id);
    let afterLine = 0;
    if (q.after) {
      const line = await this.store.lineOfItem(id, q.after);
      if (line === null) throw invalidRequest(`No request ${q.after} in batch ${id}.`, "after");
      afterLine = line;
    }
    // Bounded by bytes too: a page of large results holds fewer than `limit` (at least one), and says has_more.
    const rows = await this.store.pageItems(id, afterLine, q.limit + 1, q.states, this.pageBytes);
    if (rows.length > q.limit) return { data: rows.slice(0, q.limit), has_more: true };
    return { data: rows, has_more: rows.length > 0 && (await this.store.hasItemsAfter(id, rows[rows.length - 1]!.line, q.states)) };
  }

  /**
   * Every item of a batch in input order, page by page (for dialects that stream all results at once). Pages are bounded
   * by count and bytes, so memory stays bounded whatever the items hold; render and send each item before the next.
   */
  async *allItems(caller: Caller, id: string, states?: readonly ItemState[]): AsyncGenerator<FinishedItem> {
    await this.getBatch(caller, id);
    let after = 0;
    for (;;) {
      const page = await this.store.pageItems(id, after, 1000, states, this.pageBytes);
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.line;
    }
  }

  /**
   * Re-runs what did not succeed: a new batch, in the same dialect, endpoint, model and provider, holding the failed,
   * expired and cancelled items of an ended batch (same custom_ids and bodies). A gateway key was erased when the
   * source ended, so pass `gateway` again for a batch that used one.
   * @throws OpenBatchError 404, 409 when the batch has not ended or nothing in it failed, 400 (gateway_key_required)
   * when the source ran on a gateway key and `gateway` brings none.
   */
  retryBatch(caller: Caller, id: string, gateway?: CreateBatchInput["gateway"]): Promise<BatchView> {
    const deps = { store: this.store, routing: this.routing, getBatch: (c: Caller, b: string) => this.getBatch(c, b), startBatch: (c: Caller, b: string) => this.startBatch(c, b) };
    return retryBatch(deps, caller, id, gateway);
  }

  /** Deletes an ended batch and its items. @throws OpenBatchError 404, or 409 while it is still running. */
  async deleteBatch(caller: Caller, id: string): Promise<void> {
    const batch = await this.getBatch(caller, id);
    if (!isTerminal(batch.status)) throw new OpenBatchError("conflict", `Batch ${id} is ${batch.status}; cancel it and wait for it to end before deleting.`, { code: "batch_not_ended" });
    await this.store.deleteBatch(id);
  }

  /** Validates and stores the items of a `validating` batch, then moves it to in_progress or failed (engine/file-batches.ts). */
  private ingest(batch: Batch): Promise<void> {
    return this.fileBatches.ingest(batch);
  }

  /** The batch with live counts and usage. @throws OpenBatchError 404 when missing or someone else's. */
  async getBatch(caller: Caller, id: string): Promise<BatchView> {
    const batch = await this.store.getBatch(id);
    if (!batch || (caller !== null && batch.owner !== caller)) throw notFound(`No batch found with id '${id}'.`, "batch_id");
    return this.withCounts(batch);
  }

  /** Newest first, `limit` per page after cursor `after` (a batch id). */
  async listBatches(caller: Caller, q: BatchListQuery): Promise<Page<BatchView>> {
    const page = await this.store.listBatches({ owner: caller, ...q });
    return { data: await Promise.all(page.data.map((b) => this.withCounts(b))), has_more: page.has_more };
  }

  /**
   * Cancels a batch: no new calls, calls in flight aborted, unfinished items end as `batch_cancelled`, partial output kept.
   * @returns the batch in `cancelling` (or already further). @throws OpenBatchError 404, or 409 when it already ended.
   */
  async cancelBatch(caller: Caller, id: string): Promise<BatchView> {
    const batch = await this.getBatch(caller, id);
    if (batch.status === "cancelling" || batch.status === "cancelled") return batch;
    const moved = await this.store.updateBatch(id, ["created", "validating", "in_progress"], { status: "cancelling", cancelling_at: Date.now(), final_status: "cancelled" });
    if (!moved) {
      const now = await this.getBatch(caller, id);
      if (now.status === "cancelling" || now.status === "cancelled") return now;
      if (now.status === "finalizing") {
        throw new OpenBatchError(
          "conflict",
          `Cannot cancel batch ${id}: it is finalizing. Every request has finished and its result files are being written; it ends ` +
            `${now.final_status === "expired" ? "expired" : "completed"} once they are, or failed (the reason in errors) if they still cannot be written after ${this.finalizer.maxAttempts} attempts.`,
          { code: "batch_finalizing" },
        );
      }
      throw new OpenBatchError("conflict", `Cannot cancel a batch with status '${now.status}'.`, { code: "batch_not_cancellable" });
    }
    this.dispatcher.abortBatch(id);
    this.dispatcher.wake();
    this.native.wake();
    return this.getBatch(caller, id);
  }

  /**
   * The webhook deliveries of a batch's end event (one per webhook URL), each with its attempts, in creation order;
   * `after` is a delivery id cursor. @throws OpenBatchError 404 (missing or someone else's batch), 400 for a bad cursor.
   */
  async webhookDeliveries(caller: Caller, id: string, q: { after?: string; limit: number }): Promise<Page<WebhookDeliveryLog>> {
    await this.getBatch(caller, id);
    return this.store.webhookOutbox.listDeliveries(id, q);
  }

  private async view(id: string): Promise<BatchView> {
    return this.withCounts((await this.store.getBatch(id))!);
  }

  /** The batch with live counts, usage and estimated cost (engine/batch-counts.ts). */
  private withCounts(batch: Batch): Promise<BatchView> {
    return withCounts(this.store, this.config.prices, batch);
  }

  /**
   * Writes the output and error files and moves the batch to its final status (completed, expired or cancelled), or
   * to failed when they cannot be written (engine/finalizer.ts retries, then gives up).
   */
  private async finalize(batch: Batch): Promise<void> {
    await this.finalizer.run(batch);
  }

  /** One synchronous call through the providers (gateway mode); see DirectCalls.infer. */
  infer(endpoint: BatchEndpoint, body: unknown, gateway: CreateBatchInput["gateway"], signal: AbortSignal): Promise<InferAnswer> {
    return this.direct.infer(endpoint, body, gateway, signal);
  }

  /** Embeddings inside the provider's rate limits and retry policy (the vectorizer); see DirectCalls.embedTexts. */
  embedTexts(model: string, texts: string[], signal?: AbortSignal): Promise<number[][]> {
    return this.direct.embedTexts(model, texts, signal);
  }

  /** Embeddings for a collection's Weaviate vectorizer module (config collections.vectorizerModels); see DirectCalls.embedForModule. */
  embedForModule(req: { module: string; model: string; endpoint: string | null }, texts: string[], signal?: AbortSignal): Promise<number[][]> {
    return this.direct.embedForModule(req, texts, this.config.collections.vectorizerModels, signal);
  }

  /** Model ids a caller can route to: exact ids in the config's `models`, and the built-in `local/glove-100d`. */
  listModels(): string[] {
    return this.providers.modelIds();
  }

  /** Rate limiters of this process's dispatcher by provider name: concurrency window, budgets, 429s, pause (read-only use). */
  rateLimiters(): ReadonlyMap<string, ProviderRateLimiter> {
    return this.dispatcher.rateLimiters();
  }

  /** Calls in flight from this process to `provider`. */
  inFlightCount(provider: string): number {
    return this.dispatcher.inFlightCount(provider);
  }

  /** The config's model prices, USD per 1 M tokens, by model id or glob (first match wins). */
  get prices(): Readonly<Record<string, ModelPrice>> {
    return this.config.prices;
  }

  /** Most request lines one batch may hold (config `limits.maxRequestsPerBatch`). */
  get maxRequestsPerBatch(): number {
    return this.config.limits.maxRequestsPerBatch;
  }

  /** True when the batch is done (for in-process callers such as `openbatch run`). */
  static isDone(batch: Batch): boolean {
    return isTerminal(batch.status);
  }
}
