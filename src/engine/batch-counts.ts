import type { Batch, BatchView } from "../core/batch.js";
import type { Config } from "../core/config.js";
import { costOf, priceOf } from "../core/pricing.js";
import type { Store } from "../store/store.js";

/**
 * The batch as the API shows it: its record plus live request counts, summed token usage, and the estimated cost in
 * USD from the config's `prices` (null when no price matches its model). Counts of a native batch follow the
 * vendor's progress while its jobs run; natively run tokens are charged at the batch price, the rest at the regular one.
 */
export async function withCounts(store: Store, prices: Config["prices"], batch: Batch): Promise<BatchView> {
  const { counts, usage } = await store.countItems(batch.id);
  const progress = batch.status === "in_progress" || batch.status === "cancelling" ? await store.vendorJobs.progressOf?.(batch.id) : undefined;
  if (progress) {
    // A native batch's counts follow the vendor's progress while its jobs run (results are recorded when a job ends).
    const p = progress;
    const moved = Math.min(counts.pending, p.completed + p.failed);
    if (moved > 0) {
      const completed = Math.min(p.completed, moved);
      counts.completed += completed;
      counts.failed += moved - completed;
      counts.pending -= moved;
    }
  }
  const price = priceOf(prices, batch.model);
  let estimated_cost = price ? costOf(price, { input: usage.input_tokens, output: usage.output_tokens }) : null;
  if (price && estimated_cost) {
    // Tokens of natively run items cost the batch price; the rest (direct, a fallback included) the regular one.
    const native = await store.vendorJobs.nativeUsage(batch.id);
    const n = { input: native?.input_tokens ?? 0, output: native?.output_tokens ?? 0 };
    const direct = { input: usage.input_tokens - n.input, output: usage.output_tokens - n.output };
    estimated_cost = { ...estimated_cost, charged: costOf(price, n).batch + costOf(price, direct).regular };
  }
  return { ...batch, request_counts: counts, usage, estimated_cost };
}
