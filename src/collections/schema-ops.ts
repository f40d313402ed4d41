import type { Caller } from "./access.js";
import { planClassUpdate } from "./class-update.js";
import { type CollectionContext, notPresent } from "./collection-context.js";
import { CollectionError, unprocessable } from "./errors.js";
import { normalizeClassName, parseClass, parseProperty, type ClassDef, type PropertyDef } from "./schema.js";
import { isPartitionKey, tenantDef, tenantsOf, type TenantDef } from "./tenants.js";

/*
 * Schema operations (`/v1/schema`): list, get, create a class, add a property, delete a class with its objects and
 * index. The creator of a class owns it; the others see it only as access.ts allows.
 */

/** Whether class `name` exists and `caller` may read it: what a reference property may point at. */
const readable = (ctx: CollectionContext, caller: Caller, name: string) => {
  const st = ctx.classes.get(name);
  return st !== undefined && ctx.allows(caller, st, "read");
};

/** `GET /v1/schema`: the classes `caller` may do anything on (the others are left out, as Weaviate's RBAC does). */
export function listClasses(ctx: CollectionContext, caller: Caller): ClassDef[] {
  return [...ctx.classes.values()].filter((s) => ctx.access.sees(caller, s.def.class, s.owner)).map((s) => s.def);
}

/**
 * `GET /v1/schema/{class}`. @returns null when absent.
 * @throws CollectionError 403 when the caller may not read it.
 */
export function getClass(ctx: CollectionContext, caller: Caller, name: string): ClassDef | null {
  const st = ctx.classes.get(normalizeClassName(name));
  if (!st) return null;
  ctx.authorize(caller, st, "read");
  return st.def;
}

/** `POST /v1/schema`: a class owned by `caller`. @throws CollectionError 422 when invalid or when the class exists. */
export async function createClass(ctx: CollectionContext, caller: Caller, body: unknown): Promise<ClassDef> {
  return ctx.schemaLock.run(async () => {
    const def = parseClass(body, (n) => readable(ctx, caller, n));
    if (ctx.classes.has(def.class)) throw unprocessable(`class name "${def.class}" already exists`);
    await ctx.options.store.putClass(def.class, def, caller);
    const { index, named } = await ctx.openIndexes(def, 0);
    ctx.classes.set(def.class, { def, owner: caller, index, named, count: 0, lastWrite: 0, lastSave: Date.now() });
    return def;
  });
}

/** `POST /v1/schema/{class}/properties` (action `manage`). @throws CollectionError 404/422, 403 when not allowed. */
export async function addProperty(ctx: CollectionContext, caller: Caller, className: string, body: unknown): Promise<PropertyDef> {
  return ctx.schemaLock.run(async () => {
    const st = ctx.classes.get(normalizeClassName(className));
    if (!st) throw new CollectionError(404, notPresent(normalizeClassName(className)));
    ctx.authorize(caller, st, "manage");
    const prop = parseProperty(body, st.def.class, (n) => n === st.def.class || readable(ctx, caller, n));
    if (st.def.properties.some((p) => p.name === prop.name)) throw unprocessable(`class "${st.def.class}": conflict for property "${prop.name}": already in use or provided multiple times`);
    const def = { ...st.def, properties: [...st.def.properties, prop] };
    await ctx.options.store.putClass(def.class, def, st.owner);
    st.def = def;
    return prop;
  });
}

/**
 * `PUT /v1/schema/{class}` (action `manage`): what Weaviate lets change (class-update.ts), stored, then in effect at
 * once: BM25 settings are read per query; changed ef settings hold for the class's open indexes (and its tenants') from the next search. Updates
 * run one at a time under both locks, each against the class as the previous one left it: the last one wins whole.
 * @returns the class as stored, or null when it does not exist.
 * @throws CollectionError 422 with Weaviate's message for an immutable change or a bad body, 403 when not allowed.
 */
export async function updateClass(ctx: CollectionContext, caller: Caller, className: string, body: unknown): Promise<ClassDef | null> {
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const name = normalizeClassName(className);
      const st = isPartitionKey(name) ? undefined : ctx.classes.get(name);
      if (!st) return null;
      ctx.authorize(caller, st, "manage");
      const { def, searchSettingsChanged } = planClassUpdate(st.def, name, body, (n) => n === name || readable(ctx, caller, n));
      await ctx.options.store.putClass(name, def, st.owner);
      st.def = def;
      const parts = [...tenantsOf(ctx, name).values()];
      for (const p of parts) p.def = tenantDef(def, (p.def as TenantDef).tenant, (p.def as TenantDef).activityStatus);
      if (searchSettingsChanged) for (const s of [st, ...parts]) ctx.configureIndexes(s);
      return def;
    }),
  );
}

/**
 * `DELETE /v1/schema/{class}` (action `manage`): the class, its objects and its index. @returns whether it existed.
 * @throws CollectionError 403 when the caller may not manage it.
 */
export async function deleteClass(ctx: CollectionContext, caller: Caller, name: string): Promise<boolean> {
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const cls = normalizeClassName(name);
      const st = ctx.classes.get(cls);
      if (!st) return false;
      ctx.authorize(caller, st, "manage");
      await ctx.options.store.deleteClass(cls);
      ctx.classes.delete(cls);
      for (const index of ctx.indexesOf(st)) await index.drop();
      return true;
    }),
  );
}
