import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BATCH_ENDPOINTS, isTerminal, type Batch, type BatchEndpoint, type BatchView, type BatchValidationError } from "../core/batch.js";
import type { Config } from "../core/config.js";
import { parseCompletionWindow } from "../core/duration.js";
import { invalidRequest, notFound, OpenBatchError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { validateMetadata } from "../core/metadata.js";
import { UpstreamUnreachableError } from "../providers/provider.js";
import { ProviderRegistry } from "../providers/registry.js";
import { BlobStore } from "../store/blob-store.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";
import type { Page, Store } from "../store/store.js";
import { Dispatcher } from "./dispatcher.js";
import { FileService, type Caller } from "./files.js";
import { writeResultFiles } from "./finalizer.js";
import { ingestRequestFile } from "./ingest.js";
import { KeyVault } from "./key-vault.js";
import { EngineMetrics } from "./metrics.js";
import { silentLog, type Log } from "./log.js";

/** What a dialect passes to create a batch from an uploaded file (OpenAI `POST /v1/batches`). */
export interface CreateBatchInput {
  input_file_id: unknown;
  endpoint: unknown;
  completion_window: unknown;
  metadata?: unknown;
  /** Our extension: scheduling priority among batches sharing a provider (integer, higher first; default 0). */
  priority?: unknown;
  dialect: string;
  /** Gateway routing: a provider name/type/preset from `x-openbatch-provider`, and the upstream key to use for this batch. */
  gateway?: { provider: string; apiKey: string | null };
}

/** Engine settings beyond the config file. */
export interface EngineOptions {
  dataDir: string;
  config: Config;
  log?: Log;
  /** Longest idle wait between dispatcher passes, ms (default 250). */
  pollMs?: number;
  /** Where derived model files are cached (default `<dataDir>/cache`). */
  cacheDir?: string;
}

/**
 * The batch engine: the operations every dialect calls (createBatch, getBatch, listBatches, cancelBatch, files),
 * over a Store, blob storage, providers and the Dispatcher. Owns start-up recovery and finalization.
 */
export class Engine {
  readonly files: FileService;
  readonly providers: ProviderRegistry;
  readonly metrics: EngineMetrics;
  private readonly dispatcher: Dispatcher;

  private constructor(
    readonly store: Store,
    blobs: BlobStore,
    private readonly vault: KeyVault,
    private readonly config: Config,
    private readonly log: Log,
    pollMs: number,
    cacheDir: string,
  ) {
    this.files = new FileService(store, blobs, config.limits.maxFileBytes);
    this.providers = new ProviderRegistry(config, { cacheDir });
    this.metrics = new EngineMetrics({
      store,
      limiters: () => this.dispatcher.rateLimiters(),
      inFlight: (provider) => this.dispatcher.inFlightCount(provider),
    });
    this.dispatcher = new Dispatcher(
      store,
      this.providers,
      vault,
      { retry: config.retry, leaseMs: config.leaseMs, pollMs, leaseSweepMs: 5_000 },
      log,
      (batch) => this.finalize(batch),
      this.metrics,
    );
  }

  /** Opens (creating if needed) the embedded store in `dataDir`: `openbatch.db` (SQLite) and `files/`. */
  static async open(options: EngineOptions): Promise<Engine> {
    await mkdir(options.dataDir, { recursive: true });
    const blobs = new BlobStore(join(options.dataDir, "files"));
    await blobs.init();
    const store = new SqliteStore(join(options.dataDir, "openbatch.db"));
    const vault = await KeyVault.open(options.dataDir);
    return new Engine(store, blobs, vault, options.config, options.log ?? silentLog, options.pollMs ?? 250, options.cacheDir ?? join(options.dataDir, "cache"));
  }

  /**
   * Recovers what a previous process left (the embedded store has one owner, so every lease it held is returned to
   * the queue, and validations cut short are redone), then starts dispatching.
   */
  async start(): Promise<void> {
    for (const batch of await this.store.batchesInStatus(["in_progress", "cancelling", "finalizing"])) {
      const released = await this.store.releaseLeases(batch.id, Infinity);
      if (released > 0) this.log.info({ batch: batch.id, released }, "returned items leased by a previous process to the queue");
    }
    for (const batch of await this.store.batchesInStatus(["validating", "cancelling"])) {
      if (batch.in_progress_at !== null) continue;
      // Cut short while validating: validate again, unless the user cancelled meanwhile.
      await this.store.deleteItems(batch.id);
      if (batch.status === "validating") await this.ingest(batch);
      else await this.store.updateBatch(batch.id, ["cancelling"], { status: "cancelled", cancelled_at: Date.now() });
    }
    this.dispatcher.start();
  }

  async close(): Promise<void> {
    await this.dispatcher.stop();
    await this.providers.close();
    await this.store.close();
  }

  /**
   * Creates a batch from an uploaded JSONL file. Every request line is a durable item before this returns; an invalid
   * file yields a batch in `failed` with `errors` (1-based lines), as OpenAI does.
   * @throws OpenBatchError 400 for a bad endpoint, window, metadata, provider header, or a missing/foreign file.
   */
  async createBatch(caller: Caller, input: CreateBatchInput): Promise<BatchView> {
    if (typeof input.input_file_id !== "string" || !input.input_file_id) throw invalidRequest("Missing required parameter: 'input_file_id'.", "input_file_id");
    if (!BATCH_ENDPOINTS.includes(input.endpoint as BatchEndpoint)) {
      throw invalidRequest(`Invalid endpoint ${JSON.stringify(input.endpoint ?? null)}: expected one of ${BATCH_ENDPOINTS.join(", ")}.`, "endpoint");
    }
    const windowMs = parseCompletionWindow(input.completion_window);
    const metadata = validateMetadata(input.metadata);
    const priority = input.priority ?? 0;
    if (!Number.isInteger(priority)) throw invalidRequest("priority must be an integer (higher runs first).", "priority");
    const file = await this.files.get(caller, input.input_file_id).catch((err) => {
      if (err instanceof OpenBatchError && err.kind === "not_found") {
        throw invalidRequest(`No such File object: ${input.input_file_id}`, "input_file_id", "file_not_found");
      }
      throw err;
    });
    if (file.purpose !== "batch") throw invalidRequest(`File ${file.id} has purpose "${file.purpose}"; a batch input needs purpose "batch".`, "input_file_id");
    let provider: string | null = null;
    let sealedKey: string | null = null;
    if (input.gateway) {
      provider = this.providers.resolveHeader(input.gateway.provider);
      if (!provider) {
        throw invalidRequest(`Unknown provider "${input.gateway.provider}": use one of ${this.providers.names().join(", ")}.`, "x-openbatch-provider");
      }
      if (input.gateway.apiKey) sealedKey = this.vault.seal(input.gateway.apiKey);
    }
    const now = Date.now();
    const batch: Batch = {
      id: newId("batch_"),
      dialect: input.dialect,
      owner: caller ?? "",
      endpoint: input.endpoint as BatchEndpoint,
      model: null,
      provider,
      input_file_id: file.id,
      completion_window: input.completion_window as string,
      status: "validating",
      errors: null,
      output_file_id: null,
      error_file_id: null,
      metadata,
      created_at: now,
      in_progress_at: null,
      expires_at: now + windowMs,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      final_status: null,
      priority: priority as number,
    };
    await this.store.insertBatch(batch, sealedKey);
    await this.ingest(batch);
    return this.view(batch.id);
  }

  /** Validates and stores the items of a `validating` batch, then moves it to in_progress or failed. */
  private async ingest(batch: Batch): Promise<void> {
    const content = this.files.openForEngine(batch.input_file_id!);
    const result = await ingestRequestFile(this.store, batch.id, content, batch.endpoint as BatchEndpoint, this.config.limits.maxRequestsPerBatch).catch(
      (err): { errors: BatchValidationError[]; model: null; count: 0 } => ({
        errors: [{ code: "file_unreadable", message: `The input file could not be read: ${(err as Error).message}`, param: "input_file_id", line: null }],
        model: null,
        count: 0,
      }),
    );
    // A model no provider serves is not a validation error: each item fails with how to configure one.
    const provider = batch.provider ?? this.providers.routeModel(result.model);
    const now = Date.now();
    if (result.errors.length > 0) {
      await this.store.updateBatch(batch.id, ["validating"], { status: "failed", errors: result.errors, failed_at: now, model: result.model });
      await this.store.updateBatch(batch.id, ["cancelling"], { status: "cancelled", errors: result.errors, cancelled_at: now });
      await this.store.clearProviderKey(batch.id);
      return;
    }
    await this.store.updateBatch(batch.id, ["validating"], { status: "in_progress", in_progress_at: now, model: result.model, provider });
    // A cancel that arrived during validation left the batch in `cancelling`; the dispatcher settles it once
    // `in_progress_at` says every item is stored.
    await this.store.updateBatch(batch.id, ["cancelling"], { in_progress_at: now, model: result.model, provider });
    this.dispatcher.wake();
  }

  /** The batch with live counts and usage. @throws OpenBatchError 404 when missing or someone else's. */
  async getBatch(caller: Caller, id: string): Promise<BatchView> {
    const batch = await this.store.getBatch(id);
    if (!batch || (caller !== null && batch.owner !== caller)) throw notFound(`No batch found with id '${id}'.`, "batch_id");
    return this.withCounts(batch);
  }

  /** Newest first, `limit` per page after cursor `after` (a batch id). */
  async listBatches(caller: Caller, q: { after?: string; limit: number }): Promise<Page<BatchView>> {
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
    const moved = await this.store.updateBatch(id, ["validating", "in_progress"], { status: "cancelling", cancelling_at: Date.now(), final_status: "cancelled" });
    if (!moved) {
      const now = await this.getBatch(caller, id);
      if (now.status === "cancelling" || now.status === "cancelled") return now;
      throw new OpenBatchError("conflict", `Cannot cancel a batch with status '${now.status}'.`, { code: "batch_not_cancellable" });
    }
    this.dispatcher.abortBatch(id);
    this.dispatcher.wake();
    return this.getBatch(caller, id);
  }

  private async view(id: string): Promise<BatchView> {
    return this.withCounts((await this.store.getBatch(id))!);
  }

  private async withCounts(batch: Batch): Promise<BatchView> {
    const { counts, usage } = await this.store.countItems(batch.id);
    return { ...batch, request_counts: counts, usage };
  }

  /** Writes the output and error files and moves the batch to its final status (completed, expired or cancelled). */
  private async finalize(batch: Batch): Promise<void> {
    const { counts } = await this.store.countItems(batch.id);
    const files = await writeResultFiles(this.store, this.files, batch, counts);
    const now = Date.now();
    const final = batch.final_status === "expired" || batch.final_status === "cancelled" ? batch.final_status : "completed";
    const stamp = final === "completed" ? { completed_at: now } : final === "expired" ? { expired_at: now } : { cancelled_at: now };
    const from = final === "cancelled" ? (["cancelling"] as const) : (["finalizing"] as const);
    if (await this.store.updateBatch(batch.id, from, { status: final, ...files, ...stamp })) {
      this.log.info({ batch: batch.id, status: final, ...counts }, "batch ended");
    }
    await this.store.clearProviderKey(batch.id);
  }

  /**
   * One synchronous call (gateway mode: the server as a drop-in OpenAI endpoint): routes `body.model` (or the
   * gateway header) to its provider and returns the upstream answer as is.
   * @returns status and JSON text of the answer. @throws OpenBatchError 400 for a bad body or an unroutable model.
   */
  async infer(endpoint: BatchEndpoint, body: unknown, gateway: CreateBatchInput["gateway"], signal: AbortSignal): Promise<{ status: number; body: string }> {
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.");
    const b = body as Record<string, unknown>;
    if (b.stream === true) throw invalidRequest("Streaming is not supported here; send stream: false, or use a batch.", "stream");
    const model = typeof b.model === "string" ? b.model : null;
    const name = gateway ? this.providers.resolveHeader(gateway.provider) : this.providers.routeModel(model);
    const provider = name ? this.providers.get(name) : undefined;
    if (!provider) {
      throw new OpenBatchError("not_found", `No provider serves model "${model ?? "(none)"}". Map it in the config's "models", or use "local/glove-100d" for embeddings.`, { param: "model", code: "model_not_found" });
    }
    try {
      const res = await provider.send({ endpoint, model, body: JSON.stringify(b), apiKey: gateway?.apiKey ?? undefined }, signal);
      return { status: res.status, body: res.body };
    } catch (err) {
      if (err instanceof UpstreamUnreachableError) {
        throw new OpenBatchError("bad_gateway", `Upstream ${provider.name} did not answer: ${err.message}`, { code: err.code });
      }
      throw err;
    }
  }

  /** Model ids a caller can route to: exact ids in the config's `models`, and the built-in `local/glove-100d`. */
  listModels(): string[] {
    return this.providers.modelIds();
  }

  /** True when the batch is done (for in-process callers such as `openbatch run`). */
  static isDone(batch: Batch): boolean {
    return isTerminal(batch.status);
  }
}
