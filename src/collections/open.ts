import { join } from "node:path";
import { SqliteCollectionStore } from "../store/sqlite/collection-store.js";
import type { CollectionAccess } from "./access.js";
import { CollectionService, type CollectionLog, type Embedder } from "./collection-service.js";

/**
 * Opens the collections of a data dir: their tables in the engine's SQLite file (`<dataDir>/openbatch.db`, through a
 * second connection) and the saved vector indexes in `<dataDir>/vector-index/`. Without a data dir they live in
 * memory only. `access`: admins and grants when API keys are on (absent: each key reaches only the classes it created).
 */
export function openCollections(opts: { embedder: Embedder; dataDir?: string | null; autoSchema?: boolean; access?: CollectionAccess; log?: CollectionLog }): Promise<CollectionService> {
  const store = new SqliteCollectionStore(opts.dataDir ? join(opts.dataDir, "openbatch.db") : ":memory:");
  return CollectionService.open({
    store,
    embedder: opts.embedder,
    indexDir: opts.dataDir ? join(opts.dataDir, "vector-index") : null,
    autoSchema: opts.autoSchema,
    access: opts.access,
    log: opts.log,
  });
}
