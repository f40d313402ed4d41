import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * File bytes on local disk, one file per id under `<dir>/`. Writers go to a temp name and are renamed on commit,
 * so a crash never leaves a half-written file under a real id.
 */
export class BlobStore {
  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Path where a committed blob lives. */
  path(id: string): string {
    return join(this.dir, id);
  }

  /** Opens a temp writer for `id`; call `commit` after it finished, or `abort` to drop it. */
  openWriter(id: string): { stream: WriteStream; commit: () => Promise<void>; abort: () => Promise<void> } {
    const temp = this.path(id) + ".partial";
    const stream = createWriteStream(temp);
    return {
      stream,
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
}
