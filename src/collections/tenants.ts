import type { StoredClass } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type ClassState, type CollectionContext, isObject, notPresent } from "./collection-context.js";
import { CollectionError, unprocessable } from "./errors.js";
import { normalizeClassName, type ClassDef } from "./schema.js";

/*
 * Multi-tenancy (`multiTenancyConfig.enabled`). Each tenant of a class is a partition: its objects are stored under the
 * store class key `<Class>@<tenant>` (a name no class or tenant can hold: neither allows `@`), with a class row of its
 * own in the store, so it has its own objects, counts, versions and vector indexes, and no other tenant (nor a
 * tenant-less request) can see them. The store needs no method of its own for this. In memory a partition is a
 * ClassState in `ctx.classes` under its key, whose `def` is the parent's definition with `class` set to the key and the
 * tenant's name and status added (TenantDef); listings leave partitions out. Routes resolve `(class, tenant)` to the
 * key (resolveTarget) before the object, batch and search operations run, and render the parent's name back.
 */

/** Separator of a partition key: `Article@tenantA`. */
const SEP = "@";

/** Activity status as stored and rendered: what Weaviate ≥ 1.26 answers (the client maps HOT/COLD to these). */
export type TenantStatus = "ACTIVE" | "INACTIVE";

/** A partition's definition: its parent's, with `class` the partition key, and the tenant's name and status. */
export type TenantDef = ClassDef & { tenantOf: string; tenant: string; activityStatus: TenantStatus };

/** A tenant as the REST API renders it. */
export interface TenantView {
  name: string;
  activityStatus: TenantStatus;
}

/** The store class key of a tenant's partition. */
export const partitionKey = (cls: string, tenant: string) => `${cls}${SEP}${tenant}`;
/** Whether a store class name is a tenant partition's. */
export const isPartitionKey = (name: string) => name.includes(SEP);
/** The class a store class name belongs to (itself for a class). */
export const parentClass = (name: string) => (isPartitionKey(name) ? name.slice(0, name.indexOf(SEP)) : name);
/** Whether a class has multi-tenancy enabled. */
export const isMultiTenant = (def: ClassDef) => def.multiTenancyConfig?.enabled === true;

const TENANT_NAME = /^[A-Za-z0-9\-_]{1,64}$/;

/**
 * A status as the clients send it: ACTIVE/HOT or INACTIVE/COLD (absent: ACTIVE).
 * @throws CollectionError 422 for OFFLOADED/FROZEN (needs cloud storage OpenBatch does not have) and unknown values.
 */
export function parseStatus(raw: unknown, tenant: string): TenantStatus {
  if (raw === undefined || raw === null || raw === "" || raw === "HOT" || raw === "ACTIVE") return "ACTIVE";
  if (raw === "COLD" || raw === "INACTIVE") return "INACTIVE";
  if (raw === "OFFLOADED" || raw === "FROZEN") throw unprocessable(`tenant ${tenant}: activity status ${String(raw)} (offloading to cloud storage) is not supported by OpenBatch`);
  throw unprocessable(`tenant ${tenant}: invalid activity status ${JSON.stringify(raw)}: give one of ACTIVE, INACTIVE, HOT, COLD`);
}

/** The tenants of a class, by name, in creation order. */
export function tenantsOf(ctx: CollectionContext, cls: string): Map<string, ClassState> {
  const out = new Map<string, ClassState>();
  const prefix = cls + SEP;
  for (const [key, st] of ctx.classes) if (key.startsWith(prefix)) out.set(key.slice(prefix.length), st);
  return out;
}

export const tenantDef = (parent: ClassDef, tenant: string, status: TenantStatus): TenantDef => ({ ...parent, class: partitionKey(parent.class, tenant), tenantOf: parent.class, tenant, activityStatus: status });
const viewOf = (st: ClassState): TenantView => ({ name: (st.def as TenantDef).tenant, activityStatus: (st.def as TenantDef).activityStatus });

/**
 * The multi-tenant class `cls` that `caller` may do `action` on.
 * @throws CollectionError 422 when absent or not multi-tenant (Weaviate's words), 403 when not allowed.
 */
function requireMultiTenant(ctx: CollectionContext, caller: Caller, cls: string, action: "read" | "manage"): ClassState {
  const name = normalizeClassName(cls);
  if (isPartitionKey(name)) throw unprocessable(notPresent(name));
  const st = ctx.requireClass(name, caller, action);
  if (!isMultiTenant(st.def)) throw unprocessable(`multi-tenancy is not enabled for class "${st.def.class}"`);
  return st;
}

/**
 * The store class name a request on `(cls, tenant)` works on: the tenant's partition on a multi-tenant class, `cls`
 * itself on another. `cls` is returned unchanged when it is not a class (the operation answers its own "not present").
 * @throws CollectionError 422, in Weaviate's words, for a tenant on a class without multi-tenancy, no tenant on one
 * with it, an unknown tenant, or an inactive one (`needActive`, every object and search operation).
 */
export function resolveTarget(ctx: CollectionContext, cls: string, tenant: string | null | undefined): string {
  const name = normalizeClassName(cls);
  if (isPartitionKey(name)) throw unprocessable(notPresent(name));
  const st = ctx.classes.get(name);
  if (!st) return cls;
  const given = typeof tenant === "string" && tenant !== "";
  if (!isMultiTenant(st.def)) {
    if (given) throw unprocessable(`class ${name} has multi-tenancy disabled, but request was with tenant`);
    return cls;
  }
  if (!given) throw unprocessable(`class ${name} has multi-tenancy enabled, but request was without tenant`);
  const part = ctx.classes.get(partitionKey(name, tenant));
  if (!part) throw unprocessable(`tenant not found: ${JSON.stringify(tenant)}`);
  if ((part.def as TenantDef).activityStatus !== "ACTIVE") throw unprocessable(`tenant not active: ${JSON.stringify(tenant)}`);
  return part.def.class;
}

/** Opens a partition: its indexes at the store `version`, its object `count`. */
async function openPartition(ctx: CollectionContext, parent: ClassState, tenant: string, status: TenantStatus, version: number, count: number): Promise<ClassState> {
  const def = tenantDef(parent.def, tenant, status);
  const { index, named } = await ctx.openIndexes(def, version);
  const st: ClassState = { def, owner: parent.owner, index, named, count, lastWrite: 0, lastSave: Date.now() };
  ctx.classes.set(def.class, st);
  return st;
}

/** At start: opens the partitions stored (rows whose name is a partition key), after their classes. Rows of a missing class are skipped. */
export async function openPartitions(ctx: CollectionContext, rows: StoredClass[], counts: Map<string, number>): Promise<void> {
  for (const row of rows) {
    const parent = ctx.classes.get(parentClass(row.name));
    const d = row.definition as Partial<TenantDef>;
    if (!parent || typeof d.tenant !== "string") continue;
    await openPartition(ctx, parent, d.tenant, d.activityStatus === "INACTIVE" ? "INACTIVE" : "ACTIVE", row.version, counts.get(row.name) ?? 0);
  }
}

/** The record of a partition in the store: the tenant's name and status (its schema is its parent's). */
const partitionRow = (st: ClassState) => ({ tenantOf: (st.def as TenantDef).tenantOf, tenant: (st.def as TenantDef).tenant, activityStatus: (st.def as TenantDef).activityStatus });

/** `GET /v1/schema/{class}/tenants` (action `read`). @throws CollectionError 422 (no class, not multi-tenant), 403. */
export function listTenants(ctx: CollectionContext, caller: Caller, cls: string): TenantView[] {
  const st = requireMultiTenant(ctx, caller, cls, "read");
  return [...tenantsOf(ctx, st.def.class).values()].map(viewOf);
}

/** `GET /v1/schema/{class}/tenants/{name}`. @returns null when the tenant does not exist. @throws as listTenants. */
export function getTenant(ctx: CollectionContext, caller: Caller, cls: string, name: string): TenantView | null {
  const st = requireMultiTenant(ctx, caller, cls, "read");
  const part = ctx.classes.get(partitionKey(st.def.class, name));
  return part ? viewOf(part) : null;
}

/** The tenants of a request body: a list of `{name, activityStatus?}`. @throws CollectionError 422 naming what is wrong. */
function parseTenantList(body: unknown): { name: string; status: unknown }[] {
  if (!Array.isArray(body) || body.length === 0) throw unprocessable("give the tenants as a non-empty list: [{\"name\": \"tenantA\"}]");
  return body.map((t, i) => {
    if (!isObject(t) || typeof t.name !== "string") throw unprocessable(`tenants[${i}]: a tenant is an object with a name: {"name": "tenantA", "activityStatus": "ACTIVE"}`);
    for (const k of Object.keys(t)) if (k !== "name" && k !== "activityStatus") throw unprocessable(`tenants[${i}]: field '${k}' is not supported by OpenBatch`);
    if (!TENANT_NAME.test(t.name)) throw unprocessable(`tenant name should only contain alphanumeric characters (a-z, A-Z, 0-9), underscore (_), and hyphen (-), with a length between 1 and 64 characters: ${JSON.stringify(t.name)}`);
    return { name: t.name, status: t.activityStatus };
  });
}

/**
 * `POST /v1/schema/{class}/tenants` (action `manage`): creates the tenants not there yet (existing ones are left as they
 * are, as Weaviate does). @returns the tenants as given. @throws CollectionError 422 for a bad list or status, 403.
 */
export async function createTenants(ctx: CollectionContext, caller: Caller, cls: string, body: unknown): Promise<TenantView[]> {
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const st = requireMultiTenant(ctx, caller, cls, "manage");
      const list = parseTenantList(body).map((t) => ({ name: t.name, status: parseStatus(t.status, t.name) }));
      for (const t of list) {
        if (ctx.classes.has(partitionKey(st.def.class, t.name))) continue;
        const part = await openPartition(ctx, st, t.name, t.status, 0, 0);
        await ctx.options.store.putClass(part.def.class, partitionRow(part), st.owner);
      }
      return list.map((t) => ({ name: t.name, activityStatus: t.status }));
    }),
  );
}

/**
 * `PUT /v1/schema/{class}/tenants` (action `manage`): sets the activity status of existing tenants.
 * @returns the tenants as updated. @throws CollectionError 422 for a bad list or status or an unknown tenant, 403.
 */
export async function updateTenants(ctx: CollectionContext, caller: Caller, cls: string, body: unknown): Promise<TenantView[]> {
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const st = requireMultiTenant(ctx, caller, cls, "manage");
      const list = parseTenantList(body).map((t) => ({ name: t.name, status: parseStatus(t.status, t.name) }));
      for (const t of list) if (!ctx.classes.has(partitionKey(st.def.class, t.name))) throw unprocessable(`tenant not found: ${JSON.stringify(t.name)}`);
      for (const t of list) {
        const part = ctx.classes.get(partitionKey(st.def.class, t.name))!;
        part.def = { ...part.def, activityStatus: t.status } as TenantDef;
        await ctx.options.store.putClass(part.def.class, partitionRow(part), st.owner);
      }
      return list.map((t) => ({ name: t.name, activityStatus: t.status }));
    }),
  );
}

/**
 * `DELETE /v1/schema/{class}/tenants` (action `manage`): deletes tenants (a list of names) with their objects and
 * indexes; unknown names are skipped, as Weaviate does. @throws CollectionError 422 for a bad list, 403.
 */
export async function deleteTenants(ctx: CollectionContext, caller: Caller, cls: string, body: unknown): Promise<void> {
  if (!Array.isArray(body) || !body.every((n) => typeof n === "string")) throw unprocessable("give the tenants to delete as a list of names: [\"tenantA\"]");
  await ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const st = requireMultiTenant(ctx, caller, cls, "manage");
      for (const name of body as string[]) await dropPartition(ctx, partitionKey(st.def.class, name));
    }),
  );
}

/** Deletes a partition's objects, row and indexes. Call inside both locks. */
async function dropPartition(ctx: CollectionContext, key: string): Promise<void> {
  const part = ctx.classes.get(key);
  if (!part) return;
  await ctx.options.store.deleteClass(key);
  ctx.classes.delete(key);
  for (const index of ctx.indexesOf(part)) await index.drop();
}

/** When a class is deleted: deletes its partitions too. Takes both locks. */
export async function dropPartitionsOf(ctx: CollectionContext, cls: string): Promise<void> {
  await ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      for (const part of tenantsOf(ctx, normalizeClassName(cls)).values()) await dropPartition(ctx, part.def.class);
    }),
  );
}

/**
 * Keeps the schema of a multi-tenant class and its partitions one: properties auto-schema added through a partition
 * go to the class (and are persisted), then every partition takes the class's definition. Call after a schema change
 * or a batch on a multi-tenant class. Takes the schema lock.
 */
export async function syncPartitions(ctx: CollectionContext, cls: string): Promise<void> {
  await ctx.schemaLock.run(async () => {
    const parent = ctx.classes.get(cls);
    if (!parent || !isMultiTenant(parent.def)) return;
    const parts = [...tenantsOf(ctx, cls).values()];
    const known = new Set(parent.def.properties.map((p) => p.name));
    const added = parts.flatMap((p) => p.def.properties).filter((p) => !known.has(p.name) && (known.add(p.name), true));
    if (added.length) {
      parent.def = { ...parent.def, properties: [...parent.def.properties, ...added] };
      await ctx.options.store.putClass(parent.def.class, parent.def, parent.owner);
    }
    for (const p of parts) {
      const d = p.def as TenantDef;
      p.def = tenantDef(parent.def, d.tenant, d.activityStatus);
      // Auto-schema may have written the partition's row with the whole definition: rewrite it as a partition row.
      if (added.length) await ctx.options.store.putClass(p.def.class, partitionRow(p), parent.owner);
    }
  });
}

/** @throws CollectionError 404 — used by routes answering "no such tenant" without a body. */
export const tenantNotFound = (name: string) => new CollectionError(404, `tenant not found: ${JSON.stringify(name)}`);
