import { BATCH_ENDPOINTS, type Batch, type BatchEndpoint, type BatchView, type BatchValidationError } from "../core/batch.js";
import type { Config } from "../core/config.js";
import { parseCompletionWindow } from "../core/duration.js";
import { invalidRequest, OpenBatchError } from "../core/errors.js";
import { validateMetadata } from "../core/metadata.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { Store } from "../store/store.js";
import { draftBatch } from "./batch-draft.js";
import type { CreateBatchInput } from "./engine-types.js";
import { parseExpiresAfter, type Caller, type FileService } from "./files.js";
import type { GatewayRouting } from "./gateway-routing.js";
import { ingestRequestFile } from "./ingest.js";

/** What file batches need from the engine around them: the store, files, routing, its batch views and dispatcher. */
export interface FileBatchDeps {
  store: Store;
  files: FileService;
  providers: ProviderRegistry;
  routing: GatewayRouting;
  config: Config;
  /** The batch with live counts, no owner check (it was just written). */
  view(id: string): Promise<BatchView>;
  /** Tells the dispatcher there is new work. */
  wake(): void;
}

/** Batches built from an uploaded JSONL file (OpenAI `POST /v1/batches`): creating one, and validating its lines into items. */
export class FileBatches {
  constructor(private readonly deps: FileBatchDeps) {}

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
    const outputExpiresAfter = parseExpiresAfter(input.output_expires_after, "output_expires_after");
    const priority = input.priority ?? 0;
    if (!Number.isInteger(priority) || Math.abs(priority as number) > 1_000_000) {
      throw invalidRequest("priority must be an integer from -1000000 to 1000000 (higher runs first).", "priority");
    }
    const file = await this.deps.files.get(caller, input.input_file_id).catch((err) => {
      if (err instanceof OpenBatchError && err.kind === "not_found") {
        throw invalidRequest(`No such File object: ${input.input_file_id}`, "input_file_id", "file_not_found");
      }
      throw err;
    });
    if (file.purpose !== "batch") throw invalidRequest(`File ${file.id} has purpose "${file.purpose}"; a batch input needs purpose "batch".`, "input_file_id");
    const { provider, sealedKey } = this.deps.routing.resolveGateway(input.gateway);
    if (input.batchMode === "native" && provider) this.deps.routing.requireBatchApi(provider);
    const batch = draftBatch({
      dialect: input.dialect,
      owner: caller ?? "",
      endpoint: input.endpoint as BatchEndpoint,
      provider,
      input_file_id: file.id,
      completion_window: input.completion_window as string,
      windowMs,
      metadata,
      priority: priority as number,
      status: "validating",
    });
    batch.output_expires_after = outputExpiresAfter;
    if (input.batchMode) await this.deps.store.vendorJobs.requestMode(batch.id, input.batchMode);
    await this.deps.store.insertBatch(batch, sealedKey);
    await this.ingest(batch);
    return this.deps.view(batch.id);
  }

  /** Validates and stores the items of a `validating` batch, then moves it to in_progress or failed. */
  async ingest(batch: Batch): Promise<void> {
    const content = this.deps.files.openForEngine(batch.input_file_id!);
    const result = await ingestRequestFile(this.deps.store, batch.id, content, batch.endpoint as BatchEndpoint, this.deps.config.limits.maxRequestsPerBatch).catch(
      (err): { errors: BatchValidationError[]; model: null; count: 0 } => ({
        errors: [{ code: "file_unreadable", message: `The input file could not be read: ${(err as Error).message}`, param: "input_file_id", line: null }],
        model: null,
        count: 0,
      }),
    );
    // A model no provider serves is not a validation error: each item fails with how to configure one.
    const provider = batch.provider ?? this.deps.providers.routeModel(result.model);
    const now = Date.now();
    if (result.errors.length > 0) {
      await this.deps.store.updateBatch(batch.id, ["validating"], { status: "failed", errors: result.errors, failed_at: now, model: result.model });
      await this.deps.store.updateBatch(batch.id, ["cancelling"], { status: "cancelled", errors: result.errors, cancelled_at: now });
      await this.deps.store.clearProviderKey(batch.id);
      return;
    }
    await this.deps.store.updateBatch(batch.id, ["validating"], { status: "in_progress", in_progress_at: now, model: result.model, provider });
    // A cancel that arrived during validation left the batch in `cancelling`; the dispatcher settles it once
    // `in_progress_at` says every item is stored.
    await this.deps.store.updateBatch(batch.id, ["cancelling"], { in_progress_at: now, model: result.model, provider });
    this.deps.wake();
  }
}
