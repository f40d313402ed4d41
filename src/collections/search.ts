import type { StoredObject } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type CollectionContext, type ClassState } from "./collection-context.js";
import type { SearchQuery, SearchResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { slotOf } from "./schema.js";
import { DEFAULT_VECTOR } from "./vector-config.js";
import { nearTextVector } from "./near-text.js";
import type { SearchHit } from "./vector-index.js";
import { filteredVectorSearch } from "./flat-search.js";
import { compileFilter } from "./reference-filters.js";
import { allowListOf, filteredObjects } from "./filter-plan.js";
import { autocut } from "./hybrid.js";
import { keywordSearch } from "./keyword-search.js";
import { multiTargetSearch } from "./multi-target.js";
import { compileSort } from "./sort.js";

/* Search: vector (given, nearText, nearObject) and filtered, or a listing in insertion order; counts. Both need `read` (access.ts). */

/**
 * Nearest objects to a vector (given, embedded from `concepts` and moved by `moveTo` / `moveAwayFrom` (near-text.ts),
 * or another object's), optionally filtered by `where` and a largest distance / smallest certainty; without any of
 * them, a listing in insertion order.
 * @throws CollectionError 422 for an unknown class, a bad filter, a vector of the wrong length, nearText without a
 * vectorizer, a bad movement or one without nearText; 403 when `caller` may not read the class.
 */
export async function search(ctx: CollectionContext, caller: Caller, q: SearchQuery): Promise<SearchResult[]> {
  const st = ctx.requireClass(q.class, caller, "read");
  const cls = st.def.class;
  const predicate = q.where === undefined || q.where === null ? null : await compileFilter(ctx, caller, st, q.where);
  const offset = q.offset ?? 0;
  const want = offset + q.limit;
  if (q.limit <= 0) return [];
  if (q.autocut !== undefined && (!Number.isInteger(q.autocut) || q.autocut < 0)) throw unprocessable("autocut must be an integer >= 0");
  if (q.bm25 && q.hybrid) throw unprocessable("found more than one search operator (bm25, hybrid): use one");
  if ((q.moveTo || q.moveAwayFrom) && !q.concepts) throw unprocessable("moveTo / moveAwayFrom are only valid with a nearText search");
  if (q.hybrid?.nearText) q = await hybridNearText(ctx, st, q);
  // Several target vectors at once: their distances combined (multi-target.ts).
  if (q.targets) {
    if (q.moveTo || q.moveAwayFrom) throw unprocessable("nearText: moveTo / moveAwayFrom over several target vectors are not supported by OpenBatch: search one target vector");
    return multiTargetSearch(ctx, caller, st, q, predicate, (o, d) => result(o, d, st, null), search);
  }
  if (q.bm25 || q.hybrid) return keywordSearch(ctx, caller, st, q, predicate, (o) => result(o, null, st, null), search);

  let query: Float32Array | null = null;
  const searching = q.vector !== undefined || q.concepts !== undefined || q.nearObject !== undefined;
  // The vector searched: the one named, or the only one / `default`.
  const slot = searching ? slotOf(st.def, q.targetVector) : null;
  if (!searching && q.targetVector) throw unprocessable("targetVectors is only valid with a vector search (nearVector, nearText, nearObject)");
  if (q.vector) query = Float32Array.from(q.vector);
  else if (q.concepts) query = await nearTextVector(ctx, st, slot!, q.concepts, q.moveTo, q.moveAwayFrom);
  else if (q.nearObject) {
    const o = await ctx.options.store.getObject(cls, q.nearObject.toLowerCase(), true);
    if (!o) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} not found`);
    const v = slot!.name === DEFAULT_VECTOR ? o.vector : (o.vectors?.[slot!.name] ?? null);
    if (!v) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} has no vector ${slot!.name}`);
    query = v;
  }

  if (q.sort && query) throw unprocessable("sort cannot be combined with a vector search (nearVector, nearText, nearObject): results are ordered by distance");
  if (q.sort) {
    // A sorted listing: every match, sorted, then paged (sort.ts).
    if (q.after) throw unprocessable("sort cannot be combined with the cursor (after)");
    const cmp = compileSort(q.sort, st.def);
    const found: StoredObject[] = predicate ? await filteredObjects(ctx, st, q.where, predicate, 0, Infinity, q.includeVector === true) : [];
    if (!predicate) await ctx.scan(st, null, (o) => (found.push(o), true), 0, q.includeVector === true);
    return found.sort(cmp).slice(offset, want).map((o) => result(o, null, st, null));
  }
  if (!query && q.autocut) throw unprocessable("autocut needs a search (nearVector, nearText, nearObject, bm25, hybrid) to cut by score");
  if (!query) {
    // A listing: insertion order, after a cursor.
    let afterSeq = 0;
    if (q.after) {
      const o = await ctx.options.store.getObject(cls, q.after.toLowerCase(), false);
      if (!o) throw unprocessable(`cursor: object ${cls}/${q.after} not found`);
      afterSeq = o.seq;
    }
    const found: StoredObject[] = predicate ? await filteredObjects(ctx, st, q.where, predicate, afterSeq, want, q.includeVector === true) : [];
    if (!predicate) await ctx.scan(st, null, (o) => (found.push(o), found.length < want), afterSeq, q.includeVector === true);
    return found.slice(offset).map((o) => result(o, null, st, null));
  }

  const index = ctx.indexOf(st, slot!.name);
  if (index.dims !== null && query.length !== index.dims) {
    throw unprocessable(`vector search: the query vector has length ${query.length}, but the vectors ${slot!.name} of class ${cls} have length ${index.dims}`);
  }
  const distance = slot!.indexConfig.distance;
  let hits: SearchHit[];
  if (!predicate) hits = await index.search(query, want);
  else {
    const allowed = [...(await allowListOf(ctx, st, q.where, predicate))];
    hits = await filteredVectorSearch(ctx, st, slot!, index, query, want, allowed);
  }
  let maxDistance = q.distance ?? Infinity;
  if (q.certainty !== undefined) {
    if (distance !== "cosine") throw unprocessable(`can't compute and return certainty when vector index is configured with ${distance} distance`);
    maxDistance = Math.min(maxDistance, 2 * (1 - q.certainty));
  }
  hits = hits.filter((h) => h.distance <= maxDistance + 1e-6);
  if (q.autocut) hits = hits.slice(0, autocut(hits.map((h) => h.distance), q.autocut));
  hits = hits.slice(offset);
  const objects = new Map((await ctx.options.store.objectsBySeq(cls, hits.map((h) => h.label), q.includeVector === true)).map((o) => [o.seq, o]));
  return hits.filter((h) => objects.has(h.label)).map((h) => result(objects.get(h.label)!, h.distance, st, distance));
}

/**
 * A hybrid search whose vector part is a nearText search (gRPC `near_text`): the same query with that part's vector
 * computed (near-text.ts), so the fusion runs on it as on a given vector.
 * @throws CollectionError 422 for a vector given too, several target vectors, and what nearTextVector refuses.
 */
async function hybridNearText(ctx: CollectionContext, st: ClassState, q: SearchQuery): Promise<SearchQuery> {
  const { nearText, ...hybrid } = q.hybrid!;
  // Weaviate's parse_search_request.go: the hybrid's own vector and a nearText sub-search exclude each other.
  if (hybrid.vector) throw unprocessable("cannot combine nearText and query in hybrid search");
  if (q.targets) throw unprocessable("hybrid: a nearText sub-search over several target vectors is not supported by OpenBatch: search one target vector");
  const vector = await nearTextVector(ctx, st, slotOf(st.def, q.targetVector), nearText!.concepts, nearText!.moveTo, nearText!.moveAwayFrom);
  return { ...q, hybrid: { ...hybrid, vector: Array.from(vector) } };
}

/** Every vector of a stored object by name (`default` for the legacy one); null when it has none or they were not read. */
export function vectorsOf(o: StoredObject): Record<string, number[]> | null {
  const out: Record<string, number[]> = {};
  if (o.vector) out[DEFAULT_VECTOR] = Array.from(o.vector);
  for (const [name, v] of Object.entries(o.vectors ?? {})) out[name] = Array.from(v);
  return Object.keys(out).length ? out : null;
}

function result(o: StoredObject, distance: number | null, st: ClassState, metric: string | null): SearchResult {
  const vectors = vectorsOf(o);
  return {
    class: o.class,
    id: o.id,
    properties: o.properties,
    vector: o.vector ? Array.from(o.vector) : vectors && Object.keys(vectors).length === 1 ? Object.values(vectors)[0]! : null,
    vectors,
    distance,
    certainty: distance !== null && (metric ?? st.def.vectorIndexConfig.distance) === "cosine" ? 1 - distance / 2 : null,
    creationTimeUnix: o.created_at,
    lastUpdateTimeUnix: o.updated_at,
  };
}

/** Number of objects of a class matching `where` (all without one). @throws CollectionError 422 (unknown class, bad filter), 403 (may not read). */
export async function count(ctx: CollectionContext, caller: Caller, cls: string, where?: unknown): Promise<number> {
  const st = ctx.requireClass(cls, caller, "read");
  if (where === undefined || where === null) return st.count;
  const predicate = await compileFilter(ctx, caller, st, where);
  return (await allowListOf(ctx, st, where, predicate)).size;
}

