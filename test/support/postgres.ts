import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server tests use: OPENBATCH_TEST_PG_URL, or the machine's PostgreSQL (127.0.0.1:5432, trust auth, user postgres). */
const ADMIN_URL = process.env.OPENBATCH_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** True when the test PostgreSQL answers; otherwise says so once on stderr (the PostgreSQL tests skip). */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch (err) {
    process.stderr.write(`PostgreSQL tests skipped: no PostgreSQL at ${ADMIN_URL} (${(err as Error).message}); start it or set OPENBATCH_TEST_PG_URL.\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh database for one test file: its URL, and `drop` (terminates what still uses it, then drops it). */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `openbatch_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}
