import type { Counter } from "prom-client";
import type { Batch } from "../../core/batch.js";
import type { NativeBatchApi, VendorCall } from "../../providers/native/native-api.js";
import type { Store } from "../../store/store.js";
import type { LineOutcome, VendorJob } from "../../store/vendor-jobs.js";
import type { Log } from "../log.js";
import { noAnswer, outcomeOf } from "./item-outcomes.js";

/** What recording a job's results needs from the runner. */
export interface RecordContext {
  store: Store;
  log: Log;
  /** Outcomes written per transaction. */
  recordGroup: number;
  /** Counts vendor results that name no request of their job (labelled by provider). */
  unknownResults: Counter;
}

/** Records an ended job's results into its items (each once), fails what a finished job left without a result, and marks it recorded. */
export async function recordJob(ctx: RecordContext, batch: Batch, api: NativeBatchApi, job: VendorJob, call: VendorCall): Promise<void> {
  const jobs = ctx.store.vendorJobs;
  const failure = job.failure ? (JSON.parse(job.failure) as { message: string; lines: { index: number; code: string; message: string }[] }) : null;
  let buffer: LineOutcome[] = [];
  const flush = async () => {
    if (buffer.length) await jobs.recordOutcomes(batch.id, job.first_line, job.last_line, buffer, Date.now());
    buffer = [];
  };
  if (job.outcome === "failed" && failure) {
    // The vendor refused the whole job (its validation): every item fails with its message, line errors where given.
    const byIndex = new Map(failure.lines.map((l) => [l.index, l]));
    const lines = await jobs.unfinishedLines(batch.id, job.first_line, job.last_line, job.last_line - job.first_line + 1);
    lines.forEach((line, i) => {
      const own = byIndex.get(i);
      buffer.push({ line, outcome: noAnswer("failed", own?.code ?? "vendor_batch_failed", own?.message || `The vendor failed the batch: ${failure.message}`) });
    });
    await flush();
  } else if (job.vendor_id) {
    for await (const r of api.results(job.vendor_id, { resultRef: job.result_ref ? JSON.parse(job.result_ref) : null, ended: job.outcome ?? "completed" }, call)) {
      const line = lineOf(batch.id, r.customId, job);
      if (line === null) {
        ctx.unknownResults.inc({ provider: job.provider });
        ctx.log.warn({ batch: batch.id, job: job.id, custom_id: r.customId }, "vendor result names no request of this job; ignored");
        continue;
      }
      if (r.kind === "unrun") continue;
      buffer.push({ line, outcome: outcomeOf(batch, job, r) });
      if (buffer.length >= ctx.recordGroup) await flush();
    }
    await flush();
  }
  if (job.outcome === "completed" || job.outcome === "failed") {
    const missing = await jobs.settleRange(
      batch.id,
      job.first_line,
      job.last_line,
      noAnswer("failed", "vendor_result_missing", `The vendor's results of job ${job.vendor_id ?? job.id} hold no result for this request.`),
      Date.now(),
    );
    if (missing > 0) ctx.log.warn({ batch: batch.id, job: job.id, missing }, "vendor results lacked some requests; they failed with vendor_result_missing");
  }
  await jobs.updateJob(job.id, { state: "recorded" });
  ctx.log.info({ batch: batch.id, job: job.id, outcome: job.outcome }, "vendor job results recorded");
}

/** The line a vendor custom id names within `job`, or null when it names none of the job's requests. */
function lineOf(batchId: string, customId: string, job: VendorJob): number | null {
  const prefix = batchId + "-";
  if (!customId.startsWith(prefix)) return null;
  const rest = customId.slice(prefix.length);
  if (!/^\d{1,15}$/.test(rest)) return null;
  const line = Number(rest);
  return line >= job.first_line && line <= job.last_line ? line : null;
}
