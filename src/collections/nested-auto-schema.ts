import type { Caller } from "./access.js";
import { type ClassState, type CollectionContext, isObject } from "./collection-context.js";
import { inferNestedValue, isObjectType } from "./complex-types.js";
import { autoClass, inferDataType, inferScalar, normalizeClassName, normalizePropertyName, parseProperty, type ClassDef, type PropertyDef } from "./schema.js";
import { beaconClass } from "./references.js";
import { isPartitionKey, parentClass, tenantsOf } from "./tenants.js";

/*
 * Auto-schema for `object` / `object[]` properties, run on a batch before batch-import.ts validates it: the nested
 * fields the batch's values have and the property lacks are added (at any depth, types inferred as at creation), as
 * Weaviate's auto-schema does; so is a new object property of an existing or new class, inferred from every object of
 * the batch holding it rather than the first alone. batch-import.ts then finds the fields there. A multi-tenant
 * class's schema is its own: the change goes to the class and to each tenant's partition alike.
 */

/** Values of one property across a batch, by class (store key) then property name. */
type Values = Map<string, Map<string, unknown[]>>;

const isMapArray = (v: unknown): v is Record<string, unknown>[] => Array.isArray(v) && v.length > 0 && v.every(isObject);

/**
 * Extends the object properties of the batch's classes (see the file comment). Objects that are malformed, of a class
 * `caller` may not write, or whose values say nothing are left for batch-import.ts to answer. Takes the schema lock.
 * @param objects the batch's objects, each with `class` the store key (a tenant's partition key for a multi-tenant class).
 */
export async function extendNestedSchema(ctx: CollectionContext, caller: Caller, objects: unknown[]): Promise<void> {
  if (!ctx.autoSchema) return;
  const values: Values = new Map();
  for (const raw of objects) {
    if (!isObject(raw) || typeof raw.class !== "string" || !raw.class || !isObject(raw.properties)) continue;
    const cls = parentClass(normalizeClassName(raw.class));
    for (const [key, v] of Object.entries(raw.properties)) {
      if (!isObject(v) && !isMapArray(v)) continue;
      const props = values.get(cls) ?? new Map<string, unknown[]>();
      values.set(cls, props);
      const name = normalizePropertyName(key);
      // Appended in place: copying the list per object would be quadratic in the batch size.
      const list = props.get(name);
      if (list) list.push(v);
      else props.set(name, [v]);
    }
  }
  if (values.size === 0) return;
  await ctx.schemaLock.run(async () => {
    for (const [cls, props] of values) await extendClass(ctx, caller, cls, props);
  });
}

/** Adds what `props` need to class `cls` (creating it, owned by `caller`, when absent) and stores it. */
async function extendClass(ctx: CollectionContext, caller: Caller, cls: string, props: Map<string, unknown[]>): Promise<void> {
  let st = ctx.classes.get(cls);
  if (st && !ctx.allows(caller, st, "write")) return;
  let def = st?.def ?? safeAutoClass(cls);
  if (!def) return;
  const exists = (n: string) => n === cls || ctx.classes.has(n);
  const changed: PropertyDef[] = [];
  for (const [name, vals] of props) {
    const prop: PropertyDef | undefined = def.properties.find((p) => p.name === name);
    const next: PropertyDef | null = prop ? extendProperty(prop, vals, def.class, exists) : newObjectProperty(name, vals, def.class, exists);
    if (!next) continue;
    changed.push(next);
    def = { ...def, properties: prop ? def.properties.map((p: PropertyDef) => (p === prop ? next : p)) : [...def.properties, next] };
  }
  if (changed.length === 0) return;
  if (!st) {
    const { index, named } = await ctx.openIndexes(def, 0);
    st = { def, owner: caller, index, named, count: 0, lastWrite: 0, lastSave: Date.now() };
    ctx.classes.set(cls, st);
  }
  await ctx.options.store.putClass(cls, def, st.owner);
  st.def = def;
  ctx.persistedProps.set(st, def.properties.length);
  // Partitions take the changed properties only: one may hold a property auto-schema added that the class gets later.
  for (const part of tenantsOf(ctx, cls).values()) part.def = withProperties(part, changed);
}

function safeAutoClass(cls: string): ClassDef | null {
  if (isPartitionKey(cls)) return null;
  try {
    return autoClass(cls);
  } catch {
    return null; // an invalid class name: batch-import.ts answers it per object
  }
}

function withProperties(part: ClassState, changed: PropertyDef[]): ClassDef {
  const byName = new Map(changed.map((p) => [p.name, p]));
  const kept = part.def.properties.map((p) => byName.get(p.name) ?? p);
  const added = changed.filter((p) => !part.def.properties.some((q) => q.name === p.name));
  return { ...part.def, properties: [...kept, ...added] };
}

/** A new property of object values, typed from all of them. @returns null when they are not objects (batch-import infers those). */
function newObjectProperty(name: string, vals: unknown[], cls: string, exists: (n: string) => boolean): PropertyDef | null {
  const inferred = inferDataType(vals[0], beaconClass);
  if (!inferred || "error" in inferred || !isObjectType(inferred.dataType[0])) return null;
  let prop: PropertyDef;
  try {
    prop = parseProperty({ name, ...inferred }, cls, exists);
  } catch {
    return null; // batch-import.ts infers it again and answers the error
  }
  return extendProperty(prop, vals.slice(1), cls, exists) ?? prop;
}

/** `prop` with the nested fields `vals` have and it lacks. @returns null when nothing is added. */
function extendProperty(prop: PropertyDef, vals: unknown[], cls: string, exists: (n: string) => boolean, path = prop.name): PropertyDef | null {
  const type = prop.dataType[0];
  if (!isObjectType(type)) return null;
  // Only values of the property's own shape say anything; others fail validation as they are.
  const maps = vals.flatMap((v) => (type === "object" ? (isObject(v) ? [v] : []) : isMapArray(v) ? v : []));
  let nested = prop.nestedProperties ?? [];
  let changed = false;
  const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))];
  for (const key of keys) {
    const existing = nested.find((n) => n.name === key || n.name === normalizePropertyName(key));
    // A scalar field there already: nothing to learn from its values (validation checks them).
    if (existing && !isObjectType(existing.dataType[0])) continue;
    const fieldVals = maps.map((m) => m[key]).filter((v) => v !== null && v !== undefined);
    if (fieldVals.length === 0) continue;
    if (existing) {
      const next = extendProperty(existing, fieldVals, cls, exists, `${path}.${existing.name}`);
      if (next) {
        nested = nested.map((n) => (n === existing ? next : n));
        changed = true;
      }
      continue;
    }
    const inferred = inferNestedValue(fieldVals[0], inferScalar);
    if (!inferred || "error" in inferred) continue;
    let field: PropertyDef;
    try {
      field = parseProperty({ name: key, ...inferred }, cls, exists, path);
    } catch {
      continue;
    }
    nested = [...nested, extendProperty(field, fieldVals.slice(1), cls, exists, `${path}.${field.name}`) ?? field];
    changed = true;
  }
  return changed ? { ...prop, nestedProperties: nested } : null;
}
