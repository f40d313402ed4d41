import { mkdir } from "node:fs/promises";
import { CollectionError } from "./errors.js";
import type { Caller } from "./access.js";
import { batchObjects } from "./batch-import.js";
import { CollectionContext } from "./collection-context.js";
import type { CollectionServiceOptions, DeleteQuery, DeleteResult, ObjectResult, ObjectView, ReferenceResult, SearchQuery, SearchResult } from "./collection-types.js";
import { deleteObject, deleteObjects, getObject, listAllObjects, listObjects, validateObject, type ListPaging } from "./object-ops.js";
import { extendNestedSchema } from "./nested-auto-schema.js";
import { assertTargetWritable, listShards, updateShard, withWritableReferences, type ShardView } from "./shards.js";
import { batchReferences, objectReferences } from "./reference-ops.js";
import { addProperty, createClass, deleteClass, getClass, listClasses, updateClass } from "./schema-ops.js";
import type { ClassDef, PropertyDef } from "./schema.js";
import { completeIndexConfig } from "./vector-config.js";
import { count, search } from "./search.js";
import { resolveReferences, type ReferenceRequest, type ReferencedObject } from "./reference-query.js";
import { syncWithStore } from "./store-sync.js";
import { createTenants, deleteTenants, dropPartitionsOf, getTenant, isMultiTenant, isPartitionKey, listTenants, openPartitions, parentClass, resolveTarget, syncPartitions, updateTenants, type TenantView } from "./tenants.js";
import type { StoredClass } from "../store/collection-store.js";
import { aggregate, type AggregateQuery, type AggregateRow } from "./aggregate.js";

export * from "./collection-types.js";
export type { AggregateField, AggregateQuery, AggregateRow } from "./aggregate.js";
export type { ReferenceRequest, ReferencedObject } from "./reference-query.js";

/**
 * A class as stored before OpenBatch rendered every block Weaviate returns, completed with Weaviate's defaults
 * (stored values kept), so `config.get()` of the clients reads it.
 */
function completeClass(def: ClassDef): ClassDef {
  return {
    ...def,
    vectorIndexConfig: completeIndexConfig(def.vectorIndexType, def.vectorIndexConfig),
    properties: def.properties.map((p) => ({ ...p, indexRangeFilters: p.indexRangeFilters ?? false })),
    invertedIndexConfig: { indexTimestamps: false, indexPropertyLength: false, indexNullState: false, ...def.invertedIndexConfig },
    // Typed as complete, but a class stored earlier holds only `enabled` / `factor`.
    multiTenancyConfig: { ...{ enabled: false, autoTenantCreation: false, autoTenantActivation: false }, ...def.multiTenancyConfig },
    replicationConfig: { ...{ factor: 1, asyncEnabled: false, deletionStrategy: "NoAutomatedResolution" }, ...def.replicationConfig },
  };
}
export type { Caller } from "./access.js";

/**
 * Weaviate-style collections over a CollectionStore: schema, batch import with per-object results (validation,
 * auto-schema, vectorization through the engine, idempotent per uuid), references, batch delete, objects by id,
 * vector and filtered search, and the batch statistics `/v1/nodes` reports.
 *
 * This class is the public facade: the work lives in schema-ops.ts, batch-import.ts, reference-ops.ts, object-ops.ts
 * and search.ts, over the shared state of collection-context.ts (classes, schema lock, write lock).
 *
 * Every operation takes the `caller` (owner fingerprint of its API key, null when auth is off) and is checked against
 * access.ts: the creator of a class owns it, admins and grants reach others, and the rest get Weaviate's 403 (or do not
 * see the class in listings).
 */
export class CollectionService {
  private readonly ctx: CollectionContext;
  private saveTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private syncRunning: Promise<void> | null = null;
  private syncNext: Promise<void> | null = null;
  private closed = false;

  private constructor(options: CollectionServiceOptions) {
    this.ctx = new CollectionContext(options);
  }

  /** Loads every class and its vector index (saved, or rebuilt from the stored vectors). */
  static async open(options: CollectionServiceOptions): Promise<CollectionService> {
    const service = new CollectionService(options);
    const ctx = service.ctx;
    if (options.indexDir) await mkdir(options.indexDir, { recursive: true });
    const counts = await options.store.countObjects();
    const partitions: StoredClass[] = [];
    for (const stored of await options.store.listClasses()) {
      // Tenants' partitions (tenants.ts) open after the classes they belong to.
      if (isPartitionKey(stored.name)) {
        partitions.push(stored);
        continue;
      }
      const def = completeClass(stored.definition as ClassDef);
      const { index, named } = await ctx.openIndexes(def, stored.version);
      ctx.classes.set(def.class, { def, owner: stored.owner, index, named, count: counts.get(def.class) ?? 0, lastWrite: 0, lastSave: Date.now() });
    }
    await openPartitions(ctx, partitions, counts);
    // On a shared store: what each index reflects (store-sync.ts), and a catch-up every second besides the one before
    // each request, so listings of an idle server stay current too.
    if (options.store.changes) {
      const stored = new Map((await options.store.listClasses()).map((c) => [c.name, c]));
      for (const [name, st] of ctx.classes) {
        const row = stored.get(name);
        if (row) ctx.synced.set(st, { version: row.version, createdAt: row.created_at });
      }
      service.syncTimer = setInterval(() => void service.sync().catch((err: Error) => ctx.options.log?.warn({ err }, "catching up with the shared collections failed")), 1_000);
      service.syncTimer.unref();
    }
    service.saveTimer = setInterval(() => void service.saveIdle(), 2_000);
    service.saveTimer.unref();
    return service;
  }

  /**
   * Catches up with what other API servers wrote to a shared store (PostgreSQL): classes created, changed or deleted,
   * objects written or deleted, re-indexed here (store-sync.ts). Resolves at once on the embedded store. It sees every
   * write committed before it was called: one running already may have read the store before, so a caller then waits
   * for the next one, which every caller arriving meanwhile shares.
   * @throws Error when the store cannot be read.
   */
  sync(): Promise<void> {
    if (!this.ctx.options.store.changes || this.closed) return Promise.resolve();
    if (this.syncNext) return this.syncNext;
    const start = (): Promise<void> => {
      this.syncNext = null;
      const run = syncWithStore(this.ctx, completeClass).finally(() => {
        if (this.syncRunning === run) this.syncRunning = null;
      });
      this.syncRunning = run;
      return run;
    };
    if (!this.syncRunning) return start();
    const next = this.syncRunning.catch(() => undefined).then(start);
    this.syncNext = next;
    return next;
  }

  /** Saves indexes idle for a second (or unsaved for 30 s while writes go on). */
  private async saveIdle(): Promise<void> {
    const ctx = this.ctx;
    const now = Date.now();
    for (const [name, st] of ctx.classes) {
      if (!ctx.indexesOf(st).some((i) => i.dirty) || (now - st.lastWrite < 1_000 && now - st.lastSave < 30_000)) continue;
      await ctx.writeLock.run(() => ctx.saveIndex(name, st)).catch((err: Error) => ctx.options.log?.warn({ err, class: name }, "saving the vector index failed"));
    }
  }

  /** Saves every index and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.saveTimer) clearInterval(this.saveTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    await (this.syncNext ?? this.syncRunning)?.catch(() => undefined);
    await this.ctx.writeLock.run(async () => {
      for (const [name, st] of this.ctx.classes) await this.ctx.saveIndex(name, st);
      // The HNSW graphs live in a worker thread shared by every service of the process: free this one's.
      for (const st of this.ctx.classes.values()) for (const index of this.ctx.indexesOf(st)) await index.close();
    });
    await this.ctx.options.store.close();
  }

  // ---------------------------------------------------------------- schema

  /** The class definitions `caller` may see, in creation order. */
  listClasses(caller: Caller): ClassDef[] {
    return listClasses(this.ctx, caller).filter((d) => !isPartitionKey(d.class));
  }

  /**
   * A class definition by name (first letter case-insensitive, as Weaviate). @returns null when absent.
   * @throws CollectionError 403 when `caller` may not read it.
   */
  getClass(caller: Caller, name: string): ClassDef | null {
    if (isPartitionKey(name)) return null;
    return getClass(this.ctx, caller, name);
  }

  /** `POST /v1/schema`: a class owned by `caller`. @throws CollectionError 422 when invalid or when the class exists. */
  createClass(caller: Caller, body: unknown): Promise<ClassDef> {
    return createClass(this.ctx, caller, body);
  }

  /** `POST /v1/schema/{class}/properties`. @throws CollectionError 404/422, 403 without `manage`. */
  async addProperty(caller: Caller, className: string, body: unknown): Promise<PropertyDef> {
    if (isPartitionKey(className)) throw new CollectionError(404, `class '${className}' not present in schema`);
    const prop = await addProperty(this.ctx, caller, className, body);
    await syncPartitions(this.ctx, this.getClass(caller, className)?.class ?? className);
    return prop;
  }

  /** `PUT /v1/schema/{class}` (schema-ops.ts). @returns the class as stored, null when absent. @throws CollectionError 422 (immutable change), 403. */
  updateClass(caller: Caller, name: string, body: unknown): Promise<ClassDef | null> {
    return updateClass(this.ctx, caller, name, body);
  }

  /** `DELETE /v1/schema/{class}`: the class, its objects and its index. @returns whether it existed. @throws CollectionError 403 without `manage`. */
  async deleteClass(caller: Caller, name: string): Promise<boolean> {
    if (isPartitionKey(name)) return false;
    const existed = await deleteClass(this.ctx, caller, name);
    if (existed) await dropPartitionsOf(this.ctx, name);
    return existed;
  }

  // ---------------------------------------------------------------- writes

  /**
   * `POST /v1/batch/objects` (see batch-import.ts); auto-created classes are owned by `caller`, objects of classes it
   * may not write fail one by one. @returns one result per object, in input order. @throws CollectionError 422 for an empty list.
   */
  async batchObjects(caller: Caller, input: unknown[]): Promise<ObjectResult[]> {
    // Objects of a multi-tenant class go to their tenant's partition (tenants.ts); a tenant problem fails the object alone.
    const early = new Map<number, ObjectResult>();
    const tenantOf = new Map<number, string>();
    const pass: unknown[] = [];
    const at: number[] = [];
    input.forEach((raw, i) => {
      const o = raw as Record<string, unknown> | null;
      if (typeof o !== "object" || o === null || Array.isArray(o) || typeof o.class !== "string" || o.class === "") {
        pass.push(raw);
        at.push(i);
        return;
      }
      try {
        const target = resolveTarget(this.ctx, o.class, typeof o.tenant === "string" ? o.tenant : undefined);
        assertTargetWritable(this.ctx, o.class, typeof o.tenant === "string" ? o.tenant : undefined);
        const { tenant, ...rest } = o;
        if (target !== o.class && typeof tenant === "string") tenantOf.set(i, tenant);
        pass.push(target === o.class ? raw : { ...rest, class: target });
        at.push(i);
      } catch (err) {
        early.set(i, { object: { ...o }, error: (err as Error).message });
      }
    });
    if (pass.length) await extendNestedSchema(this.ctx, caller, pass);
    const results = pass.length ? await batchObjects(this.ctx, caller, pass) : [];
    const touched = new Set<string>();
    const out: ObjectResult[] = new Array(input.length);
    for (const [i, r] of early) out[i] = r;
    results.forEach((r, k) => {
      const i = at[k]!;
      const tenant = tenantOf.get(i);
      if (tenant !== undefined && typeof r.object.class === "string") {
        const key = r.object.class;
        const cls = parentClass(key);
        touched.add(cls);
        r.object.class = cls;
        r.object.tenant = tenant;
        if (r.error) r.error = r.error.replaceAll(key, cls);
      }
      out[i] = r;
    });
    for (const cls of touched) await syncPartitions(this.ctx, cls);
    return out;
  }

  /** `POST /v1/batch/references` (see reference-ops.ts). @returns one result per reference. @throws CollectionError 422 for an empty list. */
  batchReferences(caller: Caller, input: unknown[]): Promise<ReferenceResult[]> {
    return withWritableReferences(this.ctx, input, (refs) => batchReferences(this.ctx, caller, refs));
  }

  /**
   * `POST|PUT|DELETE /v1/objects/{class}/{id}/references/{prop}`: add, replace or delete one object's references
   * (see reference-ops.ts). @throws CollectionError 422/404 with Weaviate's message, 403 when not allowed.
   */
  objectReferences(caller: Caller, op: "add" | "replace" | "delete", cls: string, id: string, property: string, beacons: unknown[], tenant?: string): Promise<void> {
    assertTargetWritable(this.ctx, cls, tenant);
    return objectReferences(this.ctx, caller, op, cls, id, property, beacons, tenant);
  }

  // ---------------------------------------------------------------- objects

  /** `GET /v1/objects/{class}/{id}` (or any class when `cls` is null), with its references. @returns null when absent. */
  async getObject(caller: Caller, cls: string | null, id: string, includeVector: boolean, tenant?: string): Promise<ObjectView | null> {
    if (cls === null && tenant) throw new CollectionError(422, "give the class of the object with a tenant: GET /v1/objects/{class}/{id}?tenant=…");
    const o = await getObject(this.ctx, caller, cls === null ? null : resolveTarget(this.ctx, cls, tenant), id, includeVector);
    return o && this.tenantView(o, tenant);
  }

  /** `GET /v1/objects?class=…`: objects of a class in insertion order (or `paging.sort`), after a cursor id or `paging.offset`. */
  async listObjects(caller: Caller, cls: string, limit: number, after: string | undefined, includeVector: boolean, tenant?: string, paging?: ListPaging): Promise<{ objects: ObjectView[]; total: number }> {
    const r = await listObjects(this.ctx, caller, resolveTarget(this.ctx, cls, tenant), limit, after, includeVector, paging);
    return { objects: r.objects.map((o) => this.tenantView(o, tenant)), total: r.total };
  }

  /** `GET /v1/objects` without a class (object-ops.ts): every readable class's objects, from `offset`, at most `limit`. */
  listAllObjects(caller: Caller, limit: number, offset: number, includeVector: boolean): Promise<ObjectView[]> {
    return listAllObjects(this.ctx, caller, limit, offset, includeVector);
  }

  /** `POST /v1/objects/validate` (object-ops.ts). @throws CollectionError 422 `invalid object: …`, 403. */
  validateObject(caller: Caller, body: unknown): void {
    validateObject(this.ctx, caller, body);
  }

  /** `DELETE /v1/objects/{class}/{id}`. @returns whether it existed. */
  deleteObject(caller: Caller, cls: string, id: string, tenant?: string): Promise<boolean> {
    return deleteObject(this.ctx, caller, resolveTarget(this.ctx, cls, tenant), id);
  }

  /** `DELETE /v1/batch/objects` (see object-ops.ts). */
  deleteObjects(caller: Caller, q: DeleteQuery): Promise<DeleteResult> {
    return deleteObjects(this.ctx, caller, { ...q, class: resolveTarget(this.ctx, q.class, q.tenant) });
  }

  // ---------------------------------------------------------------- search

  /** Vector / filtered search or a listing (see search.ts). @throws CollectionError 422 (unknown class, bad filter, bad vector). */
  async search(caller: Caller, q: SearchQuery): Promise<SearchResult[]> {
    const target = resolveTarget(this.ctx, q.class, q.tenant);
    const hits = await search(this.ctx, caller, target === q.class ? q : { ...q, class: target });
    if (target !== q.class) for (const h of hits) h.class = parentClass(h.class);
    return hits;
  }

  /** The objects the references of objects `ids` point to, as `requests` ask (see reference-query.ts). */
  resolveReferences(caller: Caller, cls: string, ids: readonly string[], requests: readonly ReferenceRequest[], tenant?: string): Promise<Map<string, ReferencedObject[][]>> {
    return resolveReferences(this.ctx, caller, resolveTarget(this.ctx, cls, tenant), ids, requests);
  }

  /** Number of objects of a class matching `where` (all without one). */
  count(caller: Caller, cls: string, where?: unknown, tenant?: string): Promise<number> {
    return count(this.ctx, caller, resolveTarget(this.ctx, cls, tenant), where);
  }

  /** Per-property metrics, optionally grouped, over filtered or searched objects (see aggregate.ts). @throws CollectionError 422 / 403. */
  aggregate(caller: Caller, q: AggregateQuery): Promise<AggregateRow[]> {
    return aggregate(this.ctx, caller, { ...q, class: resolveTarget(this.ctx, q.class, q.tenant) }, search);
  }

  // ---------------------------------------------------------------- tenants

  /** An object of a partition as the API shows it: its class's name, and its tenant. */
  private tenantView(o: ObjectView, tenant: string | undefined): ObjectView {
    if (!isPartitionKey(o.class)) return o;
    return { ...o, class: parentClass(o.class), tenant: tenant ?? o.class.slice(o.class.indexOf("@") + 1) };
  }

  /** Whether class `name` has multi-tenancy enabled (false when absent). */
  isMultiTenant(name: string): boolean {
    const st = this.ctx.classes.get(name);
    return st !== undefined && isMultiTenant(st.def);
  }

  /** `GET /v1/schema/{class}/tenants` (see tenants.ts). @throws CollectionError 422 (no class, not multi-tenant), 403. */
  listTenants(caller: Caller, cls: string): TenantView[] {
    return listTenants(this.ctx, caller, cls);
  }

  /** `GET /v1/schema/{class}/tenants/{name}`. @returns null when absent. @throws as listTenants. */
  getTenant(caller: Caller, cls: string, name: string): TenantView | null {
    return getTenant(this.ctx, caller, cls, name);
  }

  /** `POST /v1/schema/{class}/tenants`: creates tenants (existing ones kept). @throws CollectionError 422, 403. */
  createTenants(caller: Caller, cls: string, body: unknown): Promise<TenantView[]> {
    return createTenants(this.ctx, caller, cls, body);
  }

  /** `PUT /v1/schema/{class}/tenants`: sets activity statuses. @throws CollectionError 422 (unknown tenant, bad status), 403. */
  updateTenants(caller: Caller, cls: string, body: unknown): Promise<TenantView[]> {
    return updateTenants(this.ctx, caller, cls, body);
  }

  /** `DELETE /v1/schema/{class}/tenants`: deletes tenants with their objects. @throws CollectionError 422, 403. */
  deleteTenants(caller: Caller, cls: string, body: unknown): Promise<void> {
    return deleteTenants(this.ctx, caller, cls, body);
  }

  /** `GET /v1/schema/{class}/shards` (shards.ts). @throws CollectionError 404, 422, 403. */
  listShards(caller: Caller, cls: string, tenant?: string): ShardView[] {
    return listShards(this.ctx, caller, cls, tenant);
  }

  /** `PUT /v1/schema/{class}/shards/{shard}` with `{status}` (shards.ts). @throws CollectionError 404, 422, 403. */
  updateShard(caller: Caller, cls: string, shard: string, body: unknown): Promise<{ status: ShardView["status"] }> {
    return updateShard(this.ctx, caller, cls, shard, body);
  }

  // ---------------------------------------------------------------- statistics

  /** `/v1/nodes` batchStats: objects accepted but not yet stored and indexed, and objects finished per second lately. */
  batchStats(): { queueLength: number; ratePerSecond: number } {
    return this.ctx.stats.get();
  }

  /** Object counts per class `caller` may see (the "shards" of `/v1/nodes`). */
  shardStats(caller: Caller): { class: string; objectCount: number; vectorCount: number }[] {
    return [...this.ctx.classes.values()]
      .filter((s) => !isPartitionKey(s.def.class)).filter((s) => this.ctx.access.sees(caller, s.def.class, s.owner)).map((s) => ({ class: s.def.class, objectCount: s.count, vectorCount: s.index.size }));
  }
}
