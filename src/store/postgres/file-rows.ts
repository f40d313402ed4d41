import type { FileRecord, Page } from "../store.js";
import type { PgDatabase } from "./db.js";

// The `files` table of the shared store (Store's file operations; see store.ts for what each promises).

type Row = Record<string, unknown>;

function toFile(row: Row): FileRecord {
  const f = { ...row } as Record<string, unknown>;
  delete f.seq;
  return f as unknown as FileRecord;
}

/** `Store.insertFile` on PostgreSQL: what it promises is documented in store.ts. */
export async function insertFile(db: PgDatabase, f: FileRecord): Promise<void> {
  await db.rows(
    `INSERT INTO files (id, owner, filename, purpose, bytes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [f.id, f.owner, f.filename, f.purpose, f.bytes, f.created_at, f.expires_at],
  );
}

/** `Store.getFile` on PostgreSQL: what it promises is documented in store.ts. */
export async function getFile(db: PgDatabase, id: string): Promise<FileRecord | null> {
  const [row] = await db.rows(`SELECT * FROM files WHERE id = $1`, [id]);
  return row ? toFile(row) : null;
}

/** `Store.listFiles` on PostgreSQL: what it promises is documented in store.ts. */
export async function listFiles(db: PgDatabase, q: { owner: string | null; purpose?: string; order: "asc" | "desc"; after?: string; limit: number; liveAt?: number }): Promise<Page<FileRecord>> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => (args.push(v), `$${args.length}`);
  if (q.owner !== null) where.push(`owner = ${arg(q.owner)}`);
  if (q.purpose) where.push(`purpose = ${arg(q.purpose)}`);
  if (q.liveAt !== undefined) where.push(`(expires_at IS NULL OR expires_at > ${arg(q.liveAt)})`);
  if (q.after) {
    const desc = q.order === "desc";
    where.push(`seq ${desc ? "<" : ">"} coalesce((SELECT seq FROM files WHERE id = ${arg(q.after)}), ${desc ? "-1" : "9223372036854775807"})`);
  }
  const rows = await db.rows(
    `SELECT * FROM files ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq ${q.order === "desc" ? "DESC" : "ASC"} LIMIT ${arg(q.limit + 1)}`,
    args,
  );
  return { data: rows.slice(0, q.limit).map(toFile), has_more: rows.length > q.limit };
}

/** `Store.deleteFile` on PostgreSQL: what it promises is documented in store.ts. */
export async function deleteFile(db: PgDatabase, id: string): Promise<boolean> {
  return ((await db.pool.query(`DELETE FROM files WHERE id = $1`, [id])).rowCount ?? 0) > 0;
}

/** `Store.expiredFiles` on PostgreSQL: what it promises is documented in store.ts. */
export async function expiredFiles(db: PgDatabase, now: number, limit: number): Promise<FileRecord[]> {
  return (await db.rows(`SELECT * FROM files WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, [now, limit])).map(toFile);
}
