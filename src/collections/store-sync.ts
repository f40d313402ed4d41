import type { ClassVersion, CollectionChangeFeed, StoredClass } from "../store/collection-store.js";
import type { VectorEntry } from "./vector-index.js";
import type { ClassDef } from "./schema.js";
import { vectorSlots } from "./schema.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import { DEFAULT_VECTOR } from "./vector-config.js";
import { invertedIndexDropped, invertedIndexRemoved, invertedIndexWritten } from "./inverted-index.js";
import { isPartitionKey, parentClass, tenantDef, type TenantDef } from "./tenants.js";

/*
 * Keeping one API server's in-memory state current with a store other API servers write too (PostgreSQL).
 *
 * Each server holds the class definitions and one vector index per vector slot in memory (HNSW in the index worker).
 * The store stamps every write with a version from one database-wide sequence, taken under the class row's lock, so
 * within a class versions grow in commit order. Per class a server remembers the version its indexes reflect every
 * other server's writes up to (`ctx.synced`). Catching up:
 *   1. read every class's version (one query); nothing newer → done, no lock taken;
 *   2. a class whose version moved only by this server's own writes (the store remembers them) → just advance;
 *   3. otherwise, under the schema and write locks (so no local write is half applied): classes gone → dropped from
 *      memory; classes new or created again → indexes built from the stored vectors; definitions changed → replaced;
 *      objects written by others since the version → re-indexed (remove, then add, so sizes stay right); objects others
 *      deleted (tombstones) → removed; then the version advances to the one read in step 1.
 * A reader whose version is older than the tombstones kept (`pruned_version`) rebuilds the class's indexes instead.
 * It runs before every Weaviate request (REST and gRPC) and every second in the background.
 */

/** Objects fetched per catch-up page. */
const PAGE = 1000;

/** Class versions that need work (not in memory, gone, created again, or moved by another server's writes). */
async function pending(ctx: CollectionContext, feed: CollectionChangeFeed, versions: ClassVersion[]): Promise<boolean> {
  const names = new Set(versions.map((v) => v.name));
  for (const name of ctx.classes.keys()) if (!names.has(name)) return true;
  let work = false;
  for (const v of versions) {
    const st = ctx.classes.get(v.name);
    const sy = st && ctx.synced.get(st);
    if (!st || !sy || sy.createdAt !== v.created_at) return true;
    if (v.version <= sy.version) continue;
    if (v.def_version > sy.version && !feed.isOwn(v.name, v.def_version)) return true;
    if (v.pruned_version > sy.version || (await feed.hasChangesSince(v.name, sy.version))) work = true;
    // Moved by this server's own writes only: its indexes already hold them.
    else advance(ctx, feed, st, v.version);
  }
  return work;
}

function advance(ctx: CollectionContext, feed: CollectionChangeFeed, st: ClassState, version: number): void {
  const sy = ctx.synced.get(st);
  if (sy && version > sy.version) sy.version = version;
  feed.forgetOwn(st.def.class, version);
}

/**
 * Brings `ctx` up to date with what other processes wrote to a shared store; a no-op on a store without a change feed
 * (SQLite). Takes the schema and write locks only when there is work.
 * @param complete completes a stored definition with Weaviate's defaults (as the service does at open).
 * @throws Error when the store cannot be read.
 */
export async function syncWithStore(ctx: CollectionContext, complete: (def: ClassDef) => ClassDef): Promise<void> {
  const feed = ctx.options.store.changes;
  if (!feed) return;
  const resolve: ResolveClass = (row) => {
    if (!isPartitionKey(row.name)) return { def: complete(row.definition as ClassDef), owner: row.owner };
    // A tenant's partition: its parent's schema with the tenant's name and status (tenants.ts).
    const parent = ctx.classes.get(parentClass(row.name));
    const d = row.definition as Partial<TenantDef>;
    if (!parent || typeof d.tenant !== "string") return null;
    return { def: tenantDef(parent.def, d.tenant, d.activityStatus === "INACTIVE" ? "INACTIVE" : "ACTIVE"), owner: parent.owner };
  };
  if (!(await pending(ctx, feed, await feed.classVersions()))) return;
  await ctx.schemaLock.run(() => ctx.writeLock.run(() => catchUp(ctx, feed, resolve)));
}

/**
 * The in-memory definition and owner of a stored class row (a class completed with Weaviate's defaults, or a tenant's
 * partition from its parent in `ctx.classes`); null when it cannot be opened yet (a partition of a missing class).
 */
export type ResolveClass = (row: StoredClass) => { def: ClassDef; owner: string | null } | null;

async function catchUp(ctx: CollectionContext, feed: CollectionChangeFeed, resolve: ResolveClass): Promise<void> {
  const store = ctx.options.store;
  // Read again under the locks: what step 1 saw may have been done by a catch-up that ran meanwhile.
  // Classes before tenants' partitions (their definitions come from their parents).
  const versions = (await feed.classVersions()).sort((a, b) => Number(isPartitionKey(a.name)) - Number(isPartitionKey(b.name)));
  const byName = new Map(versions.map((v) => [v.name, v]));
  let stored: Map<string, StoredClass> | null = null;
  const definitions = async () => (stored ??= new Map((await store.listClasses()).map((c) => [c.name, c])));
  let counts: Map<string, number> | null = null;
  const countOf = async (name: string) => (counts ??= await store.countObjects()).get(name) ?? 0;

  for (const [name, st] of [...ctx.classes]) {
    const v = byName.get(name);
    const sy = ctx.synced.get(st);
    if (v && (!sy || sy.createdAt === v.created_at)) continue;
    // Deleted (or deleted and created again) by another server: this server's indexes of it are void.
    ctx.classes.delete(name);
    for (const index of ctx.indexesOf(st)) await index.drop();
  }

  for (const v of versions) {
    let st = ctx.classes.get(v.name);
    const row = (await definitions()).get(v.name);
    const resolved = row && resolve(row);
    if (!resolved) continue; // deleted since the versions were read, or a partition of a class not open
    if (!st) {
      // Created by another server (or created again): built from the stored vectors.
      const full = resolved.def;
      const { index, named } = await ctx.openIndexes(full, v.version);
      st = { def: full, owner: resolved.owner, index, named, count: await countOf(v.name), lastWrite: 0, lastSave: Date.now() };
      ctx.classes.set(v.name, st);
      ctx.persistedProps.set(st, full.properties.length);
      ctx.synced.set(st, { version: v.version, createdAt: v.created_at });
      continue;
    }
    let sy = ctx.synced.get(st);
    // A class this server created: every version of it not its own is another server's.
    if (!sy) ctx.synced.set(st, (sy = { version: 0, createdAt: v.created_at }));
    if (v.version <= sy.version) continue;

    const next = resolved.def;
    // What the indexes are built with; any other change to the definition leaves them valid.
    const slotsOf = (d: ClassDef) => JSON.stringify(vectorSlots(d).map((x) => [x.name, x.indexType, x.indexConfig.distance, x.indexConfig.maxConnections, x.indexConfig.efConstruction]));
    const rebuild = v.pruned_version > sy.version || slotsOf(next) !== slotsOf(st.def);
    if (JSON.stringify(next) !== JSON.stringify(st.def)) {
      st.def = next;
      ctx.persistedProps.set(st, next.properties.length);
      // A PUT /v1/schema/{class} on another server may have changed ef: the open indexes search with the new one.
      ctx.configureIndexes(st);
      // Its tenants' partitions share its schema.
      if (!isPartitionKey(v.name)) {
        for (const [key, p] of ctx.classes) {
          if (!isPartitionKey(key) || parentClass(key) !== v.name) continue;
          const d = p.def as TenantDef;
          p.def = tenantDef(next, d.tenant, d.activityStatus);
          ctx.configureIndexes(p);
        }
      }
    }
    if (rebuild) {
      for (const index of ctx.indexesOf(st)) await index.close();
      const { index, named } = await ctx.openIndexes(st.def, v.version);
      st.index = index;
      st.named = named;
      invertedIndexDropped(st);
      st.count = await countOf(v.name);
    } else if (await applyChanges(ctx, feed, st, sy.version)) {
      st.count = await countOf(v.name);
    }
    st.lastWrite = Date.now();
    advance(ctx, feed, st, v.version);
  }
}

/** Re-indexes what other servers wrote to a class since `since`, and drops what they deleted. @returns whether anything changed. */
async function applyChanges(ctx: CollectionContext, feed: CollectionChangeFeed, st: ClassState, since: number): Promise<boolean> {
  let changed = false;
  let cursor: { version: number; seq: number } | null = null;
  let removed: number[] = [];
  for (let first = true; ; first = false) {
    const page = await feed.changesSince(st.def.class, since, cursor, PAGE);
    if (first) removed = page.removed;
    if (page.upserted.length) {
      changed = true;
      const labels = page.upserted.map((o) => o.seq);
      invertedIndexWritten(st, page.upserted);
      // Removed first, then added as new: the index may or may not hold a label, and its size must stay right.
      for (const index of ctx.indexesOf(st)) await index.remove(labels);
      const entries = (name: string): VectorEntry[] =>
        page.upserted.flatMap((o) => {
          const vector = name === DEFAULT_VECTOR ? o.vector : (o.vectors?.[name] ?? null);
          return vector ? [{ label: o.seq, vector, isNew: true }] : [];
        });
      await st.index.upsert(entries(DEFAULT_VECTOR));
      for (const [name, index] of st.named) await index.upsert(entries(name));
    }
    if (!page.more) break;
    cursor = page.cursor;
  }
  if (removed.length) {
    changed = true;
    for (const index of ctx.indexesOf(st)) await index.remove(removed);
    invertedIndexRemoved(st, { seqs: removed });
  }
  return changed;
}
