import type { Caller } from "./access.js";
import { type ClassState, type CollectionContext, isObject, notPresent } from "./collection-context.js";
import type { ReferenceResult } from "./collection-types.js";
import { CollectionError, unprocessable } from "./errors.js";
import { parseSourceBeacon } from "./references.js";
import { normalizeClassName, type ClassDef } from "./schema.js";
import { isMultiTenant, isPartitionKey, resolveTarget, tenantDef, tenantsOf, type TenantDef } from "./tenants.js";

/*
 * Shard status (`GET /v1/schema/{class}/shards`, `PUT /v1/schema/{class}/shards/{shard}`). OpenBatch keeps each class
 * in one shard, `shard0`; a multi-tenant class has one shard per tenant, named as the tenant (as Weaviate). A shard is
 * READY or READONLY. READONLY is durable: it is kept in the class's stored definition (`shardStatus`, left out of the
 * class JSON), so it survives a restart and reaches every API server on a shared store; writes to a READONLY shard
 * (objects, references, deletes) fail with Weaviate's `store is read-only`, reads go on.
 */

/** The one shard of a class without multi-tenancy. */
export const SHARD = "shard0";

/** A shard as Weaviate lists it. */
export interface ShardView {
  name: string;
  status: "READY" | "READONLY";
  vectorQueueSize: number;
}

/** The shard a class state is: its tenant's for a partition, else SHARD. */
const shardOf = (def: ClassDef) => (isPartitionKey(def.class) ? (def as TenantDef).tenant : SHARD);

/** Whether the shard of a class state (a class, or a tenant's partition) is READONLY. */
export function isReadOnly(def: ClassDef): boolean {
  return def.shardStatus?.[shardOf(def)] === "READONLY";
}

/** Weaviate's message for a write to a READONLY shard, with the shard and class. */
const readOnlyMessage = (def: ClassDef) => `shard ${shardOf(def)} of class ${isPartitionKey(def.class) ? (def as TenantDef).tenantOf : def.class}: store is read-only`;

/** @throws CollectionError 422 `… store is read-only` when the shard of `st` is READONLY. */
export function assertWritable(st: ClassState): void {
  if (isReadOnly(st.def)) throw unprocessable(readOnlyMessage(st.def));
}

/**
 * Checks a write to `(cls, tenant)` before the operation runs: refused when its shard is READONLY. Other problems
 * (no class, bad tenant) are left to the operation, which words them.
 * @throws CollectionError 422 `… store is read-only`.
 */
export function assertTargetWritable(ctx: CollectionContext, cls: string, tenant: string | undefined): void {
  let key: string;
  try {
    key = resolveTarget(ctx, cls, tenant);
  } catch {
    return;
  }
  const st = ctx.classes.get(normalizeClassName(key));
  if (st) assertWritable(st);
}

/**
 * Runs a batch of references with those from a READONLY shard failed alone (`store is read-only`), in input order.
 * @param run the batch operation for the others (called with the input as is when nothing is refused).
 */
export async function withWritableReferences(ctx: CollectionContext, input: unknown[], run: (refs: unknown[]) => Promise<ReferenceResult[]>): Promise<ReferenceResult[]> {
  const refused = new Map<number, ReferenceResult>();
  input.forEach((raw, i) => {
    const ref = isObject(raw) ? raw : {};
    const source = parseSourceBeacon(ref.from);
    if ("error" in source) return;
    try {
      assertTargetWritable(ctx, source.class, typeof ref.tenant === "string" && ref.tenant ? ref.tenant : undefined);
    } catch (err) {
      refused.set(i, { from: ref.from, to: ref.to, error: (err as Error).message });
    }
  });
  if (refused.size === 0) return run(input);
  const rest = input.filter((_, i) => !refused.has(i));
  const done = rest.length ? await run(rest) : [];
  let k = 0;
  return input.map((_, i) => refused.get(i) ?? done[k++]!);
}

/** The class `cls` for a shard route. @throws CollectionError 404 when absent, 403 without `action`. */
function requireClass(ctx: CollectionContext, caller: Caller, cls: string, action: "read" | "manage"): ClassState {
  const name = normalizeClassName(cls);
  const st = isPartitionKey(name) ? undefined : ctx.classes.get(name);
  if (!st) throw new CollectionError(404, notPresent(name));
  ctx.authorize(caller, st, action);
  return st;
}

const view = (st: ClassState): ShardView => ({ name: shardOf(st.def), status: isReadOnly(st.def) ? "READONLY" : "READY", vectorQueueSize: 0 });

/**
 * `GET /v1/schema/{class}/shards[?tenant=]` (action `read`): the class's shard, or one per active tenant of a
 * multi-tenant class (an inactive tenant's shard is not loaded, so it is not listed; `?tenant=` names one).
 * @throws CollectionError 404 (no class), 422 (a tenant on a class without multi-tenancy, unknown or inactive tenant), 403.
 */
export function listShards(ctx: CollectionContext, caller: Caller, cls: string, tenant: string | undefined): ShardView[] {
  const st = requireClass(ctx, caller, cls, "read");
  if (!isMultiTenant(st.def)) {
    if (tenant) throw unprocessable(`class ${st.def.class} has multi-tenancy disabled, but request was with tenant`);
    return [view(st)];
  }
  if (tenant) return [view(ctx.classes.get(resolveTarget(ctx, st.def.class, tenant))!)];
  return [...tenantsOf(ctx, st.def.class).values()].filter((p) => (p.def as TenantDef).activityStatus === "ACTIVE").map(view);
}

/**
 * `PUT /v1/schema/{class}/shards/{shard}` with `{status}` (action `manage`): READY or READONLY, stored with the class.
 * @returns the status set. @throws CollectionError 404 (no class or shard), 422 (bad status, inactive tenant), 403.
 */
export async function updateShard(ctx: CollectionContext, caller: Caller, cls: string, shard: string, body: unknown): Promise<{ status: ShardView["status"] }> {
  const raw = isObject(body) ? body.status : undefined;
  if (typeof raw !== "string" || !raw) throw unprocessable("give the shard status: {\"status\": \"READY\"} or {\"status\": \"READONLY\"}");
  const status = raw.toUpperCase();
  if (status === "INDEXING" || status === "LOADING" || status === "SHUTDOWN") throw unprocessable(`shard status ${status} cannot be set in OpenBatch: give READY or READONLY`);
  if (status !== "READY" && status !== "READONLY") throw unprocessable("invalid storage status");
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const st = requireClass(ctx, caller, cls, "manage");
      const parts = tenantsOf(ctx, st.def.class);
      const target = isMultiTenant(st.def) ? parts.get(shard) : shard === SHARD ? st : undefined;
      if (!target) throw new CollectionError(404, `shard ${shard} does not exist locally`);
      if (isMultiTenant(st.def) && (target.def as TenantDef).activityStatus !== "ACTIVE") throw unprocessable(`tenant not active: ${JSON.stringify(shard)}`);
      // Entries of tenants deleted since are dropped here, so a tenant created again under the name starts READY.
      const kept = Object.entries(st.def.shardStatus ?? {}).filter(([name]) => name !== shard && (name === SHARD ? !isMultiTenant(st.def) : parts.has(name)));
      const shardStatus = Object.fromEntries(status === "READONLY" ? [...kept, [shard, "READONLY"]] : kept) as Record<string, "READONLY">;
      const def: ClassDef = { ...st.def };
      if (Object.keys(shardStatus).length) def.shardStatus = shardStatus;
      else delete def.shardStatus;
      await ctx.options.store.putClass(def.class, def, st.owner);
      st.def = def;
      for (const p of parts.values()) p.def = tenantDef(def, (p.def as TenantDef).tenant, (p.def as TenantDef).activityStatus);
      return { status: status as ShardView["status"] };
    }),
  );
}
