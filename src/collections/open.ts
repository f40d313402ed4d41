import { join } from "node:path";
import { openCollectionStore } from "../store/open.js";
import type { CollectionAccess } from "./access.js";
import { CollectionService, type CollectionLog, type Embedder } from "./collection-service.js";

/**
 * Opens the collections of a data dir: their tables in the engine's SQLite file (`<dataDir>/openbatch.db`, through a
 * second connection), or in PostgreSQL with `databaseUrl`, and the saved vector indexes in `<dataDir>/vector-index/`. Without a data dir they live in
 * memory only. `access`: admins and grants when API keys are on (absent: each key reaches only the classes it created).
 */
export async function openCollections(opts: {
  embedder: Embedder;
  dataDir?: string | null;
  /** A `postgres://` URL: the collections live in that database, shared with every API server of it. */
  databaseUrl?: string | null;
  autoSchema?: boolean;
  access?: CollectionAccess;
  log?: CollectionLog;
}): Promise<CollectionService> {
  // store/open.ts picks the store; the service sees only the CollectionStore interface.
  const store = await openCollectionStore(opts.dataDir, opts.databaseUrl);
  return CollectionService.open({
    store,
    embedder: opts.embedder,
    indexDir: opts.dataDir ? join(opts.dataDir, "vector-index") : null,
    autoSchema: opts.autoSchema,
    access: opts.access,
    log: opts.log,
  });
}
