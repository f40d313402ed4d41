import type { StoredObject, StoredReference } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type CollectionContext, type ClassState, isObject, notPresent } from "./collection-context.js";
import { DELETE_LIMIT, type DeleteQuery, type DeleteResult, type ObjectView } from "./collection-types.js";
import { invertedIndexRemoved } from "./inverted-index.js";
import { unprocessable } from "./errors.js";
import { mergeReferences } from "./references.js";
import { parseEnvelope, validateProperties } from "./objects.js";
import { normalizeClassName, vectorSlots } from "./schema.js";
import { assertWritable } from "./shards.js";
import type { SortKey } from "./sort.js";
import { isMultiTenant, isPartitionKey, parentClass, resolveTarget } from "./tenants.js";
import { DEFAULT_VECTOR } from "./vector-config.js";
import { search, vectorsOf } from "./search.js";
import { filteredObjects } from "./filter-plan.js";
import { compileFilter } from "./reference-filters.js";

/*
 * Objects by id (`/v1/objects`), listing, and batch delete (`DELETE /v1/batch/objects`). Reading needs `read` on the
 * class, deleting `write` (see access.ts).
 */

/**
 * `GET /v1/objects/{class}/{id}` (or, when `cls` is null, in the first class holding it that `caller` may read), with
 * its references. @returns null when absent.
 * @throws CollectionError 403 when `cls` is named and the caller may not read it.
 */
export async function getObject(ctx: CollectionContext, caller: Caller, cls: string | null, id: string, includeVector: boolean): Promise<ObjectView | null> {
  const lower = id.toLowerCase();
  const readable = (n: string) => {
    const st = ctx.classes.get(n);
    return st !== undefined && ctx.allows(caller, st, "read");
  };
  const name = cls === null ? (await ctx.options.store.classesOfObject(lower)).find(readable) : normalizeClassName(cls);
  const st = name === undefined ? undefined : ctx.classes.get(name);
  if (!name || !st) return null;
  ctx.authorize(caller, st, "read");
  const o = await ctx.options.store.getObject(name, lower, includeVector);
  if (!o) return null;
  const refs = await ctx.options.store.referencesFrom(name, [lower]);
  return view(o, refs, includeVector, st.def.vectorConfig !== undefined);
}

/** An object as the REST API shows it; with `includeVector`, a legacy class's `vector`, a named class's `vectors`. */
function view(o: StoredObject, refs: StoredReference[], includeVector: boolean, named: boolean): ObjectView {
  const out: ObjectView = { class: o.class, id: o.id, properties: mergeReferences(o.properties, refs), creationTimeUnix: o.created_at, lastUpdateTimeUnix: o.updated_at };
  if (includeVector && named) out.vectors = vectorsOf(o) ?? {};
  else if (includeVector) out.vector = o.vector ? Array.from(o.vector) : [];
  return out;
}

/** Paging of a listing beyond limit and cursor: an offset, sort keys (sort.ts). */
export interface ListPaging {
  offset?: number;
  sort?: SortKey[];
}

/** `GET /v1/objects?class=…`: objects of a class in insertion order (or sorted), after a cursor id or an offset. */
export async function listObjects(ctx: CollectionContext, caller: Caller, cls: string, limit: number, after: string | undefined, includeVector: boolean, paging: ListPaging = {}): Promise<{ objects: ObjectView[]; total: number }> {
  const st = ctx.requireClass(cls, caller, "read");
  const hits = await search(ctx, caller, { class: st.def.class, limit, after, includeVector, offset: paging.offset, sort: paging.sort });
  const refs = await ctx.options.store.referencesFrom(st.def.class, hits.map((h) => h.id));
  const objects = hits.map((h) => {
    const view: ObjectView = { class: h.class, id: h.id, properties: mergeReferences(h.properties, refs.filter((r) => r.from_id === h.id)), creationTimeUnix: h.creationTimeUnix, lastUpdateTimeUnix: h.lastUpdateTimeUnix };
    if (includeVector && st.def.vectorConfig) view.vectors = h.vectors ?? {};
    else if (includeVector) view.vector = h.vector ?? [];
    return view;
  });
  return { objects, total: st.count };
}

/**
 * `GET /v1/objects` without a class: the objects of every class `caller` may read, class by class in creation order,
 * each in insertion order, from `offset`, at most `limit`. Multi-tenant classes are left out (their objects are a
 * tenant's: list them with the class and `tenant`).
 */
export async function listAllObjects(ctx: CollectionContext, caller: Caller, limit: number, offset: number, includeVector: boolean): Promise<ObjectView[]> {
  const out: ObjectView[] = [];
  let skip = offset;
  for (const st of [...ctx.classes.values()]) {
    if (out.length >= limit) break;
    if (isPartitionKey(st.def.class) || isMultiTenant(st.def) || !ctx.allows(caller, st, "read")) continue;
    // Whole classes before the offset are skipped by their counts, without reading them.
    if (skip >= st.count) {
      skip -= st.count;
      continue;
    }
    const { objects } = await listObjects(ctx, caller, st.def.class, limit - out.length, undefined, includeVector, { offset: skip });
    skip = 0;
    out.push(...objects);
  }
  return out;
}

/**
 * `POST /v1/objects/validate`: checks an object as an insert would (envelope, class, tenant, named vectors,
 * properties), without auto-schema and without storing it. Needs `read` on the class, as in Weaviate.
 * @throws CollectionError 422 `invalid object: <the insert's message>`, 403 when the caller may not read the class.
 */
export function validateObject(ctx: CollectionContext, caller: Caller, raw: unknown): void {
  // A multi-tenant class's object is checked as its tenant's partition's (tenants.ts), named back in messages.
  let body = raw;
  let partition: string | null = null;
  if (isObject(raw) && typeof raw.class === "string" && ctx.classes.has(normalizeClassName(raw.class))) {
    let target: string;
    try {
      target = resolveTarget(ctx, raw.class, typeof raw.tenant === "string" ? raw.tenant : undefined);
    } catch (err) {
      throw unprocessable(`invalid object: ${(err as Error).message}`);
    }
    if (isPartitionKey(target)) {
      const { tenant: _t, ...rest } = raw;
      body = { ...rest, class: target };
      partition = target;
    }
  }
  const fail = (message: string) => unprocessable(`invalid object: ${partition ? message.replaceAll(partition, parentClass(partition)) : message}`);
  const env = parseEnvelope(body);
  if ("error" in env) throw fail(env.error);
  const st = ctx.classes.get(env.class);
  if (!st) throw fail(notPresent(env.class));
  ctx.authorize(caller, st, "read");
  const names = vectorSlots(st.def).map((s) => s.name);
  const unknown = Object.keys(env.vectors).find((n) => !names.includes(n));
  if (unknown) throw fail(`class ${st.def.class}: vector ${JSON.stringify(unknown)} is not a vector of this class (its vectors: ${names.join(", ")})`);
  if (env.vector && !names.includes(DEFAULT_VECTOR) && names.length !== 1) {
    throw fail(`class ${st.def.class} has multiple vectors (${names.join(", ")}), but the object has a single unnamed vector: give them in 'vectors' by name`);
  }
  const valid = validateProperties(st.def, env.properties);
  if ("error" in valid) throw fail(valid.error);
}

/** `DELETE /v1/objects/{class}/{id}`. @returns whether it existed. @throws CollectionError 403 when the caller may not write the class. */
export async function deleteObject(ctx: CollectionContext, caller: Caller, cls: string, id: string): Promise<boolean> {
  const st = ctx.classes.get(normalizeClassName(cls));
  if (!st) return false;
  ctx.authorize(caller, st, "write");
  assertWritable(st);
  return ctx.writeLock.run(async () => (await removeObjects(ctx, st, [id.toLowerCase()])).length === 1);
}

/** Deletes objects of a class from the store and the index. Call inside the write lock. @returns the ids deleted. */
async function removeObjects(ctx: CollectionContext, st: ClassState, ids: string[]): Promise<string[]> {
  const { deleted, vectorSeqs, namedSeqs } = await ctx.options.store.deleteObjects(st.def.class, ids);
  await st.index.remove(vectorSeqs);
  for (const [name, seqs] of Object.entries(namedSeqs)) await st.named.get(name)?.remove(seqs);
  invertedIndexRemoved(st, { ids: deleted });
  st.count -= deleted.length;
  st.lastWrite = Date.now();
  return deleted;
}

/**
 * `DELETE /v1/batch/objects`: deletes up to DELETE_LIMIT objects of a class matching `where` (or only counts them
 * with `dryRun`). `objects` lists each matched object when verbose, else only the failed ones.
 * @throws CollectionError 422 (unknown class, no or bad filter), 403 when the caller may not write the class.
 */
export async function deleteObjects(ctx: CollectionContext, caller: Caller, q: DeleteQuery): Promise<DeleteResult> {
  const st = ctx.requireClass(q.class, caller, "write");
  if (q.where === undefined || q.where === null) throw unprocessable("validate: where filter cannot be empty: give match.where");
  if (!q.dryRun) assertWritable(st);
  const predicate = await compileFilter(ctx, caller, st, q.where);
  return ctx.writeLock.run(async () => {
    // The filterable index finds the matches where it can (filter-plan.ts); in seq order, as a scan would.
    const ids = (await filteredObjects(ctx, st, q.where, predicate, -Infinity, DELETE_LIMIT, false)).map((o) => o.id);
    const objects: DeleteResult["objects"] = [];
    if (q.dryRun) {
      if (q.verbose) for (const id of ids) objects.push({ id, status: "DRYRUN" });
      return { matches: ids.length, limit: DELETE_LIMIT, successful: 0, failed: 0, objects };
    }
    const deleted = new Set(await removeObjects(ctx, st, ids));
    for (const id of ids) {
      if (deleted.has(id)) {
        if (q.verbose) objects.push({ id, status: "SUCCESS" });
      } else objects.push({ id, status: "FAILED", errors: { error: [{ message: `object ${st.def.class}/${id} was not found` }] } });
    }
    return { matches: ids.length, limit: DELETE_LIMIT, successful: deleted.size, failed: ids.length - deleted.size, objects };
  });
}

