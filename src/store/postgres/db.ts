import pg from "pg";
import { PG_MIGRATIONS } from "./schema.js";

/** A query runner: the pool, or one client inside a transaction. */
export type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

/** BIGINT (oid 20) columns hold unix ms and counters, all well inside 2^53: read them as numbers, not strings. */
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"))) as typeof pg.types.getTypeParser,
};

/** SQLSTATEs a transaction is simply run again for: deadlock_detected, serialization_failure. */
const RETRYABLE = new Set(["40P01", "40001"]);

/** Advisory lock key every migrating process takes (one migration at a time per database). */
const MIGRATION_LOCK = 0x0b_a7c4;

/**
 * A pooled PostgreSQL connection (node-postgres) with a transaction helper. One per store; every store of a process
 * shares it (PostgresStore, its outbox, vendor jobs, blobs, budgets).
 */
export class PgDatabase {
  readonly pool: pg.Pool;

  /**
   * @param url a `postgres://` or `postgresql://` connection string.
   * @param max most connections held (default 10).
   */
  constructor(readonly url: string, max = 10) {
    this.pool = new pg.Pool({ connectionString: url, max, types: TYPES });
    // An idle connection the server dropped must not crash the process; the pool replaces it on next use.
    this.pool.on("error", () => undefined);
  }

  /** Runs one statement. @returns its rows. */
  async rows<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  /**
   * Runs one statement, again (up to 5 times) when it fails on a deadlock or serialization failure: a statement that
   * failed changed nothing, so one that is its own transaction can simply be repeated. @returns its rows.
   */
  async rowsRetrying<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.rows<T>(text, values);
      } catch (err) {
        if (attempt < 5 && RETRYABLE.has((err as { code?: string }).code ?? "")) continue;
        throw err;
      }
    }
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED) on one pooled client: committed when it resolves, rolled back when it
   * throws. A deadlock or serialization failure runs it again (up to 5 times), so `fn` must only touch the database.
   */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        if (attempt < 5 && RETRYABLE.has((err as { code?: string }).code ?? "")) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  /**
   * Applies the migrations not yet applied, each in its own transaction, under an advisory lock: processes that start
   * together wait for the first, then find nothing left to do.
   */
  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      await c.query("CREATE TABLE IF NOT EXISTS openbatch_schema (version INTEGER NOT NULL)");
      const rows = (await c.query<{ version: number }>("SELECT version FROM openbatch_schema")).rows;
      let applied = rows[0]?.version ?? 0;
      if (rows.length === 0) await c.query("INSERT INTO openbatch_schema (version) VALUES (0)");
      for (; applied < PG_MIGRATIONS.length; applied++) {
        await c.query(PG_MIGRATIONS[applied]!);
        await c.query("UPDATE openbatch_schema SET version = $1", [applied + 1]);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** True for a `postgres://` / `postgresql://` URL. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}
