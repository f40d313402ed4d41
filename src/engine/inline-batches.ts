import type { BatchView } from "../core/batch.js";
import type { Config } from "../core/config.js";
import { parseCompletionWindow } from "../core/duration.js";
import { invalidRequest, OpenBatchError } from "../core/errors.js";
import type { ProviderRegistry } from "../providers/registry.js";
import type { Store } from "../store/store.js";
import { draftBatch } from "./batch-draft.js";
import type { InlineBatchInput, InlineRequest } from "./engine-types.js";
import type { Caller } from "./files.js";
import type { GatewayRouting } from "./gateway-routing.js";

/** What inline batches need from the engine around them: the store, routing, and its batch views and dispatcher. */
export interface InlineBatchDeps {
  store: Store;
  providers: ProviderRegistry;
  routing: GatewayRouting;
  config: Config;
  /** The batch with live counts. @throws OpenBatchError 404 when missing or someone else's. */
  getBatch(caller: Caller, id: string): Promise<BatchView>;
  /** The batch with live counts, no owner check (it was just written). */
  view(id: string): Promise<BatchView>;
  /** Tells the dispatcher there is new work. */
  wake(): void;
}

/**
 * Batches built from requests sent inline (Anthropic, Gemini, seed 001) rather than an uploaded file: creating one,
 * adding requests to it, and starting it.
 */
export class InlineBatches {
  constructor(private readonly deps: InlineBatchDeps) {}

  /**
   * Creates a batch from requests sent inline (Anthropic, Gemini, seed 001) rather than a file. With `start`, it runs
   * at once; without, it waits in `created` for more `addRequests` calls and `startBatch`. Every request is a durable
   * item before this returns.
   * @throws OpenBatchError 400 for a duplicate custom_id, a bad window, or an unknown gateway provider.
   */
  async createInlineBatch(caller: Caller, input: InlineBatchInput): Promise<BatchView> {
    const { store, providers, routing } = this.deps;
    const windowMs = parseCompletionWindow(input.completion_window ?? "24h");
    const { provider, sealedKey } = routing.resolveGateway(input.gateway);
    const routed = provider ?? providers.routeModel(input.model);
    if (input.batchMode === "native" && routed) routing.requireBatchApi(routed);
    const batch = draftBatch({
      dialect: input.dialect,
      owner: caller ?? "",
      endpoint: input.endpoint,
      provider: routed,
      input_file_id: null,
      completion_window: input.completion_window ?? "24h",
      windowMs,
      metadata: input.metadata ?? null,
      priority: 0,
      status: "created",
    });
    batch.model = input.model;
    batch.name = input.name ?? null;
    batch.description = input.description ?? null;
    if (input.batchMode) await store.vendorJobs.requestMode(batch.id, input.batchMode);
    await store.insertBatch(batch, sealedKey);
    try {
      if (input.requests?.length) await this.insertInline(batch.id, input.requests);
    } catch (err) {
      await store.deleteBatch(batch.id);
      throw err;
    }
    if (input.start) return this.startBatch(caller, batch.id);
    return this.deps.view(batch.id);
  }

  /**
   * Adds requests to a batch that is `created` or still running (seed 001 allows both).
   * @throws OpenBatchError 404, 400 (duplicate custom_id: none of the call's requests is added), 409 once it ended.
   */
  async addRequests(caller: Caller, id: string, requests: InlineRequest[]): Promise<BatchView> {
    const batch = await this.deps.getBatch(caller, id);
    if (batch.status !== "created" && batch.status !== "in_progress") {
      throw new OpenBatchError("conflict", `Cannot add requests to a batch with status '${batch.status}'.`, { code: "batch_not_open" });
    }
    await this.insertInline(id, requests);
    this.deps.wake();
    return this.deps.view(id);
  }

  /**
   * Validates one call's requests (custom_id, object body, no streaming, no duplicates, the batch's request limit),
   * then stores them after the batch's last line. Nothing is stored when any is invalid. @throws OpenBatchError 400.
   */
  private async insertInline(batchId: string, requests: InlineRequest[]): Promise<void> {
    const seen = new Set<string>();
    for (const [i, r] of requests.entries()) {
      if (typeof r.custom_id !== "string" || !r.custom_id) throw invalidRequest(`requests[${i}].custom_id must be a non-empty string.`, `requests[${i}].custom_id`);
      if (seen.has(r.custom_id)) throw invalidRequest(`custom_id "${r.custom_id}" appears twice in this call.`, `requests[${i}].custom_id`, "duplicate_custom_id");
      seen.add(r.custom_id);
      if (typeof r.body !== "object" || r.body === null || Array.isArray(r.body)) throw invalidRequest(`requests[${i}] must carry a JSON object body.`, `requests[${i}]`);
      if ((r.body as Record<string, unknown>).stream === true) {
        throw invalidRequest(`requests[${i}]: streaming is not supported in a batch; each result is stored whole.`, `requests[${i}].stream`);
      }
    }
    const first = (await this.deps.store.maxLine(batchId)) + 1;
    const limit = this.deps.config.limits.maxRequestsPerBatch;
    if (first - 1 + requests.length > limit) {
      throw invalidRequest(`A batch holds at most ${limit} requests; this call would bring it to ${first - 1 + requests.length}.`, "requests", "too_many_tasks");
    }
    await this.deps.store.insertItems(
      batchId,
      requests.map((r, i) => ({ line: first + i, custom_id: r.custom_id, model: null, body: JSON.stringify(r.body) })),
    );
  }

  /**
   * Starts a `created` batch; its completion window counts from now. Starting a running batch is a no-op.
   * @throws OpenBatchError 404, or 409 when it ended or has no requests.
   */
  async startBatch(caller: Caller, id: string): Promise<BatchView> {
    const batch = await this.deps.getBatch(caller, id);
    if (batch.status === "in_progress") return batch;
    if (batch.status !== "created") throw new OpenBatchError("conflict", `Cannot start a batch with status '${batch.status}'.`, { code: "batch_not_startable" });
    if (batch.request_counts.total === 0) throw new OpenBatchError("conflict", "Add requests before starting the batch.", { code: "batch_empty" });
    const now = Date.now();
    await this.deps.store.updateBatch(id, ["created"], { status: "in_progress", in_progress_at: now, expires_at: now + parseCompletionWindow(batch.completion_window) });
    this.deps.wake();
    return this.deps.getBatch(caller, id);
  }
}
