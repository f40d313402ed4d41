import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { invalidRequest, notFound, OpenBatchError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { BlobStorage, BlobWriter } from "../store/blob-store.js";
import type { FileRecord, Page, Store } from "../store/store.js";

/** Purposes a user may upload with (OpenAI Files); `batch_output` is ours to write. */
export const UPLOAD_PURPOSES = ["batch", "assistants", "fine-tune", "vision", "user_data", "evals"] as const;

/** Bounds of an OpenAI `expires_after` / `output_expires_after` policy, seconds: 1 hour to 30 days. */
export const MIN_EXPIRES_AFTER_S = 3600;
export const MAX_EXPIRES_AFTER_S = 2_592_000;

/**
 * How long a file lives when its upload names no `expires_after`, by purpose, seconds; null = until deleted.
 * OpenAI documents that `purpose=batch` files expire after 30 days by default and every other file is kept until it
 * is deleted; batch output and error files follow the batch's `output_expires_after`, else they are kept.
 */
export function defaultExpiresAfterSeconds(purpose: string): number | null {
  return purpose === "batch" ? 30 * 86_400 : null;
}

/**
 * Parses an OpenAI expiration policy `{anchor: "created_at", seconds}` (Files `expires_after`, Batch
 * `output_expires_after`). `seconds` is an integer from MIN_EXPIRES_AFTER_S to MAX_EXPIRES_AFTER_S; with `form`
 * (multipart fields arrive as text) a string of digits counts as that integer.
 * @param param the parameter's name, used in the error. @returns the seconds, or null when `value` is undefined/null.
 * @throws OpenBatchError 400 naming `param`, `param.anchor` or `param.seconds` for any other shape or value.
 */
export function parseExpiresAfter(value: unknown, param: string, opts: { form?: boolean } = {}): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest(`Invalid '${param}': expected an object {"anchor": "created_at", "seconds": <integer>}.`, param, "invalid_type");
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key !== "anchor" && key !== "seconds") throw invalidRequest(`Unknown parameter: '${param}.${key}'.`, `${param}.${key}`, "unknown_parameter");
  }
  if (v.anchor === undefined) throw invalidRequest(`Missing required parameter: '${param}.anchor'.`, `${param}.anchor`, "missing_required_parameter");
  if (v.anchor !== "created_at") {
    throw invalidRequest(`Invalid '${param}.anchor': ${JSON.stringify(v.anchor)}; the only supported anchor is "created_at".`, `${param}.anchor`, "invalid_value");
  }
  if (v.seconds === undefined) throw invalidRequest(`Missing required parameter: '${param}.seconds'.`, `${param}.seconds`, "missing_required_parameter");
  const seconds = opts.form && typeof v.seconds === "string" && /^\d{1,10}$/.test(v.seconds) ? Number(v.seconds) : v.seconds;
  if (typeof seconds !== "number" || !Number.isInteger(seconds)) {
    throw invalidRequest(`Invalid '${param}.seconds': expected an integer, got ${JSON.stringify(v.seconds)}.`, `${param}.seconds`, "invalid_type");
  }
  if (seconds < MIN_EXPIRES_AFTER_S || seconds > MAX_EXPIRES_AFTER_S) {
    throw invalidRequest(
      `Invalid '${param}.seconds': ${seconds} is outside ${MIN_EXPIRES_AFTER_S} (1 hour) to ${MAX_EXPIRES_AFTER_S} (30 days).`,
      `${param}.seconds`,
      "invalid_value",
    );
  }
  return seconds;
}

/** Upload bytes on disk, not yet a file. */
export interface StagedUpload {
  id: string;
  bytes: number;
  commit: () => Promise<void>;
  abort: () => Promise<void>;
}

/**
 * An upload received in pieces over several requests (FileService.beginPiecewiseUpload). No file descriptor is held
 * between pieces.
 */
export interface PiecewiseUpload {
  /** The file id it will have once committed. */
  readonly id: string;
  /** Bytes received so far. */
  readonly bytes: number;
  /**
   * Appends one piece (pieces are written in call order, one at a time).
   * @returns the bytes appended.
   * @throws OpenBatchError 413 past the size limit; any read or write error. Either way the upload is aborted and its
   * partial file deleted.
   */
  append(content: Readable): Promise<number>;
  /** Ends the upload: the staged bytes to pass to `commitUpload`. */
  finish(): Promise<StagedUpload>;
  /** Stops a piece in progress and deletes the partial file; safe to call more than once. */
  abort(): Promise<void>;
}

/** Who is asking: the owner fingerprint of their OpenBatch key, or null when auth is off (sees everything). */
export type Caller = string | null;

/** Waits for a promise without caring whether it failed. */
const settle = (p: Promise<unknown>): Promise<void> =>
  p.then(
    () => undefined,
    () => undefined,
  );

/**
 * Files: metadata in the Store, bytes in the BlobStore. Uploads stream to disk and are never held in memory.
 * A file past its `expires_at` is gone for callers at once (404), and the retention sweeper (engine/retention.ts)
 * removes its row and bytes.
 */
export class FileService {
  /**
   * @param now the clock expiry is judged by, unix ms (tests move it forward).
   */
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStorage,
    private readonly maxFileBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Streams upload bytes to disk under a fresh id, before the purpose is known (multipart may send the file part
   * first). Call `commitUpload` or `discardUpload` next.
   * @throws OpenBatchError 413 when the upload exceeds the size limit (nothing is kept).
   */
  async stageUpload(content: Readable): Promise<StagedUpload> {
    const id = newId("file-");
    const writer = this.blobs.openWriter(id);
    const bytes = await this.copy(content, writer, this.maxFileBytes);
    return { id, bytes, commit: writer.commit, abort: writer.abort };
  }

  /**
   * Records a staged upload as a file. `expiresAfter` is the OpenAI `expires_after` policy as sent (multipart text
   * allowed); without one the purpose's default applies (defaultExpiresAfterSeconds: 30 days for `batch`).
   * @throws OpenBatchError 400 for a purpose outside UPLOAD_PURPOSES or a bad `expires_after` (the staged bytes are dropped).
   */
  async commitUpload(caller: Caller, staged: StagedUpload, meta: { filename: string; purpose: unknown; expiresAfter?: unknown }): Promise<FileRecord> {
    let expiresAfterSeconds: number | null;
    try {
      if (!(UPLOAD_PURPOSES as readonly unknown[]).includes(meta.purpose)) {
        throw invalidRequest(`Invalid purpose ${JSON.stringify(meta.purpose ?? null)}: expected one of ${UPLOAD_PURPOSES.join(", ")}.`, "purpose");
      }
      expiresAfterSeconds = parseExpiresAfter(meta.expiresAfter, "expires_after", { form: true }) ?? defaultExpiresAfterSeconds(meta.purpose as string);
    } catch (err) {
      await staged.abort();
      throw err;
    }
    await staged.commit();
    return this.record(staged.id, caller ?? "", meta.filename, meta.purpose as string, staged.bytes, expiresAfterSeconds);
  }

  /** Drops a staged upload that will not be committed. */
  async discardUpload(staged: StagedUpload): Promise<void> {
    await staged.abort();
  }

  /**
   * Starts an upload whose bytes arrive in pieces over several requests (Google's resumable protocol). Nothing is on
   * disk until the first piece; each piece opens the partial file, appends and closes it before `append` resolves, so
   * an upload waiting for its next piece holds no file descriptor. End it with `finish` (then `commitUpload`) or
   * `abort` (deletes the partial file).
   */
  beginPiecewiseUpload(): PiecewiseUpload {
    const id = newId("file-");
    const limit = this.maxFileBytes;
    let writer: BlobWriter | null = null;
    let bytes = 0;
    let aborted = false;
    /** The stream of the piece being written, so `abort` can stop it. */
    let current: Writable | null = null;
    let pending: Promise<unknown> = Promise.resolve();
    const removePartial = () => writer?.abort() ?? Promise.resolve();

    const appendPiece = async (content: Readable): Promise<number> => {
      if (aborted) throw new OpenBatchError("conflict", "The upload was cancelled.", { code: "upload_cancelled" });
      let added = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          added += chunk.length;
          if (bytes + added > limit) done(new OpenBatchError("payload_too_large", `File is larger than the limit of ${limit} bytes.`, { param: "file", code: "file_too_large" }));
          else done(null, chunk);
        },
      });
      // The first piece opens the blob's writer; later ones append to the same uncommitted blob.
      if (!writer) {
        writer = this.blobs.openWriter(id);
        current = writer.stream;
      } else {
        if (!writer.append) throw new Error("This blob storage cannot append to an upload.");
        current = writer.append();
      }
      try {
        // pipeline settles only once the write stream has closed its descriptor.
        await pipeline(content, counter, current);
      } catch (err) {
        // A piece that failed (client gone, size limit, disk) ends the upload: the bytes so far are not kept.
        aborted = true;
        await removePartial();
        throw err;
      } finally {
        current = null;
      }
      if (aborted) {
        // Cancelled while the last bytes were written: the file may have been re-created after abort removed it.
        await removePartial();
        throw new OpenBatchError("conflict", "The upload was cancelled.", { code: "upload_cancelled" });
      }
      bytes += added;
      return added;
    };

    const abort = async (): Promise<void> => {
      if (!aborted) {
        aborted = true;
        current?.destroy();
      }
      await settle(pending);
      await removePartial();
    };

    return {
      id,
      get bytes() {
        return bytes;
      },
      append: (content) => {
        const run = pending.then(() => appendPiece(content));
        pending = settle(run);
        return run;
      },
      finish: async () => {
        await settle(pending);
        if (!writer) await appendPiece(Readable.from([]));
        return { id, bytes, commit: writer!.commit, abort };
      },
      abort,
    };
  }

  /**
   * Writes a file the engine produced (output and error files, purpose `batch_output`).
   * @param expiresAfterSeconds it expires that long after its own created_at (the batch's `output_expires_after`);
   * null = kept until deleted.
   * @param id a fixed id (engine/finalizer.ts derives one per batch and kind): writing it again replaces the bytes and
   * the row, so a retried or crashed write never leaves a second file. Default: a fresh id.
   */
  async writeOutput(owner: string, filename: string, content: Readable, expiresAfterSeconds: number | null = null, id: string = newId("file-")): Promise<FileRecord> {
    const writer = this.blobs.openWriter(id);
    const bytes = await this.copy(content, writer, Number.MAX_SAFE_INTEGER);
    await writer.commit();
    // The row of an earlier attempt (the bytes were just replaced) gives way to this one.
    await this.store.deleteFile(id);
    return this.record(id, owner, filename, "batch_output", bytes, expiresAfterSeconds);
  }

  /** Deletes a file the engine wrote (bytes, then row) if it exists, with no owner or expiry check. */
  async removeOrphan(id: string): Promise<void> {
    await this.blobs.remove(id);
    await this.store.deleteFile(id);
  }

  private async copy(content: Readable, writer: BlobWriter, limit: number): Promise<number> {
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > limit) done(new OpenBatchError("payload_too_large", `File is larger than the limit of ${limit} bytes.`, { param: "file", code: "file_too_large" }));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(content, counter, writer.stream);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return bytes;
  }

  private async record(id: string, owner: string, filename: string, purpose: string, bytes: number, expiresAfterSeconds: number | null): Promise<FileRecord> {
    const now = this.now();
    const record: FileRecord = { id, owner, filename, purpose, bytes, created_at: now, expires_at: expiresAfterSeconds === null ? null : now + expiresAfterSeconds * 1000 };
    await this.store.insertFile(record);
    return record;
  }

  /** @throws OpenBatchError 404 when missing, expired, or owned by another key. */
  async get(caller: Caller, id: string): Promise<FileRecord> {
    const file = await this.store.getFile(id);
    if (!file || (caller !== null && file.owner !== caller) || this.isExpired(file)) throw notFound(`No such File object: ${id}`, "file_id");
    return file;
  }

  /** Files of the caller that have not expired. */
  async list(caller: Caller, q: { purpose?: string; order: "asc" | "desc"; after?: string; limit: number }): Promise<Page<FileRecord>> {
    return this.store.listFiles({ ...q, owner: caller, liveAt: this.now() });
  }

  /** True once a file's `expires_at` has passed. */
  isExpired(file: FileRecord): boolean {
    return file.expires_at !== null && file.expires_at <= this.now();
  }

  /**
   * Deletes (bytes, then row) up to `limit` files whose `expires_at` has passed, except those in `keep`.
   * @returns the ids deleted.
   */
  async deleteExpired(keep: ReadonlySet<string>, limit: number): Promise<string[]> {
    const deleted: string[] = [];
    for (const file of await this.store.expiredFiles(this.now(), limit + keep.size)) {
      if (deleted.length === limit) break;
      if (keep.has(file.id)) continue;
      // Bytes first: the file is already invisible (expired), and a crash before the row goes leaves the row for the
      // next sweep, which removes both; the other order could leave bytes no row points to.
      await this.blobs.remove(file.id);
      if (await this.store.deleteFile(file.id)) deleted.push(file.id);
    }
    return deleted;
  }

  /** Streams the bytes of a file. @throws OpenBatchError 404. */
  async content(caller: Caller, id: string): Promise<{ file: FileRecord; stream: Readable }> {
    const file = await this.get(caller, id);
    return { file, stream: this.blobs.openReader(id) };
  }

  /** Opens a file's bytes for the engine (no owner check). */
  openForEngine(id: string): Readable {
    return this.blobs.openReader(id);
  }

  /** @throws OpenBatchError 404. */
  async delete(caller: Caller, id: string): Promise<void> {
    await this.get(caller, id);
    // Bytes first: on a full disk the row's delete needs journal space that only the freed bytes give. A failure
    // between the two leaves a row whose content 404s, and deleting it again finishes the job.
    await this.blobs.remove(id);
    await this.store.deleteFile(id);
  }
}
