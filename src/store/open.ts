import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { KeyVault } from "../engine/key-vault.js";
import type { BudgetCoordinator } from "../engine/shared-budget.js";
import { BlobStore, type BlobStorage } from "./blob-store.js";
import type { CollectionStore } from "./collection-store.js";
import { isPostgresUrl } from "./postgres/db.js";
import { PgBlobStore } from "./postgres/blob-store.js";
import { PgCollectionStore } from "./postgres/collection-store.js";
import { PostgresStore, type PostgresStoreOptions } from "./postgres/postgres-store.js";
import { SqliteCollectionStore } from "./sqlite/collection-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

/** Where the engine keeps its state: the embedded store in a data dir, or a PostgreSQL database many nodes share. */
export interface StoreLocation {
  /**
   * The local data dir: the SQLite database and files (embedded), or only caches when `databaseUrl` is given. Created
   * when missing.
   */
  dataDir: string;
  /** A `postgres://` / `postgresql://` URL: every table and every file's bytes in that database. */
  databaseUrl?: string | null;
}

/** What `openStore` opened: the interfaces the engine runs on, and which kind of store backs them. */
export interface OpenedStore {
  kind: "sqlite" | "postgres";
  store: Store;
  blobs: BlobStorage;
  /** Seals per-batch upstream keys; the same secret in every process of one database. */
  vault: KeyVault;
  /** Budgets shared with the other workers of the database (PostgreSQL), or null for the embedded store. */
  budgets: BudgetCoordinator | null;
}

/**
 * The database URL a command was given: the flag, else `OPENBATCH_DATABASE_URL`, else none (embedded store).
 * @throws Error when it is given but is not a `postgres://` URL.
 */
export function resolveDatabaseUrl(flag: string | undefined, env = process.env.OPENBATCH_DATABASE_URL): string | null {
  const url = flag || env || null;
  if (url !== null && !isPostgresUrl(url)) throw new Error(`--database-url must be a postgres:// or postgresql:// URL, got "${url.replace(/\/\/[^@/]*@/, "//…@")}".`);
  return url;
}

/**
 * The one place that picks a store: a data dir alone opens the embedded store (`<dataDir>/openbatch.db` in SQLite,
 * bytes under `<dataDir>/files`, the vault's secret in `<dataDir>/secret.key`); a `postgres://` URL opens PostgreSQL,
 * schema created or migrated now, bytes in the database, and the vault's secret from OPENBATCH_SECRET or else created
 * once in the database (set OPENBATCH_SECRET so the database alone does not hold what unseals its keys).
 * @param blobs blob storage to use instead (tests inject faults with it).
 * @throws Error when PostgreSQL cannot be reached or migrated.
 */
export async function openStore(location: StoreLocation, opts: { blobs?: BlobStorage; postgres?: PostgresStoreOptions } = {}): Promise<OpenedStore> {
  await mkdir(location.dataDir, { recursive: true });
  if (location.databaseUrl) {
    const store = await PostgresStore.open(location.databaseUrl, opts.postgres);
    const blobs = opts.blobs ?? new PgBlobStore(store.db);
    await blobs.init();
    const secret = process.env.OPENBATCH_SECRET || (await store.setting("vault_secret", () => randomBytes(32).toString("hex")));
    return { kind: "postgres", store, blobs, vault: await KeyVault.open(location.dataDir, secret), budgets: store.budgets };
  }
  const blobs = opts.blobs ?? new BlobStore(join(location.dataDir, "files"));
  await blobs.init();
  const store = new SqliteStore(join(location.dataDir, "openbatch.db"));
  return { kind: "sqlite", store, blobs, vault: await KeyVault.open(location.dataDir), budgets: null };
}

/**
 * The collections' store: with a `postgres://` `databaseUrl`, their tables in that database (shared by every API server
 * of it; store/postgres/collection-store.ts, created or migrated now); else in `<dataDir>/openbatch.db` (a second
 * SQLite connection), or in memory without a data dir.
 * @throws Error when PostgreSQL cannot be reached or migrated.
 */
export async function openCollectionStore(dataDir: string | null | undefined, databaseUrl?: string | null): Promise<CollectionStore> {
  if (databaseUrl) return PgCollectionStore.open(databaseUrl);
  return new SqliteCollectionStore(dataDir ? join(dataDir, "openbatch.db") : ":memory:");
}
