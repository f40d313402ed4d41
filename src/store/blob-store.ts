import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from "node:fs";
import { mkdir, opendir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

/** A blob being written: pipe bytes into `stream`, then `commit` (it becomes the blob) or `abort` (dropped). */
export interface BlobWriter {
  stream: Writable;
  commit: () => Promise<void>;
  abort: () => Promise<void>;
  /**
   * A further stream appending to the same uncommitted blob (an upload arriving in pieces over several requests);
   * open it only after the previous stream finished. Absent on writers that cannot append.
   */
  append?: () => Writable;
}

/**
 * Where file bytes live, by id: the local-files BlobStore below (the embedded store), or PostgreSQL
 * (store/postgres/blob-store.ts) when many nodes share a database; store/open.ts picks one. Writers commit atomically:
 * a reader never sees part of a write, and committing onto an id that has bytes replaces them.
 */
export interface BlobStorage {
  init(): Promise<void>;
  /** Opens a writer for `id`; call `commit` after it finished, or `abort` to drop it. */
  openWriter(id: string): BlobWriter;
  /** Streams a blob; `start`/`end` are inclusive byte offsets. A missing blob errors the stream (code ENOENT). */
  openReader(id: string, range?: { start: number; end?: number }): Readable;
  /** Size in bytes, or null when missing. */
  size(id: string): Promise<number | null>;
  remove(id: string): Promise<void>;
  /**
   * Deletes writes a dead process left and blobs `isKnown` denies (see each implementation for which are safe to take).
   * @returns how many partial writes and orphan blobs were deleted.
   */
  sweep(isKnown: (id: string) => Promise<boolean>): Promise<{ partials: number; orphans: number }>;
}

/** The suffix of a blob still being written; it becomes the blob's id on commit. */
const PARTIAL = ".partial";

/**
 * File bytes on local disk, one file per id under `<dir>/`. Writers go to a temp name (`<id>.partial`) and are renamed
 * on commit, so a crash never leaves a half-written file under a real id. A commit onto an id that already has bytes
 * replaces them atomically (rename), which lets a retried writer of a fixed id start over.
 * `.partial` files never outlive the process that writes them: `sweep` deletes them at start-up.
 */
export class BlobStore implements BlobStorage {
  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Path where a committed blob lives. */
  path(id: string): string {
    return join(this.dir, id);
  }

  /** Opens a temp writer for `id`; call `commit` after it finished, or `abort` to drop it. */
  openWriter(id: string): { stream: WriteStream; commit: () => Promise<void>; abort: () => Promise<void>; append?: () => WriteStream } {
    const temp = this.path(id) + PARTIAL;
    const stream = createWriteStream(temp);
    return {
      stream,
      append: () => createWriteStream(temp, { flags: "a" }),
      commit: () => rename(temp, this.path(id)),
      abort: () => rm(temp, { force: true }),
    };
  }

  /** Streams a blob; `start`/`end` are inclusive byte offsets. */
  openReader(id: string, range?: { start: number; end?: number }): ReadStream {
    return createReadStream(this.path(id), range);
  }

  /** Size in bytes, or null when missing. */
  async size(id: string): Promise<number | null> {
    try {
      return (await stat(this.path(id))).size;
    } catch {
      return null;
    }
  }

  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  /**
   * Deletes what a process that died left behind: every `<id>.partial` file (an upload or output file cut short), and
   * every committed blob whose id `isKnown` denies (bytes renamed into place, or left by a delete, whose metadata row
   * is missing). Only names shaped like our ids (`file-…`) are considered; anything else in the directory is left alone.
   * Call it only while no writer is open (at start-up, before anything is served): a live writer's `.partial` would
   * go too. Reads the directory as a stream, so memory stays flat in the number of blobs.
   * @param isKnown whether a metadata row exists for a blob id.
   * @returns how many partial files and orphan blobs were deleted.
   */
  async sweep(isKnown: (id: string) => Promise<boolean>): Promise<{ partials: number; orphans: number }> {
    let partials = 0;
    let orphans = 0;
    for await (const entry of await opendir(this.dir)) {
      if (!entry.isFile() || !entry.name.startsWith("file-")) continue;
      if (entry.name.endsWith(PARTIAL)) {
        await rm(join(this.dir, entry.name), { force: true });
        partials++;
      } else if (!(await isKnown(entry.name))) {
        await rm(join(this.dir, entry.name), { force: true });
        orphans++;
      }
    }
    return { partials, orphans };
  }
}
