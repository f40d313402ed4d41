import type { StoredObject } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import { bm25Search } from "./bm25.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import type { SearchQuery, SearchResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { autocut, fuse, fusionTypeOf, type SubHit } from "./hybrid.js";
import { allowListOf } from "./filter-plan.js";
import { invertedIndexOf } from "./inverted-index.js";
import { slotOf } from "./schema.js";
import type { Predicate } from "./where-filter.js";

/*
 * BM25 and hybrid searches over a class: the keyword part from the inverted index (inverted-index.ts, bm25.ts), the
 * vector part through the ordinary vector search (search.ts, passed in as `vectorSearch`), fused by hybrid.ts.
 */

/** Each part of a hybrid search looks at least this many candidates (so normalization sees more than one page). */
const HYBRID_CANDIDATES = 100;

type VectorSearch = (ctx: CollectionContext, caller: Caller, q: SearchQuery) => Promise<SearchResult[]>;
type Render = (o: StoredObject) => SearchResult;

/**
 * A `bm25` or `hybrid` search (exactly one set in `q`), filtered by `predicate`, paged by limit/offset, cut by autocut.
 * @throws CollectionError 422 for bad options (unknown or unsearchable property, alpha outside 0..1, a vector of the
 * wrong length, no vector and no vectorizer with alpha > 0, sort or a cursor with a keyword search).
 */
export async function keywordSearch(ctx: CollectionContext, caller: Caller, st: ClassState, q: SearchQuery, predicate: Predicate | null, render: Render, vectorSearch: VectorSearch): Promise<SearchResult[]> {
  const def = st.def;
  const kind = q.bm25 ? "bm25" : "hybrid";
  if (q.sort) throw unprocessable(`${kind}: sort cannot be combined with a ${kind} search (results are ordered by score)`);
  if (q.after) throw unprocessable(`${kind}: the cursor (after) cannot be combined with a search`);
  if (q.vector || q.concepts || q.nearObject) throw unprocessable(`${kind}: cannot be combined with another search operator (nearVector, nearText, nearObject)`);
  const offset = q.offset ?? 0;
  const want = offset + q.limit;
  const index = await invertedIndexOf(ctx, st);
  const allowed = predicate ? await allowListOf(ctx, st, q.where, predicate) : null;

  if (q.bm25) {
    if (q.targetVector) throw unprocessable("bm25: targetVectors is only valid with a vector or hybrid search");
    let hits = bm25Search(index, def, q.bm25, allowed, q.autocut ? Math.max(want, HYBRID_CANDIDATES) : want);
    if (q.autocut) hits = hits.slice(0, autocut(hits.map((h) => h.score), q.autocut));
    hits = hits.slice(offset, want);
    const objects = new Map((await ctx.options.store.objectsBySeq(def.class, hits.map((h) => h.seq), q.includeVector === true)).map((o) => [o.seq, o]));
    return hits.filter((h) => objects.has(h.seq)).map((h) => ({ ...render(objects.get(h.seq)!), score: h.score, explainScore: h.explain }));
  }

  const h = q.hybrid!;
  const alpha = h.alpha ?? 0.75;
  if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) throw unprocessable(`hybrid: alpha must be a number between 0 and 1, got ${JSON.stringify(alpha)}`);
  const fusion = fusionTypeOf(h.fusionType);
  const candidates = Math.max(want, HYBRID_CANDIDATES);
  const keyword = alpha < 1 ? bm25Search(index, def, h, allowed, candidates) : [];
  let vectorHits: SearchResult[] = [];
  const slot = slotOf(def, q.targetVector);
  if (alpha > 0) {
    if (!h.vector && slot.module === "none") throw unprocessable(`hybrid: vector ${slot.name} of class ${def.class} has no vectorizer: give the query's vector (vector), or search keywords only (alpha 0)`);
    // The vector part: the given vector, else the query embedded by the class's vectorizer (nearText's path).
    const sub: SearchQuery = { class: def.class, limit: candidates, where: q.where, targetVector: q.targetVector, includeVector: q.includeVector };
    if (h.vector) sub.vector = h.vector;
    else sub.concepts = [h.query];
    if (h.maxVectorDistance !== undefined) sub.distance = h.maxVectorDistance;
    vectorHits = await vectorSearch(ctx, caller, sub);
  }
  const keywordObjects = new Map((await ctx.options.store.objectsBySeq(def.class, keyword.map((k) => k.seq), q.includeVector === true)).map((o) => [o.seq, o]));
  const byId = new Map<string, SearchResult>();
  const keywordSub: SubHit[] = [];
  const explainOf = new Map<number, string>();
  for (const k of keyword) {
    const o = keywordObjects.get(k.seq);
    if (!o) continue;
    byId.set(o.id, render(o));
    keywordSub.push({ seq: k.seq, value: k.score });
    explainOf.set(k.seq, k.explain);
  }
  // Vector hits carry ids; give them the seqs of the keyword set where the object is in both, fresh ones otherwise.
  const seqOfId = new Map([...keywordObjects.values()].map((o) => [o.id, o.seq]));
  let fresh = -1;
  const vectorSub: SubHit[] = vectorHits.map((r) => {
    if (!byId.has(r.id)) byId.set(r.id, r);
    let seq = seqOfId.get(r.id);
    if (seq === undefined) seqOfId.set(r.id, (seq = fresh--));
    return { seq, value: r.distance ?? 0 };
  });
  const idOfSeq = new Map([...seqOfId].map(([id, seq]) => [seq, id]));
  let fused = fuse(keywordSub, vectorSub, alpha, fusion);
  if (q.autocut) fused = fused.slice(0, autocut(fused.map((f) => f.score), q.autocut));
  return fused.slice(offset, want).map((f) => {
    const base = byId.get(idOfSeq.get(f.seq)!)!;
    const vectorPart = vectorHits.find((r) => r.id === base.id);
    return {
      ...base,
      distance: vectorPart?.distance ?? null,
      certainty: vectorPart?.certainty ?? null,
      score: f.score,
      explainScore: `(hybrid, ${fusion}, alpha ${alpha}) ${f.explain}${explainOf.has(f.seq) ? ` (bm25${explainOf.get(f.seq)})` : ""}`,
    };
  });
}
