import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import Database from "better-sqlite3";
import type pg from "pg";
import { BlobStore } from "../store/blob-store.js";
import { PgBlobStore } from "../store/postgres/blob-store.js";
import { PgCollectionStore } from "../store/postgres/collection-store.js";
import { PgDatabase, isPostgresUrl } from "../store/postgres/db.js";
import { SqliteCollectionStore } from "../store/sqlite/collection-store.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";

/*
 * `openbatch migrate --from <data dir> --to postgres://…`: copies an embedded store into an empty PostgreSQL database.
 *
 * Stop the server on the data dir first. The source is brought to the current schema (as a start would), the target
 * created or migrated. Every engine table both stores have is copied row by row, column by column (a column the target
 * lacks fails the run: nothing is dropped silently); SQLite's `native_usage` goes into `native_runs`' token columns
 * as PostgreSQL keeps it; items a dead process held in flight go back to the queue; BOOLEAN columns get SQLite's 0/1 as
 * booleans; every `seq` sequence is set past the copied rows. File bytes are streamed blob by blob into PostgreSQL
 * (never whole in memory). Collections keep their objects' seqs, ids, creation and update times; each class gets a
 * fresh version, so every server builds its vector indexes from the copied vectors. The key vault's secret
 * (`<dataDir>/secret.key`) goes into the database's settings, so sealed per-batch keys still open, unless
 * OPENBATCH_SECRET is set (then every process must be given that same secret, as before).
 * The tables are copied in one transaction; file bytes before it, so a failed run leaves at most bytes behind: drop and
 * create the database again, then rerun.
 */

/** Engine tables copied as they are, in this order (each also exists in PostgreSQL's schema.ts). */
const ENGINE_TABLES = ["files", "batches", "request_items", "batch_counts", "webhook_events", "webhook_deliveries", "webhook_attempts", "native_runs", "vendor_jobs", "vendor_job_progress"];
/** Tables whose rows make a target not empty. */
const TARGET_TABLES = [...ENGINE_TABLES, "blob_writes", "collection_classes", "collection_objects"];
/** Rows per INSERT (PostgreSQL allows 65,535 parameters per statement). */
const MAX_PARAMS = 30_000;

/** What `migrate` copied: rows per table, file blobs and their bytes. */
export interface MigrateReport {
  tables: Record<string, number>;
  blobs: number;
  bytes: number;
  /** Files whose row exists but whose bytes were missing from the data dir (their rows are copied all the same). */
  missingBlobs: string[];
  /** Whether the vault's secret was stored in the database (false: OPENBATCH_SECRET is set, or the data dir had none). */
  secretCopied: boolean;
}

type Row = Record<string, unknown>;

/**
 * Copies the embedded store in `from` into the PostgreSQL database `to`.
 * @param from a data dir (holding `openbatch.db` and `files/`).
 * @param to a `postgres://` URL of an empty (or freshly created) database.
 * @throws Error when `from` has no database, `to` is not a PostgreSQL URL or cannot be reached, the target already
 *   holds batches, files or collections, its vault secret differs from the data dir's, or a column has no counterpart.
 */
export async function migrate(from: string, to: string, log: (line: string) => void = () => undefined): Promise<MigrateReport> {
  if (!isPostgresUrl(to)) throw new Error(`--to must be a postgres:// or postgresql:// URL.`);
  const file = join(from, "openbatch.db");
  if (!existsSync(file)) throw new Error(`No OpenBatch data in ${from} (no openbatch.db).`);
  // Bring the source to the current schema, as a start would; then read it alone.
  await new SqliteStore(file).close();
  await new SqliteCollectionStore(file).close();
  const src = new Database(file, { readonly: true });
  const db = new PgDatabase(to, 4);
  try {
    await db.migrate();
    await (await PgCollectionStore.open(to, 1)).close();
    for (const t of TARGET_TABLES) {
      const [{ n }] = await db.rows<{ n: number }>(`SELECT count(*) AS n FROM ${t}`);
      if (n! > 0) throw new Error(`The target database is not empty (${t} has ${n} rows): migrate only into an empty database.`);
    }
    const secretCopied = await copySecret(from, db);

    // File bytes first, each streamed into its own blob.
    const local = new BlobStore(join(from, "files"));
    const blobs = new PgBlobStore(db);
    await blobs.init();
    let count = 0;
    let bytes = 0;
    const missingBlobs: string[] = [];
    for (const { id } of src.prepare(`SELECT id FROM files ORDER BY seq`).iterate() as IterableIterator<{ id: string }>) {
      const size = await local.size(id);
      if (size === null) {
        missingBlobs.push(id);
        continue;
      }
      const w = blobs.openWriter(id);
      try {
        await pipeline(local.openReader(id), w.stream);
        await w.commit();
      } catch (err) {
        await w.abort().catch(() => undefined);
        throw err;
      }
      count++;
      bytes += size;
    }
    log(`copied ${count} files (${bytes} bytes)${missingBlobs.length ? `; ${missingBlobs.length} files had no bytes in ${from}/files` : ""}`);

    const tables = await db.tx(async (c) => {
      const counts: Record<string, number> = {};
      const types = await columnTypes(c);
      for (const t of ENGINE_TABLES) {
        counts[t] = await copyTable(src, c, types, t, (row) => {
          // A lease of the process that wrote the data dir dies with it: the item is queued again.
          if (t === "request_items" && row.state === "in_flight") return { ...row, state: "queued", lease_owner: null, lease_expires_at: null };
          return row;
        });
      }
      // PostgreSQL keeps the tokens of native runs on native_runs itself.
      const usage = src.prepare(`SELECT batch_id, input_tokens, output_tokens FROM native_usage`).all() as Row[];
      for (const u of usage) {
        const r = await c.query(`UPDATE native_runs SET input_tokens = $2, output_tokens = $3 WHERE batch_id = $1`, [u.batch_id, u.input_tokens, u.output_tokens]);
        if (!r.rowCount) throw new Error(`native_usage of batch ${String(u.batch_id)} has no native_runs row to go to.`);
      }
      counts.native_usage = usage.length;

      // Collections: classes get a version from the shared sequence; their objects carry it as their change version.
      const versions = new Map<string, number>();
      counts.collection_classes = await copyTable(src, c, types, "collection_classes", (row) => ({ ...row, version: undefined }));
      for (const { name } of (await c.query<{ name: string }>(`SELECT name FROM collection_classes`)).rows) {
        const v = (await c.query<{ v: number }>(`UPDATE collection_classes SET version = nextval('collection_version_seq') WHERE name = $1 RETURNING version AS v`, [name])).rows[0]!.v;
        versions.set(name, v);
      }
      counts.collection_objects = await copyTable(src, c, types, "collection_objects", (row) => ({ ...row, change_version: versions.get(row.class as string) ?? 0 }));
      counts.collection_references = await copyTable(src, c, types, "collection_references", (row) => row);
      return counts;
    });
    for (const [t, n] of Object.entries(tables)) log(`copied ${n} rows of ${t}`);
    return { tables, blobs: count, bytes, missingBlobs, secretCopied };
  } finally {
    src.close();
    await db.close();
  }
}

/** Stores the data dir's vault secret as the database's (unless OPENBATCH_SECRET is set). @returns whether it did. */
async function copySecret(from: string, db: PgDatabase): Promise<boolean> {
  const path = join(from, "secret.key");
  if (process.env.OPENBATCH_SECRET || !existsSync(path)) return false;
  const secret = (await readFile(path, "utf8")).trim();
  const [existing] = await db.rows<{ value: string }>(`SELECT value FROM openbatch_settings WHERE key = 'vault_secret'`);
  if (existing && existing.value !== secret) {
    throw new Error("The target database already has a different vault secret (a server ran on it): per-batch keys sealed in the data dir would not open. Migrate into a fresh database.");
  }
  await db.rows(`INSERT INTO openbatch_settings (key, value) VALUES ('vault_secret', $1) ON CONFLICT (key) DO NOTHING`, [secret]);
  return true;
}

/** PostgreSQL column types per table (information_schema data_type). */
async function columnTypes(c: pg.PoolClient): Promise<Map<string, Map<string, string>>> {
  const rows = (await c.query<{ table_name: string; column_name: string; data_type: string }>(`SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()`)).rows;
  const out = new Map<string, Map<string, string>>();
  for (const r of rows) {
    let t = out.get(r.table_name);
    if (!t) out.set(r.table_name, (t = new Map()));
    t.set(r.column_name, r.data_type);
  }
  return out;
}

/**
 * Copies every row of `table` (after `map`; a column mapped to undefined is left to its default) in multi-row INSERTs,
 * then moves its `seq` sequence past the rows copied.
 * @throws Error when a source column has no column of that name in PostgreSQL.
 */
async function copyTable(src: Database.Database, c: pg.PoolClient, types: Map<string, Map<string, string>>, table: string, map: (row: Row) => Row): Promise<number> {
  const target = types.get(table);
  if (!target) throw new Error(`PostgreSQL has no table ${table}.`);
  if (!(src.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table) as { n: number }).n) return 0;
  let n = 0;
  let chunk: Row[] = [];
  let columns: string[] | null = null;
  const flush = async () => {
    if (chunk.length === 0 || !columns) return;
    const values: unknown[] = [];
    const tuples = chunk.map((row) => `(${columns!.map((col) => {
      let v = row[col];
      if (target.get(col) === "boolean" && v !== null) v = Boolean(v);
      values.push(v);
      return `$${values.length}`;
    }).join(", ")})`);
    await c.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, values);
    chunk = [];
  };
  for (const raw of src.prepare(`SELECT * FROM ${table}`).iterate() as IterableIterator<Row>) {
    const row = map(raw);
    if (!columns) {
      columns = Object.keys(row).filter((k) => row[k] !== undefined);
      const lost = columns.filter((k) => !target.has(k));
      if (lost.length) throw new Error(`PostgreSQL's ${table} has no column ${lost.join(", ")}: this OpenBatch cannot migrate it.`);
    }
    chunk.push(row);
    n++;
    if (chunk.length * columns.length >= MAX_PARAMS) await flush();
  }
  await flush();
  if (target.has("seq") && n > 0) await c.query(`SELECT setval(pg_get_serial_sequence($1, 'seq'), (SELECT max(seq) FROM ${table}))`, [table]);
  return n;
}
