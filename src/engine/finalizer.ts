import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Batch, BatchStatus, BatchValidationError, ItemState } from "../core/batch.js";
import type { FileRecord, FinishedItem, Store } from "../store/store.js";
import type { FileService } from "./files.js";
import type { Log } from "./log.js";

/** How result files are written and how long a failing finalization is retried. Sizes in bytes, times in ms. */
export interface FinalizeOptions {
  /** Most items read from the store at once (default 1000). */
  pageItems?: number;
  /**
   * Most bytes of response bodies and error messages read from the store at once (default 16 MiB); a page always holds
   * at least one item, so one item larger than this is read alone.
   */
  pageBytes?: number;
  /** Lines are gathered into write chunks of up to this many characters; a longer line is written in pieces (default 1 MiB). */
  chunkBytes?: number;
  /**
   * Attempts (the first included, crashed ones counted) before a batch whose files cannot be written ends `failed`
   * (default 10: with the default delays, about 8.5 minutes of a full or failing disk).
   */
  maxAttempts?: number;
  /** Wait after the first failed attempt; it doubles each attempt up to `maxDelayMs` (defaults 1 s and 10 min). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

const DEFAULTS: Required<FinalizeOptions> = {
  pageItems: 1000,
  pageBytes: 16 * 1024 * 1024,
  chunkBytes: 1024 * 1024,
  maxAttempts: 10,
  baseDelayMs: 1000,
  maxDelayMs: 600_000,
};

/** Item states of the output file, and of the error file (everything else: a settled batch has no queued item left). */
const OUTPUT_STATES: readonly ItemState[] = ["succeeded"];
const ERROR_STATES: readonly ItemState[] = ["failed", "expired", "cancelled", "queued", "in_flight"];

/** Dialects whose results are read through the result files alone: a batch of theirs without them has failed. */
const RESULTS_IN_FILES: ReadonlySet<string> = new Set(["openai"]);

/** The `errors[].code` of a batch that ended `failed` because its result files could not be written. */
export const FINALIZATION_FAILED = "finalization_failed";

/**
 * The id of a batch's output or error file: derived from the batch id, so every attempt to write it (after a failure
 * or a crash) writes the same file, never a second one. Shaped like every file id (`file-` + 24 hex).
 */
export function resultFileId(batchId: string, kind: "output" | "error"): string {
  return "file-" + createHash("sha256").update(`openbatch:${batchId}:${kind}`).digest("hex").slice(0, 24);
}

/** The file name of a batch's output or error file (`<batch id>_output.jsonl`, `<batch id>_error.jsonl`). */
export function resultFileName(batchId: string, kind: "output" | "error"): string {
  return `${batchId}_${kind}.jsonl`;
}

/**
 * One OpenAI Batch output or error line as three pieces whose concatenation is the line (newline included): the
 * head, the stored response body (JSON text spliced in without re-parsing; "" when there is none) and the tail. The
 * body is kept apart so that a large one is written as it is, never copied into a longer string.
 * Spec: OpenAI Batch output line — `{id, custom_id, response:{status_code, request_id, body}|null, error:{code,message}|null}`.
 */
export function renderResultLineParts(item: FinishedItem): [head: string, body: string, tail: string] {
  const head = `{"id":${JSON.stringify(item.id)},"custom_id":${JSON.stringify(item.custom_id)},`;
  if (item.status_code !== null) {
    return [head + `"response":{"status_code":${item.status_code},"request_id":${JSON.stringify(item.request_id)},"body":`, item.response_body ?? "null", `},"error":null}\n`];
  }
  return [head + `"response":null,"error":${JSON.stringify({ code: item.error_code, message: item.error_message })}}\n`, "", ""];
}

/** Renders one OpenAI Batch output or error line, without its newline (see renderResultLineParts). */
export function renderResultLine(item: FinishedItem): string {
  const [head, body, tail] = renderResultLineParts(item);
  return (head + body + tail).slice(0, -1);
}

/**
 * Streams the lines of the items of `batchId` in `states`, in input order. Items are read in pages bounded by count
 * and by bytes, and lines are written one by one (small ones gathered into chunks, a large body passed through as its
 * own piece), so memory stays bounded by the largest single item whatever the batch holds. The stream is a byte
 * stream pulled by its consumer: nothing is read from the store faster than it is written (backpressure).
 */
function resultLines(store: Store, batchId: string, states: readonly ItemState[], o: Required<FinalizeOptions>): Readable {
  async function* chunks(): AsyncGenerator<string> {
    let after = 0;
    let buf = "";
    for (;;) {
      const page = await store.pageItems(batchId, after, o.pageItems, states, o.pageBytes);
      if (page.length === 0) break;
      for (const item of page) {
        const [head, body, tail] = renderResultLineParts(item);
        if (buf.length + head.length + body.length + tail.length <= o.chunkBytes) {
          buf += head + body + tail;
          continue;
        }
        if (buf) yield buf;
        buf = "";
        if (body.length <= o.chunkBytes) {
          buf = head + body + tail;
        } else {
          yield head;
          yield body;
          yield tail;
        }
      }
      after = page[page.length - 1]!.line;
    }
    if (buf) yield buf;
  }
  // A byte stream (not object mode): the generator is pulled only while less than one chunk waits to be written.
  return Readable.from(chunks(), { objectMode: false, highWaterMark: o.chunkBytes });
}

/**
 * Writes a batch's output file (successful items) and error file (everything else), streaming from the store, under
 * their fixed ids (resultFileId): writing them again replaces them. A file is only made when it has at least one line.
 * Each expires `output_expires_after` seconds after its own created_at (OpenAI Batch `output_expires_after`, anchor
 * `created_at`), or never when that is null/absent.
 * @returns their file ids (null when not made). @throws whatever reading the store or writing the bytes throws.
 */
export async function writeResultFiles(
  store: Store,
  files: FileService,
  batch: { id: string; owner: string; output_expires_after?: number | null },
  counts: { completed: number; total: number },
  options: FinalizeOptions = {},
): Promise<{ output_file_id: string | null; error_file_id: string | null }> {
  const o = { ...DEFAULTS, ...options };
  const ttl = batch.output_expires_after ?? null;
  const write = async (kind: "output" | "error", states: readonly ItemState[]): Promise<FileRecord> =>
    files.writeOutput(batch.owner, resultFileName(batch.id, kind), resultLines(store, batch.id, states, o), ttl, resultFileId(batch.id, kind));
  const output_file_id = counts.completed > 0 ? (await write("output", OUTPUT_STATES)).id : null;
  const error_file_id = counts.total - counts.completed > 0 ? (await write("error", ERROR_STATES)).id : null;
  return { output_file_id, error_file_id };
}

/**
 * True for an error that the same data will raise again (a string or buffer past V8's limits, a programming error):
 * retrying it only burns time. Errors of the system (a full disk, I/O, a locked database) carry a code and may clear.
 */
function isDeterministic(err: unknown): boolean {
  if (err instanceof RangeError || err instanceof TypeError || err instanceof SyntaxError || err instanceof ReferenceError) return true;
  return DETERMINISTIC_CODES.has(String((err as { code?: unknown } | null)?.code));
}

/** Error codes of sizes past a hard limit (Node's strings and buffers, SQLite's values): the same data fails again. */
const DETERMINISTIC_CODES: ReadonlySet<string> = new Set(["ERR_STRING_TOO_LONG", "ERR_BUFFER_TOO_LARGE", "SQLITE_TOOBIG"]);

/**
 * Ends batches whose items have all finished: writes their result files and moves them to their final status
 * (completed, expired or cancelled). A finalization that fails is retried with backoff; after `maxAttempts` attempts
 * (attempts cut short by a crash count too: they are recorded in the store before they start), or at once for an
 * error that would only recur (isDeterministic), the files of the attempt are removed and an OpenAI batch ends `failed`
 * with the reason in `errors` (code `finalization_failed`); a batch of a dialect that reads its results from the store
 * ends as it would have, without files. A batch thus always leaves `finalizing` (or `cancelling`).
 */
export class Finalizer {
  private readonly o: Required<FinalizeOptions>;
  /** Batch id → when its next attempt may start (unix ms), after a failed one. */
  private readonly retryAt = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly files: FileService,
    private readonly log: Log,
    options: FinalizeOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.o = { ...DEFAULTS, ...options };
  }

  /** Attempts before a batch that cannot be finalized ends failed. */
  get maxAttempts(): number {
    return this.o.maxAttempts;
  }

  /**
   * One finalization attempt for a batch that is `finalizing` (or `cancelling` with every item settled); returns at
   * once while the batch waits out the backoff of a failed attempt. The caller (the dispatcher) calls it again on
   * later passes until the batch has ended, and never twice at once for one batch.
   * @throws only when even recording the failure failed (e.g. the database is unwritable); the next call retries.
   */
  async run(batch: Batch): Promise<void> {
    const due = this.retryAt.get(batch.id);
    if (due !== undefined && due > this.now()) return;
    const attempt = await this.store.beginFinalizeAttempt(batch.id);
    if (attempt > this.o.maxAttempts) {
      // Earlier attempts never reported back: the process died during each (out of memory, killed).
      await this.fail(batch, attempt, new Error(`${attempt - 1} attempts to write the result files were cut short (the process stopped during each).`));
      return;
    }
    try {
      await this.finish(batch);
      this.retryAt.delete(batch.id);
    } catch (err) {
      if (isDeterministic(err) || attempt >= this.o.maxAttempts) {
        await this.fail(batch, attempt, err);
        return;
      }
      const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (attempt - 1));
      this.retryAt.set(batch.id, this.now() + delay);
      this.log.warn({ err, batch: batch.id, attempt, maxAttempts: this.o.maxAttempts, retryInMs: delay }, "writing the result files failed; retrying");
    }
  }

  /** Writes the files and ends the batch in its final status. */
  private async finish(batch: Batch): Promise<void> {
    const { counts } = await this.store.countItems(batch.id);
    await this.end(batch, counts, await writeResultFiles(this.store, this.files, batch, counts, this.o));
  }

  /** Moves the batch to its final status (completed, expired or cancelled), naming `files`. */
  private async end(batch: Batch, counts: object, files: { output_file_id: string | null; error_file_id: string | null }): Promise<void> {
    const now = this.now();
    const final = batch.final_status === "expired" || batch.final_status === "cancelled" ? batch.final_status : "completed";
    const stamp = final === "completed" ? { completed_at: now } : final === "expired" ? { expired_at: now } : { cancelled_at: now };
    const from: readonly BatchStatus[] = final === "cancelled" ? ["cancelling"] : ["finalizing"];
    if (await this.store.updateBatch(batch.id, from, { status: final, ...files, ...stamp })) {
      this.log.info({ batch: batch.id, status: final, ...counts }, "batch ended");
    } else {
      // It ended some other way meanwhile: keep only the files it names.
      await this.removeUnreferenced(batch.id);
    }
    await this.store.clearProviderKey(batch.id);
  }

  /**
   * Ends a batch that could not be finalized. Where the result files are how its results are read (the OpenAI
   * dialect, `openbatch run`): `failed`, the reason in `errors`, no result files. Other dialects serve results from
   * the store (Anthropic results, Gemini responses, seed 001 results), so their batch ends as it would have, without
   * the files nobody reads there.
   */
  private async fail(batch: Batch, attempt: number, err: unknown): Promise<void> {
    // Should recording the failure fail too, the next pass tries again after a pause.
    this.retryAt.set(batch.id, this.now() + this.o.maxDelayMs);
    if (!RESULTS_IN_FILES.has(batch.dialect)) {
      this.log.error({ err, batch: batch.id, attempt }, "the result files could not be written; the batch ends without them (its dialect reads results from the store)");
      await this.removeUnreferenced(batch.id);
      const { counts } = await this.store.countItems(batch.id);
      await this.end(batch, counts, { output_file_id: null, error_file_id: null });
      this.retryAt.delete(batch.id);
      return;
    }
    const reason = err instanceof Error ? err.message : String(err);
    const error: BatchValidationError = {
      code: FINALIZATION_FAILED,
      message:
        `Every request finished, but the result files could not be written (attempt ${attempt} of ${this.o.maxAttempts}): ${reason}.`,
      param: null,
      line: null,
    };
    this.log.error({ err, batch: batch.id, attempt }, "finalization failed for good; the batch ends failed");
    await this.removeUnreferenced(batch.id);
    const now = this.now();
    if (await this.store.updateBatch(batch.id, ["finalizing", "cancelling"], { status: "failed", failed_at: now, errors: [error], output_file_id: null, error_file_id: null })) {
      this.log.info({ batch: batch.id, status: "failed" }, "batch ended");
    }
    await this.store.clearProviderKey(batch.id);
    this.retryAt.delete(batch.id);
  }

  /** Deletes (bytes, then row) the batch's result files that the batch does not name. */
  private async removeUnreferenced(batchId: string): Promise<void> {
    const current = await this.store.getBatch(batchId);
    for (const kind of ["output", "error"] as const) {
      const id = resultFileId(batchId, kind);
      if (current?.output_file_id === id || current?.error_file_id === id) continue;
      await this.files.removeOrphan(id);
    }
  }
}
