import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import type { BlobStorage, BlobWriter } from "../blob-store.js";
import type { PgDatabase } from "./db.js";

/** Bytes per stored chunk: a write holds at most one chunk in memory, a read a few. */
const CHUNK_BYTES = 256 * 1024;
/** Chunks a reader fetches per query. */
const READ_CHUNKS = 4;
/**
 * A write with no id (not committed) or a blob with no file row is only swept once it is this old, ms: on a shared
 * database another process may be writing it right now, or about to record its row.
 */
const SWEEP_AGE_MS = 60 * 60 * 1000;

/**
 * File bytes in PostgreSQL, reachable from every node: each write is a `blob_writes` row with its bytes in
 * `blob_chunks` (256 KiB each), streamed in and out chunk by chunk, never whole in memory. A write gets its blob id
 * only on commit, in one transaction that also drops the blob's earlier bytes, so readers never see half a file and a
 * retried writer of a fixed id replaces it atomically (as the local BlobStore's rename does).
 */
export class PgBlobStore implements BlobStorage {
  constructor(private readonly db: PgDatabase) {}

  async init(): Promise<void> {}

  /** Opens a writer for `id`: bytes go to a fresh write row; `commit` makes it the blob, `abort` drops it. */
  openWriter(id: string): BlobWriter {
    const key = randomBytes(16).toString("hex");
    const state = { n: 0, bytes: 0, created: null as Promise<void> | null };
    const ensure = () => (state.created ??= this.db.rows(`INSERT INTO blob_writes (key, created_at) VALUES ($1, $2)`, [key, Date.now()]).then(() => undefined));
    const stream = this.chunkWriter(key, state, ensure);
    return {
      stream,
      append: () => this.chunkWriter(key, state, ensure),
      commit: async () => {
        await ensure();
        await this.db.tx(async (c) => {
          await c.query(`DELETE FROM blob_writes WHERE id = $1`, [id]);
          await c.query(`UPDATE blob_writes SET id = $1, bytes = $2 WHERE key = $3`, [id, state.bytes, key]);
        });
      },
      abort: async () => {
        await state.created?.catch(() => undefined);
        await this.db.rows(`DELETE FROM blob_writes WHERE key = $1 AND id IS NULL`, [key]);
      },
    };
  }

  /** A stream that appends chunks to write `key` (numbering continues from `state`). */
  private chunkWriter(key: string, state: { n: number; bytes: number }, ensure: () => Promise<void>): Writable {
    let buffered: Buffer[] = [];
    let size = 0;
    const flush = async (all: boolean) => {
      await ensure();
      while (size >= CHUNK_BYTES || (all && size > 0)) {
        const joined = Buffer.concat(buffered);
        const data = joined.subarray(0, Math.min(CHUNK_BYTES, joined.length));
        const rest = joined.subarray(data.length);
        buffered = rest.length ? [rest] : [];
        size = rest.length;
        await this.db.rows(`INSERT INTO blob_chunks (key, n, start, data) VALUES ($1, $2, $3, $4)`, [key, state.n, state.bytes, data]);
        state.n++;
        state.bytes += data.length;
      }
    };
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        buffered.push(chunk);
        size += chunk.length;
        if (size < CHUNK_BYTES) return done();
        flush(false).then(() => done(), done);
      },
      final(done) {
        flush(true).then(() => done(), done);
      },
    });
  }

  /**
   * Streams a committed blob; `start`/`end` are inclusive byte offsets. A missing blob fails the stream with an
   * ENOENT error, as a missing local file does.
   */
  openReader(id: string, range?: { start: number; end?: number }): Readable {
    const db = this.db;
    const from = range?.start ?? 0;
    const to = range?.end ?? Infinity;
    let key: string | null = null;
    let nextN = 0;
    let pos = from;
    return new Readable({
      async read() {
        try {
          if (key === null) {
            const [row] = await db.rows<{ key: string }>(`SELECT key FROM blob_writes WHERE id = $1`, [id]);
            if (!row) throw Object.assign(new Error(`ENOENT: no such blob ${id}`), { code: "ENOENT" });
            key = row.key;
            const [first] = await db.rows<{ n: number }>(`SELECT n FROM blob_chunks WHERE key = $1 AND start + octet_length(data) > $2 ORDER BY n LIMIT 1`, [key, from]);
            if (!first) return void this.push(null);
            nextN = first.n;
          }
          if (pos > to) return void this.push(null);
          const rows = await db.rows<{ n: number; start: number; data: Buffer }>(`SELECT n, start, data FROM blob_chunks WHERE key = $1 AND n >= $2 ORDER BY n LIMIT $3`, [key, nextN, READ_CHUNKS]);
          if (rows.length === 0) return void this.push(null);
          // One push per read: Node may call read() again as soon as something is pushed.
          const parts: Buffer[] = [];
          for (const r of rows) {
            nextN = r.n + 1;
            const begin = Math.max(0, pos - r.start);
            const end = Math.min(r.data.length, to - r.start + 1);
            if (end > begin) {
              parts.push(r.data.subarray(begin, end));
              pos = r.start + end;
            }
            if (pos > to) break;
          }
          if (parts.length > 0) this.push(Buffer.concat(parts));
          if (pos > to || rows.length < READ_CHUNKS) this.push(null);
        } catch (err) {
          this.destroy(err as Error);
        }
      },
    });
  }

  async size(id: string): Promise<number | null> {
    const [row] = await this.db.rows<{ bytes: number }>(`SELECT bytes FROM blob_writes WHERE id = $1`, [id]);
    return row?.bytes ?? null;
  }

  async remove(id: string): Promise<void> {
    await this.db.rows(`DELETE FROM blob_writes WHERE id = $1`, [id]);
  }

  /**
   * Deletes writes never committed and blobs `isKnown` denies, once they are an hour old (younger ones may belong to a
   * live process on another node). Pages through candidates, so memory stays flat.
   */
  async sweep(isKnown: (id: string) => Promise<boolean>): Promise<{ partials: number; orphans: number }> {
    const cutoff = Date.now() - SWEEP_AGE_MS;
    const partials = (await this.db.pool.query(`DELETE FROM blob_writes WHERE id IS NULL AND created_at < $1`, [cutoff])).rowCount ?? 0;
    let orphans = 0;
    let after = "";
    for (;;) {
      const page = await this.db.rows<{ id: string }>(`SELECT id FROM blob_writes WHERE id > $1 AND created_at < $2 ORDER BY id LIMIT 500`, [after, cutoff]);
      if (page.length === 0) break;
      for (const { id } of page) {
        if (id.startsWith("file-") && !(await isKnown(id))) {
          await this.remove(id);
          orphans++;
        }
      }
      after = page[page.length - 1]!.id;
    }
    return { partials, orphans };
  }
}
