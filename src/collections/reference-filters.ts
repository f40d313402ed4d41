import type { StoredReference } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type ClassState, type CollectionContext, isObject } from "./collection-context.js";
import { unprocessable } from "./errors.js";
import { isReferenceType, normalizeClassName, propertyOf } from "./schema.js";
import { isMultiTenant, parentClass, partitionKey, type TenantDef } from "./tenants.js";
import { compileWhere, type FilterTarget, type Predicate } from "./where-filter.js";

/*
 * `where` filters on cross-references, as Weaviate reads them:
 *   - a path through references, `["hasCategory", "Category", "title"]`, to any depth (`["a", "A", "b", "B", "p"]`):
 *     the rest of the filter (`{path: ["title"], operator, value}`) runs on the target class, and an object matches
 *     when at least one of its references on `hasCategory` to a `Category` object points to one that matches. The
 *     rest may be anything a filter on that class takes (a property, `id`, a timestamp, `len(p)`, a reference count).
 *   - a reference property alone, `["hasCategory"]`: the number of its references (Weaviate's reference-count
 *     filter), with valueInt and Equal / NotEqual / GreaterThan[Equal] / LessThan[Equal]; IsNull holds when it has none.
 * A multi-tenant target class is read in the source's tenant (the only one its references can point into,
 * reference-ops.ts). A filter is evaluated synchronously per object (where-filter.ts), so each reference condition is
 * worked out first, here: a scan of the target class for the matching ids, and one read of the source's references of
 * that property, into the set of matching source ids (or the count per source).
 */

/** The predicates of a filter's reference conditions, by the condition's object (read by compileWhere). */
export type ReferenceConditions = Map<object, (o: FilterTarget) => boolean>;

/** Objects read per page while collecting a class's references. */
const PAGE = 1000;

const COUNT_TESTS: Record<string, (n: number, v: number) => boolean> = {
  Equal: (n, v) => n === v,
  NotEqual: (n, v) => n !== v,
  GreaterThan: (n, v) => n > v,
  GreaterThanEqual: (n, v) => n >= v,
  LessThan: (n, v) => n < v,
  LessThanEqual: (n, v) => n <= v,
};

/** The references of one class and property, by source id, read once per compiled filter. */
class ReferenceReader {
  private readonly cache = new Map<string, Promise<Map<string, StoredReference[]>>>();
  constructor(private readonly ctx: CollectionContext) {}

  of(cls: string, property: string): Promise<Map<string, StoredReference[]>> {
    const key = `${cls}\u0000${property}`;
    let p = this.cache.get(key);
    if (!p) this.cache.set(key, (p = this.read(cls, property)));
    return p;
  }

  private async read(cls: string, property: string): Promise<Map<string, StoredReference[]>> {
    const store = this.ctx.options.store;
    const out = new Map<string, StoredReference[]>();
    for (let after = 0; ; ) {
      const page = await store.scanObjects(cls, after, PAGE, false);
      if (page.length === 0) return out;
      for (const r of await store.referencesFrom(cls, page.map((o) => o.id))) {
        if (r.property !== property) continue;
        const list = out.get(r.from_id);
        if (list) list.push(r);
        else out.set(r.from_id, [r]);
      }
      after = page.at(-1)!.seq;
    }
  }
}

/**
 * Compiles a `where` filter on a class (or a tenant's partition) `st`, reference conditions included: the one entry
 * point of every filtered operation (listings, vector / bm25 / hybrid searches, counts, aggregate, batch delete).
 * @returns a synchronous predicate over the class's objects.
 * @throws CollectionError 422 for a bad filter (where-filter.ts) or a bad path through a reference (a property that is
 * not a reference, a class it cannot point to, a path ending at the class); 403 when `caller` may not read a class the
 * path goes through.
 */
export async function compileFilter(ctx: CollectionContext, caller: Caller, st: ClassState, where: unknown): Promise<Predicate> {
  return compileOn(ctx, caller, st, where, new ReferenceReader(ctx));
}

async function compileOn(ctx: CollectionContext, caller: Caller, st: ClassState, where: unknown, reader: ReferenceReader): Promise<Predicate> {
  const conditions: ReferenceConditions = new Map();
  await resolve(ctx, caller, st, where, reader, conditions);
  return compileWhere(where, st.def, conditions);
}

/** Works out every reference condition of `filter` into `out`; anything else is left to compileWhere. */
async function resolve(ctx: CollectionContext, caller: Caller, st: ClassState, filter: unknown, reader: ReferenceReader, out: ReferenceConditions): Promise<void> {
  if (!isObject(filter)) return;
  if (filter.operator === "And" || filter.operator === "Or" || filter.operator === "Not") {
    if (Array.isArray(filter.operands)) for (const o of filter.operands) await resolve(ctx, caller, st, o, reader, out);
    return;
  }
  const path = filter.path;
  if (!Array.isArray(path) || path.length === 0 || !path.every((p) => typeof p === "string")) return;
  const cls = parentClass(st.def.class);
  const prop = propertyOf(st.def, path[0] as string);
  if (path.length === 1) {
    if (prop && isReferenceType(prop.dataType)) out.set(filter, await countCondition(st, prop.name, filter, reader));
    return;
  }
  if (!prop) throw unprocessable(`no such prop with name '${path[0]}' found in class '${cls}' in the schema. Check your schema files for which properties in this class are available`);
  if (!isReferenceType(prop.dataType)) throw unprocessable(`invalid where filter: path ${JSON.stringify(path)} goes through '${prop.name}', which is not a cross-reference property of class '${cls}' (its data type is ${prop.dataType.join(", ")})`);
  if (path.length < 3) throw unprocessable(`invalid where filter: path ${JSON.stringify(path)} ends at class ${path[1]}: a path through a reference names the property to filter on after the class, e.g. ["${prop.name}", "${prop.dataType[0]}", "name"]`);
  const targetClass = normalizeClassName(path[1] as string);
  if (!prop.dataType.includes(targetClass)) throw unprocessable(`invalid where filter: class '${targetClass}' is not a target of the reference property '${prop.name}' of class '${cls}' (it references ${prop.dataType.join(", ")})`);
  const target = referenceTarget(ctx, caller, st, targetClass);
  const ids = new Set<string>();
  if (target) {
    const predicate = await compileOn(ctx, caller, target, { ...filter, path: path.slice(2) }, reader);
    await ctx.scan(target, predicate, (o) => (ids.add(o.id), true));
  }
  const sources = new Set<string>();
  if (ids.size) for (const [from, refs] of await reader.of(st.def.class, prop.name)) if (refs.some((r) => r.to_class === targetClass && ids.has(r.to_id))) sources.add(from);
  out.set(filter, (o) => sources.has(o.id));
}

/**
 * The class (or partition) references from `st` to `targetClass` point into: the target's partition in the source's
 * tenant when the target is multi-tenant. @returns null when there is none to read (a tenant the target class lacks,
 * a class since deleted): no reference can match. @throws CollectionError 403 when `caller` may not read the target,
 * 422 when its tenant is not active.
 */
export function referenceTarget(ctx: CollectionContext, caller: Caller, st: ClassState, targetClass: string): ClassState | null {
  const parent = ctx.classes.get(targetClass);
  if (!parent) return null;
  ctx.authorize(caller, parent, "read");
  if (!isMultiTenant(parent.def)) return parent;
  const tenant = (st.def as Partial<TenantDef>).tenant;
  const part = tenant === undefined ? undefined : ctx.classes.get(partitionKey(targetClass, tenant));
  if (!part) return null;
  if ((part.def as TenantDef).activityStatus !== "ACTIVE") throw unprocessable(`tenant not active: ${JSON.stringify(tenant)}`);
  return part;
}

/**
 * A reference-count condition on property `property` of `st`.
 * @throws CollectionError 422 for an operator other than the comparisons and IsNull, or a value that is not an integer.
 */
async function countCondition(st: ClassState, property: string, filter: Record<string, unknown>, reader: ReferenceReader): Promise<(o: FilterTarget) => boolean> {
  const op = String(filter.operator);
  const cls = parentClass(st.def.class);
  if (op === "IsNull") {
    if (typeof filter.valueBoolean !== "boolean") throw unprocessable("invalid where filter: IsNull needs valueBoolean");
    const want = filter.valueBoolean;
    const refs = await reader.of(st.def.class, property);
    return (o) => !refs.has(o.id) === want;
  }
  const test = COUNT_TESTS[op];
  const usage = `a filter on the reference property '${property}' of class '${cls}' alone counts its references: give valueInt with Equal, NotEqual, GreaterThan, GreaterThanEqual, LessThan or LessThanEqual; to filter on the referenced objects, give a path through the reference, ["${property}", "<Class>", "<property>"]`;
  if (!test) throw unprocessable(`invalid where filter: operator ${op} cannot be used here: ${usage}`);
  const v = filter.valueInt ?? filter.valueNumber;
  const others = ["valueText", "valueString", "valueBoolean", "valueDate"].filter((k) => filter[k] !== undefined && filter[k] !== null);
  if (typeof v !== "number" || !Number.isInteger(v) || others.length) throw unprocessable(`invalid where filter: ${usage}`);
  const refs = await reader.of(st.def.class, property);
  return (o) => test(refs.get(o.id)?.length ?? 0, v);
}
