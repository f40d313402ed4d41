import type { StoredObject } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { type CollectionContext, type ClassState } from "./collection-context.js";
import type { SearchQuery, SearchResult } from "./collection-types.js";
import { CollectionError, unprocessable } from "./errors.js";
import { vectorizerOf } from "./schema.js";
import { exactSearch, type SearchHit } from "./vector-index.js";
import { compileWhere } from "./where-filter.js";

/* Search: vector (given, nearText, nearObject) and filtered, or a listing in insertion order; counts. Both need `read` (access.ts). */

/** With a `where` filter that leaves at most this many objects, the vector search is exact over them. */
const EXACT_FILTERED_MAX = 2_000;

/**
 * Nearest objects to a vector (given, embedded from `concepts`, or another object's), optionally filtered by
 * `where` and a largest distance / smallest certainty; without any of them, a listing in insertion order.
 * @throws CollectionError 422 for an unknown class, a bad filter, a vector of the wrong length, nearText without a
 * vectorizer; 403 when `caller` may not read the class.
 */
export async function search(ctx: CollectionContext, caller: Caller, q: SearchQuery): Promise<SearchResult[]> {
  const st = ctx.requireClass(q.class, caller, "read");
  const cls = st.def.class;
  const predicate = q.where === undefined || q.where === null ? null : compileWhere(q.where, st.def);
  const offset = q.offset ?? 0;
  const want = offset + q.limit;
  if (q.limit <= 0) return [];

  let query: Float32Array | null = null;
  if (q.vector) query = Float32Array.from(q.vector);
  else if (q.concepts) {
    const v = vectorizerOf(st.def);
    if (!v) throw unprocessable(`nearText: class ${cls} has no vectorizer (it was created with vectorizer "${st.def.vectorizer}"): search it with nearVector`);
    const text = q.concepts.join(" ");
    let vectors: number[][];
    try {
      vectors = await ctx.options.embedder.embedTexts(v.model, [text]);
    } catch (err) {
      throw new CollectionError(500, `nearText: vectorizing the concepts with ${v.model} failed: ${(err as Error).message}`);
    }
    query = Float32Array.from(vectors[0]!);
  } else if (q.nearObject) {
    const o = await ctx.options.store.getObject(cls, q.nearObject.toLowerCase(), true);
    if (!o) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} not found`);
    if (!o.vector) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} has no vector`);
    query = o.vector;
  }

  if (!query) {
    // A listing: insertion order, after a cursor.
    let afterSeq = 0;
    if (q.after) {
      const o = await ctx.options.store.getObject(cls, q.after.toLowerCase(), false);
      if (!o) throw unprocessable(`cursor: object ${cls}/${q.after} not found`);
      afterSeq = o.seq;
    }
    const found: StoredObject[] = [];
    await ctx.scan(st, predicate, (o) => (found.push(o), found.length < want), afterSeq, q.includeVector === true);
    return found.slice(offset).map((o) => result(o, null, st));
  }

  if (st.index.dims !== null && query.length !== st.index.dims) {
    throw unprocessable(`vector search: the query vector has length ${query.length}, but the vectors of class ${cls} have length ${st.index.dims}`);
  }
  const distance = st.def.vectorIndexConfig.distance;
  let hits: SearchHit[];
  if (!predicate) hits = await st.index.search(query, want);
  else {
    const allowed: number[] = [];
    await ctx.scan(st, predicate, (o) => (allowed.push(o.seq), true));
    if (allowed.length <= EXACT_FILTERED_MAX) {
      const withVectors = await ctx.options.store.objectsBySeq(cls, allowed, true);
      hits = exactSearch(distance, query, want, withVectors.filter((o) => o.vector).map((o) => [o.seq, o.vector!] as [number, Float32Array]));
    } else {
      hits = await st.index.search(query, want, allowed);
    }
  }
  let maxDistance = q.distance ?? Infinity;
  if (q.certainty !== undefined) {
    if (distance !== "cosine") throw unprocessable(`can't compute and return certainty when vector index is configured with ${distance} distance`);
    maxDistance = Math.min(maxDistance, 2 * (1 - q.certainty));
  }
  hits = hits.filter((h) => h.distance <= maxDistance + 1e-6).slice(offset);
  const objects = new Map((await ctx.options.store.objectsBySeq(cls, hits.map((h) => h.label), q.includeVector === true)).map((o) => [o.seq, o]));
  return hits.filter((h) => objects.has(h.label)).map((h) => result(objects.get(h.label)!, h.distance, st));
}

function result(o: StoredObject, distance: number | null, st: ClassState): SearchResult {
  return {
    class: o.class,
    id: o.id,
    properties: o.properties,
    vector: o.vector ? Array.from(o.vector) : null,
    distance,
    certainty: distance !== null && st.def.vectorIndexConfig.distance === "cosine" ? 1 - distance / 2 : null,
    creationTimeUnix: o.created_at,
    lastUpdateTimeUnix: o.updated_at,
  };
}

/** Number of objects of a class matching `where` (all without one). @throws CollectionError 422 (unknown class, bad filter), 403 (may not read). */
export async function count(ctx: CollectionContext, caller: Caller, cls: string, where?: unknown): Promise<number> {
  const st = ctx.requireClass(cls, caller, "read");
  if (where === undefined || where === null) return st.count;
  const predicate = compileWhere(where, st.def);
  let n = 0;
  await ctx.scan(st, predicate, () => (n++, true));
  return n;
}

