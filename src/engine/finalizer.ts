import { Readable } from "node:stream";
import type { Store, FinishedItem } from "../store/store.js";
import type { FileService } from "./files.js";

const PAGE = 1000;

/**
 * Renders one OpenAI Batch output or error line. Bodies are stored as JSON text and spliced in without re-parsing.
 * Spec: OpenAI Batch output line — `{id, custom_id, response:{status_code, request_id, body}|null, error:{code,message}|null}`.
 */
export function renderResultLine(item: FinishedItem): string {
  const head = `{"id":${JSON.stringify(item.id)},"custom_id":${JSON.stringify(item.custom_id)},`;
  if (item.status_code !== null) {
    return (
      head +
      `"response":{"status_code":${item.status_code},"request_id":${JSON.stringify(item.request_id)},"body":${item.response_body ?? "null"}},"error":null}`
    );
  }
  return head + `"response":null,"error":${JSON.stringify({ code: item.error_code, message: item.error_message })}}`;
}

/** Streams the lines of every item of `batchId` that `keep` selects, in input order, page by page. */
function resultLines(store: Store, batchId: string, keep: (item: FinishedItem) => boolean): Readable {
  async function* lines() {
    let after = 0;
    for (;;) {
      const page = await store.pageItems(batchId, after, PAGE);
      if (page.length === 0) return;
      let text = "";
      for (const item of page) if (keep(item)) text += renderResultLine(item) + "\n";
      if (text) yield text;
      after = page[page.length - 1]!.line;
    }
  }
  return Readable.from(lines());
}

/**
 * Writes a batch's output file (successful items) and error file (everything else), streaming from the store.
 * A file is only made when it has at least one line. Each expires `output_expires_after` seconds after its own
 * created_at (OpenAI Batch `output_expires_after`, anchor `created_at`), or never when that is null/absent.
 * @returns their file ids (null when not made).
 */
export async function writeResultFiles(
  store: Store,
  files: FileService,
  batch: { id: string; owner: string; output_expires_after?: number | null },
  counts: { completed: number; total: number },
): Promise<{ output_file_id: string | null; error_file_id: string | null }> {
  let output_file_id: string | null = null;
  let error_file_id: string | null = null;
  const ttl = batch.output_expires_after ?? null;
  if (counts.completed > 0) {
    const f = await files.writeOutput(batch.owner, `${batch.id}_output.jsonl`, resultLines(store, batch.id, (i) => i.state === "succeeded"), ttl);
    output_file_id = f.id;
  }
  if (counts.total - counts.completed > 0) {
    const f = await files.writeOutput(batch.owner, `${batch.id}_error.jsonl`, resultLines(store, batch.id, (i) => i.state !== "succeeded"), ttl);
    error_file_id = f.id;
  }
  return { output_file_id, error_file_id };
}
