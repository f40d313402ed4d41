import { isTerminal, type BatchView } from "../core/batch.js";
import { parseCompletionWindow } from "../core/duration.js";
import { invalidRequest, OpenBatchError } from "../core/errors.js";
import type { Store } from "../store/store.js";
import { draftBatch } from "./batch-draft.js";
import type { CreateBatchInput } from "./engine-types.js";
import type { Caller } from "./files.js";
import type { GatewayRouting } from "./gateway-routing.js";

/** What a retry needs from the engine: the store, gateway routing, and reading and starting batches. */
export interface BatchRetryDeps {
  store: Store;
  routing: GatewayRouting;
  /** The batch with live counts. @throws OpenBatchError 404 when missing or someone else's. */
  getBatch(caller: Caller, id: string): Promise<BatchView>;
  /** Starts a `created` batch (see InlineBatches.startBatch). */
  startBatch(caller: Caller, id: string): Promise<BatchView>;
}

/**
 * Re-runs what did not succeed: a new batch, in the same dialect, endpoint, model and provider, holding the failed,
 * expired and cancelled items of an ended batch (same custom_ids and bodies). A gateway key was erased when the
 * source ended, so pass `gateway` again for a batch that used one.
 * @throws OpenBatchError 404, 409 when the batch has not ended or nothing in it failed, 400 (gateway_key_required)
 * when the source ran on a gateway key and `gateway` brings none.
 */
export async function retryBatch(deps: BatchRetryDeps, caller: Caller, id: string, gateway?: CreateBatchInput["gateway"]): Promise<BatchView> {
  const { store } = deps;
  const source = await deps.getBatch(caller, id);
  if (!isTerminal(source.status)) throw new OpenBatchError("conflict", `Batch ${id} is ${source.status}; retry it once it has ended.`, { code: "batch_not_ended" });
  const c = source.request_counts;
  if (c.total - c.completed === 0) throw new OpenBatchError("conflict", `Every request of batch ${id} succeeded; there is nothing to retry.`, { code: "nothing_to_retry" });
  // It ran on the caller's upstream key, erased when it ended: a retry without one would run keyless (or on ours).
  if (!gateway?.apiKey && (await store.hadProviderKey(id))) {
    throw invalidRequest(
      `Batch ${id} ran through the gateway on your upstream key, which was erased when it ended: send the provider header (x-openbatch-provider) and your upstream key (Authorization: Bearer, with your OpenBatch key in x-openbatch-api-key) again to retry it.`,
      "x-openbatch-provider",
      "gateway_key_required",
    );
  }
  const { provider, sealedKey } = deps.routing.resolveGateway(gateway);
  const batch = draftBatch({
    dialect: source.dialect,
    owner: caller ?? "",
    endpoint: source.endpoint,
    provider: provider ?? source.provider,
    input_file_id: null,
    completion_window: source.completion_window,
    windowMs: parseCompletionWindow(source.completion_window),
    metadata: { ...(source.metadata ?? {}), retry_of: source.id },
    priority: source.priority,
    status: "created",
  });
  batch.model = source.model;
  batch.name = source.name;
  batch.description = source.description;
  batch.output_expires_after = source.output_expires_after ?? null;
  await store.insertBatch(batch, sealedKey);
  let line = 0;
  for (;;) {
    const page = await store.pageRequests(id, line, 1000, ["failed", "expired", "cancelled"]);
    if (page.length === 0) break;
    await store.insertItems(batch.id, page.map((r) => ({ line: r.line, custom_id: r.custom_id, model: null, body: r.body })));
    line = page[page.length - 1]!.line;
  }
  return deps.startBatch(caller, batch.id);
}
