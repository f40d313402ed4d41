import { type CollectionContext, notPresent } from "./collection-context.js";
import { CollectionError, unprocessable } from "./errors.js";
import { normalizeClassName, parseClass, parseProperty, type ClassDef, type PropertyDef } from "./schema.js";

/* Schema operations (`/v1/schema`): create a class, add a property, delete a class with its objects and index. */

/** `POST /v1/schema`. @throws CollectionError 422 when invalid or when the class exists. */
export async function createClass(ctx: CollectionContext, body: unknown): Promise<ClassDef> {
  return ctx.schemaLock.run(async () => {
    const def = parseClass(body, (n) => ctx.classes.has(n));
    if (ctx.classes.has(def.class)) throw unprocessable(`class name "${def.class}" already exists`);
    await ctx.options.store.putClass(def.class, def);
    ctx.classes.set(def.class, { def, index: await ctx.openIndex(def, 0), count: 0, lastWrite: 0, lastSave: Date.now() });
    return def;
  });
}

/** `POST /v1/schema/{class}/properties`. @throws CollectionError 404/422. */
export async function addProperty(ctx: CollectionContext, className: string, body: unknown): Promise<PropertyDef> {
  return ctx.schemaLock.run(async () => {
    const st = ctx.classes.get(normalizeClassName(className));
    if (!st) throw new CollectionError(404, notPresent(normalizeClassName(className)));
    const prop = parseProperty(body, st.def.class, (n) => ctx.classes.has(n));
    if (st.def.properties.some((p) => p.name === prop.name)) throw unprocessable(`class "${st.def.class}": conflict for property "${prop.name}": already in use or provided multiple times`);
    const def = { ...st.def, properties: [...st.def.properties, prop] };
    await ctx.options.store.putClass(def.class, def);
    st.def = def;
    return prop;
  });
}

/** `DELETE /v1/schema/{class}`: the class, its objects and its index. @returns whether it existed. */
export async function deleteClass(ctx: CollectionContext, name: string): Promise<boolean> {
  return ctx.schemaLock.run(() =>
    ctx.writeLock.run(async () => {
      const cls = normalizeClassName(name);
      const st = ctx.classes.get(cls);
      if (!st) return false;
      await ctx.options.store.deleteClass(cls);
      ctx.classes.delete(cls);
      await st.index.drop();
      return true;
    }),
  );
}

