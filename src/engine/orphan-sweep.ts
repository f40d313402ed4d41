import { isTerminal, type Batch } from "../core/batch.js";
import type { BlobStorage } from "../store/blob-store.js";
import type { Store } from "../store/store.js";
import { resultFileId } from "./finalizer.js";
import type { Log } from "./log.js";

/** What the start-up sweep deleted. */
export interface OrphanSweepResult {
  /** `.partial` files: uploads or result files a dead process was writing. */
  partials: number;
  /** Blobs without a metadata row. */
  blobs: number;
  /** Result-file rows (bytes too) of a batch that names other files, written by a finalization that died. */
  rows: number;
}

/** `<batch id>_output.jsonl` / `<batch id>_error.jsonl`, as the finalizer names result files. */
const RESULT_FILE_NAME = /^(batch_[0-9a-f]+)_(output|error)\.jsonl$/;

/**
 * Deletes what a process killed mid-write left in the file store, before anything is served (one process owns a data
 * dir, so nothing is being written yet):
 * - result files (purpose `batch_output`, named after their batch) that their batch does not reference: written by a
 *   finalization that died before the batch named them (earlier versions gave each attempt a fresh id). A batch that
 *   is still finalizing keeps the files under its fixed ids (resultFileId), which its next attempt rewrites; files of a
 *   batch that was deleted are the user's and stay;
 * - every `.partial` file (an upload or a result file cut short), and every blob that no file row describes.
 * Rows go bytes first, so a crash during the sweep leaves at most a row whose bytes are gone, which the next sweep
 * also removes.
 * @returns the counts deleted (logged when any).
 */
export async function sweepOrphans(store: Store, blobs: BlobStorage, log: Log): Promise<OrphanSweepResult> {
  // Collected first and deleted after the listing: its cursor is a file id, which must stay.
  const orphans: string[] = [];
  const batches = new Map<string, Batch | null>();
  let after: string | undefined;
  for (;;) {
    const page = await store.listFiles({ owner: null, purpose: "batch_output", order: "asc", after, limit: 500 });
    for (const file of page.data) {
      const m = RESULT_FILE_NAME.exec(file.filename);
      if (!m) continue;
      const batchId = m[1]!;
      const kind = m[2] as "output" | "error";
      if (!batches.has(batchId)) batches.set(batchId, await store.getBatch(batchId));
      const batch = batches.get(batchId);
      if (!batch) continue;
      if (file.id === (kind === "output" ? batch.output_file_id : batch.error_file_id)) continue;
      if (!isTerminal(batch.status) && file.id === resultFileId(batch.id, kind)) continue;
      orphans.push(file.id);
    }
    if (!page.has_more || page.data.length === 0) break;
    after = page.data[page.data.length - 1]!.id;
  }
  for (const id of orphans) {
    await blobs.remove(id);
    await store.deleteFile(id);
  }
  const swept = await blobs.sweep(async (id) => (await store.getFile(id)) !== null);
  const result = { partials: swept.partials, blobs: swept.orphans, rows: orphans.length };
  if (result.partials + result.blobs + result.rows > 0) log.info(result, "removed files left behind by a previous process");
  return result;
}
