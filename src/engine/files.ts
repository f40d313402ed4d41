import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { invalidRequest, notFound, OpenBatchError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { BlobStore } from "../store/blob-store.js";
import type { FileRecord, Page, Store } from "../store/store.js";

/** Purposes a user may upload with (OpenAI Files); `batch_output` is ours to write. */
export const UPLOAD_PURPOSES = ["batch", "assistants", "fine-tune", "vision", "user_data", "evals"] as const;

/** Upload bytes on disk, not yet a file. */
export interface StagedUpload {
  id: string;
  bytes: number;
  commit: () => Promise<void>;
  abort: () => Promise<void>;
}

/** Who is asking: the owner fingerprint of their OpenBatch key, or null when auth is off (sees everything). */
export type Caller = string | null;

/**
 * Files: metadata in the Store, bytes in the BlobStore. Uploads stream to disk and are never held in memory.
 */
export class FileService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly maxFileBytes: number,
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
   * Records a staged upload as a file.
   * @throws OpenBatchError 400 for a purpose outside UPLOAD_PURPOSES (the staged bytes are dropped).
   */
  async commitUpload(caller: Caller, staged: StagedUpload, meta: { filename: string; purpose: unknown; expiresAfterSeconds?: number }): Promise<FileRecord> {
    if (!(UPLOAD_PURPOSES as readonly unknown[]).includes(meta.purpose)) {
      await staged.abort();
      throw invalidRequest(`Invalid purpose ${JSON.stringify(meta.purpose ?? null)}: expected one of ${UPLOAD_PURPOSES.join(", ")}.`, "purpose");
    }
    await staged.commit();
    return this.record(staged.id, caller ?? "", meta.filename, meta.purpose as string, staged.bytes, meta.expiresAfterSeconds);
  }

  /** Drops a staged upload that will not be committed. */
  async discardUpload(staged: StagedUpload): Promise<void> {
    await staged.abort();
  }

  /** Writes a file the engine produced (output and error files, purpose `batch_output`). */
  async writeOutput(owner: string, filename: string, content: Readable): Promise<FileRecord> {
    const id = newId("file-");
    const writer = this.blobs.openWriter(id);
    const bytes = await this.copy(content, writer, Number.MAX_SAFE_INTEGER);
    await writer.commit();
    return this.record(id, owner, filename, "batch_output", bytes);
  }

  private async copy(content: Readable, writer: ReturnType<BlobStore["openWriter"]>, limit: number): Promise<number> {
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

  private async record(id: string, owner: string, filename: string, purpose: string, bytes: number, expiresAfterSeconds?: number): Promise<FileRecord> {
    const now = Date.now();
    const record: FileRecord = { id, owner, filename, purpose, bytes, created_at: now, expires_at: expiresAfterSeconds ? now + expiresAfterSeconds * 1000 : null };
    await this.store.insertFile(record);
    return record;
  }

  /** @throws OpenBatchError 404 when missing or owned by another key. */
  async get(caller: Caller, id: string): Promise<FileRecord> {
    const file = await this.store.getFile(id);
    if (!file || (caller !== null && file.owner !== caller)) throw notFound(`No such File object: ${id}`, "file_id");
    return file;
  }

  async list(caller: Caller, q: { purpose?: string; order: "asc" | "desc"; after?: string; limit: number }): Promise<Page<FileRecord>> {
    return this.store.listFiles({ ...q, owner: caller });
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
    await this.store.deleteFile(id);
    await this.blobs.remove(id);
  }
}
