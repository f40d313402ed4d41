import type { StoredObject } from "../store/collection-store.js";
import type { Caller } from "./access.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import type { SearchQuery, SearchResult } from "./collection-types.js";
import { CollectionError, unprocessable } from "./errors.js";
import { allowListOf } from "./filter-plan.js";
import { filteredVectorSearch } from "./flat-search.js";
import { autocut } from "./hybrid.js";
import { keywordSearch } from "./keyword-search.js";
import { slotOf } from "./schema.js";
import { DEFAULT_VECTOR, type VectorSlot } from "./vector-config.js";
import { distanceFn } from "./vector-index.js";
import { embedForSlot } from "./vectorizers.js";
import type { Predicate } from "./where-filter.js";

/*
 * Multi-target vector search as Weaviate documents it (docs "Multiple target vectors", v1.26+; its
 * adapters/repos/db CombineMultiTargetResults and the GraphQL/gRPC target parsing):
 *   - each target vector (a target may appear once per query vector it is searched with) finds its `offset + limit`
 *     nearest candidates, filtered by `where`;
 *   - every candidate's distance in every target is then computed exactly from its stored vectors (Weaviate reads the
 *     missing ones the same way; with exact indexes the found ones are equal);
 *   - the distances are combined: minimum (the default of a bare list), sum, average, manualWeights (Σ wᵢ·dᵢ),
 *     relativeScore (Σ wᵢ·(dᵢ − minᵢ)/(maxᵢ − minᵢ), minᵢ/maxᵢ over the candidates; wᵢ when every candidate has the
 *     same dᵢ);
 *   - an object lacking one of the target vectors keeps its place under minimum (the smallest distance it has) and is
 *     dropped by every other combination (Weaviate removes it when a distance cannot be read);
 *   - results sort ascending on the combined distance, which `distance`, `limit`, `offset` and `autocut` apply to and
 *     which `_additional { distance }` / the gRPC metadata report. `certainty` is refused, as Weaviate does
 *     ("multiple target vectors are not supported with certainty"), and reported as null.
 */

/** How the distances of several target vectors combine into one (Weaviate's `combinationMethod`). */
export type TargetCombination = "minimum" | "sum" | "average" | "manualWeights" | "relativeScore";

/** The combination methods, by their GraphQL enum names. */
export const TARGET_COMBINATIONS: readonly TargetCombination[] = ["minimum", "sum", "average", "manualWeights", "relativeScore"];

/** What a dialect read of a search's targets, before checking: see resolveTargets. */
export interface TargetsInput {
  /** The target vectors as named (`targetVectors`), a name repeated once per query vector; may be empty when `vectorPerTarget` names them. */
  targetVectors?: string[];
  /** Absent: minimum. */
  combination?: TargetCombination;
  /** manualWeights / relativeScore: the weight of each target, a list for a target searched with several query vectors. */
  weights?: Record<string, number | number[]>;
  /** nearVector's query vectors by target (`vectorPerTarget` / `vector_for_targets`), in order; several for one target allowed. */
  vectorPerTarget?: [string, number[][]][];
}

/** A checked multi-target search: one entry per (target vector, query vector) searched. */
export interface MultiTargetQuery {
  /** Target vector of each entry (a name repeats when it is searched with several query vectors). */
  targets: string[];
  combination: TargetCombination;
  /** Weight of each entry (sum 1, average 1/n, manualWeights / relativeScore as given); null for minimum. */
  weights: number[] | null;
  /** Query vector of each entry when given per target; null: the search's vector, concepts or object for every entry. */
  vectors: number[][] | null;
}

/**
 * Checks a search's targets and lays them out one entry per query vector, as Weaviate does: a target named once
 * with several query vectors is searched once per vector; weights come per target (a list for several vectors).
 * @returns the entries; one entry is an ordinary single-target search (see applyTargets).
 * @throws CollectionError 422 naming the problem: no target, a vector per target missing or for a target not
 * searched, a weight missing (`weight for target b is not provided`), unused or of the wrong count, weights with a
 * combination that takes none.
 */
export function resolveTargets(input: TargetsInput): MultiTargetQuery {
  const combination = input.combination ?? "minimum";
  if (!TARGET_COMBINATIONS.includes(combination)) throw unprocessable(`unknown combination method ${JSON.stringify(combination)}: use one of ${TARGET_COMBINATIONS.join(", ")}`);
  let names = input.targetVectors ?? [];
  for (const n of names) if (typeof n !== "string" || n === "") throw unprocessable("targetVectors: each target vector must be a non-empty string");
  let vectors: number[][] | null = null;
  if (input.vectorPerTarget) {
    // Query vectors by target, merged in order (gRPC sends one entry per vector, GraphQL one per target).
    const per = new Map<string, number[][]>();
    for (const [name, vs] of input.vectorPerTarget) {
      if (vs.length === 0) throw unprocessable(`vectorPerTarget: no query vector given for target ${name}`);
      per.set(name, [...(per.get(name) ?? []), ...vs]);
    }
    if (names.length === 0) names = [...per].flatMap(([n, vs]) => vs.map(() => n));
    const counts = countOf(names);
    for (const n of per.keys()) if (!counts.has(n)) throw unprocessable(`vectorPerTarget: target ${n} is not one of the target vectors searched (${[...counts.keys()].join(", ")})`);
    const laidOut: string[] = [];
    vectors = [];
    for (const n of names) {
      const queue = per.get(n);
      if (!queue || queue.length === 0) throw unprocessable(`vectorPerTarget for target ${n} is not provided`);
      // Named once with several vectors: one entry per vector; named as often as it has vectors: one each.
      const take = counts.get(n) === 1 ? queue.length : 1;
      for (const v of queue.splice(0, take)) {
        laidOut.push(n);
        vectors.push(v);
      }
    }
    for (const [n, rest] of per) if (rest.length) throw unprocessable(`vectorPerTarget: target ${n} has more query vectors than targetVectors names it (${counts.get(n)})`);
    names = laidOut;
  }
  if (names.length === 0) throw unprocessable("targetVectors: name at least one target vector");
  return { targets: names, combination, weights: weightsOf(combination, names, input.weights), vectors };
}

function countOf(names: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return counts;
}

/** The weight of each entry: Weaviate's fixed ones for sum / average, the given ones for manualWeights / relativeScore. */
function weightsOf(combination: TargetCombination, names: readonly string[], given: Record<string, number | number[]> | undefined): number[] | null {
  const anyGiven = given !== undefined && Object.keys(given).length > 0;
  if (combination !== "manualWeights" && combination !== "relativeScore") {
    if (anyGiven) throw unprocessable(`weights are only used by the manualWeights and relativeScore combinations, not by ${combination}`);
    if (combination === "minimum") return null;
    return names.map(() => (combination === "sum" ? 1 : 1 / names.length));
  }
  const counts = countOf(names);
  for (const n of Object.keys(given ?? {})) if (!counts.has(n)) throw unprocessable(`weights: target ${n} is not one of the target vectors searched (${[...counts.keys()].join(", ")})`);
  const next = new Map<string, number>();
  return names.map((n) => {
    const w = given?.[n];
    if (w === undefined || w === null) throw unprocessable(`weight for target ${n} is not provided`);
    const list = Array.isArray(w) ? w : [w];
    if (list.length !== counts.get(n)) throw unprocessable(`weights: target ${n} is searched with ${counts.get(n)} query vector(s) but has ${list.length} weight(s)`);
    const i = next.get(n) ?? 0;
    next.set(n, i + 1);
    const x = list[i];
    if (typeof x !== "number" || !Number.isFinite(x)) throw unprocessable(`weights: the weight of target ${n} must be a number`);
    return x;
  });
}

/**
 * Puts checked targets on a search: one entry is an ordinary search of that vector (its query vector, when given
 * per target, becomes the search's or the hybrid's vector); several go to `q.targets` (multiTargetSearch).
 */
export function applyTargets(q: SearchQuery, mt: MultiTargetQuery): void {
  if (mt.targets.length > 1) {
    q.targets = mt;
    return;
  }
  q.targetVector = mt.targets[0]!;
  if (mt.vectors) {
    if (q.hybrid) q.hybrid = { ...q.hybrid, vector: mt.vectors[0]! };
    else q.vector = mt.vectors[0]!;
  }
}

type Render = (o: StoredObject, distance: number | null) => SearchResult;
type VectorSearch = (ctx: CollectionContext, caller: Caller, q: SearchQuery) => Promise<SearchResult[]>;

/**
 * A search with several target vectors (`q.targets`): nearVector / nearText / nearObject combined as described
 * above, or a hybrid search whose vector part is that combined search (keyword-search.ts runs the fusion).
 * @param predicate the compiled `where` (null: none); `render` turns an object and its distance into a hit;
 * `vectorSearch` is search.ts's search, which the hybrid's vector part goes back through.
 * @returns hits nearest first, `distance` the combined distance, `certainty` null.
 * @throws CollectionError 422 for an unknown target, a query vector of the wrong length, a target without a
 * vectorizer under nearText, an object without one of the vectors under nearObject, certainty, sort, a cursor,
 * bm25; 500 when a vectorizer fails.
 */
export async function multiTargetSearch(ctx: CollectionContext, caller: Caller, st: ClassState, q: SearchQuery, predicate: Predicate | null, render: Render, vectorSearch: VectorSearch): Promise<SearchResult[]> {
  const mt = q.targets!;
  if (q.bm25) throw unprocessable("bm25: targetVectors is only valid with a vector or hybrid search");
  if (q.hybrid) {
    // The hybrid checks its first target's vectorizer, and needs a vector when per-target ones are given (they win).
    const first: SearchQuery = { ...q, targets: undefined, targetVector: mt.targets[0], hybrid: mt.vectors && !q.hybrid.vector ? { ...q.hybrid, vector: mt.vectors[0]! } : q.hybrid };
    return keywordSearch(ctx, caller, st, first, predicate, (o) => render(o, null), (c, cl, sub) => vectorSearch(c, cl, { ...sub, targets: mt }));
  }
  if (q.certainty !== undefined) throw unprocessable("multiple target vectors are not supported with certainty");
  if (q.sort) throw unprocessable("sort cannot be combined with a vector search (nearVector, nearText, nearObject): results are ordered by distance");
  if (q.after) throw unprocessable("the cursor (after) cannot be combined with a search");
  if (q.autocut !== undefined && (!Number.isInteger(q.autocut) || q.autocut < 0)) throw unprocessable("autocut must be an integer >= 0");
  const offset = q.offset ?? 0;
  const want = offset + q.limit;
  if (q.limit <= 0) return [];

  const entries = await queryVectors(ctx, st, q, mt);
  const allowed = predicate ? [...(await allowListOf(ctx, st, q.where, predicate))] : null;
  const candidates = new Set<number>();
  for (const e of entries) {
    const index = ctx.indexOf(st, e.slot.name);
    if (index.dims !== null && e.query.length !== index.dims) {
      throw unprocessable(`vector search: the query vector has length ${e.query.length}, but the vectors ${e.slot.name} of class ${st.def.class} have length ${index.dims}`);
    }
    const hits = allowed ? await filteredVectorSearch(ctx, st, e.slot, index, e.query, want, allowed) : await index.search(e.query, want);
    for (const h of hits) candidates.add(h.label);
  }
  const objects = await ctx.options.store.objectsBySeq(st.def.class, [...candidates], true);
  const fns = entries.map((e) => distanceFn(e.slot.indexConfig.distance));
  const rows = objects.map((o) => ({
    o,
    distances: entries.map((e, i) => {
      const v = vectorOf(o, e.slot.name);
      return v && v.length === e.query.length ? fns[i]!(e.query, v) : null;
    }),
  }));
  let combined = combine(mt, rows)
    .filter((r) => r.distance <= (q.distance ?? Infinity) + 1e-6)
    .sort((a, b) => a.distance - b.distance || a.o.seq - b.o.seq)
    .slice(0, want);
  if (q.autocut) combined = combined.slice(0, autocut(combined.map((r) => r.distance), q.autocut));
  return combined.slice(offset).map(({ o, distance }) => {
    const hit = { ...render(o, distance), certainty: null };
    // The vectors were read to compute distances; they are returned only when asked for.
    return q.includeVector ? hit : { ...hit, vector: null, vectors: null };
  });
}

/** One (target, query vector) entry ready to search. */
interface Entry {
  slot: VectorSlot;
  query: Float32Array;
}

/** Each entry's query vector: given per target, the search's vector, the concepts embedded per target, or the object's vectors. */
async function queryVectors(ctx: CollectionContext, st: ClassState, q: SearchQuery, mt: MultiTargetQuery): Promise<Entry[]> {
  const cls = st.def.class;
  const slots = mt.targets.map((n) => slotOf(st.def, n));
  if (mt.vectors) return slots.map((slot, i) => ({ slot, query: Float32Array.from(mt.vectors![i]!) }));
  if (q.vector) return slots.map((slot) => ({ slot, query: Float32Array.from(q.vector!) }));
  if (q.concepts) {
    if (q.concepts.length === 0) throw unprocessable("nearText: give at least one concept");
    const byName = new Map<string, Float32Array>();
    for (const slot of slots) {
      if (byName.has(slot.name)) continue;
      if (slot.module === "none") throw unprocessable(`nearText: vector ${slot.name} of class ${cls} has no vectorizer (it was created with vectorizer "none"): search it with nearVector`);
      try {
        // Each concept embedded alone, the query their mean: as search.ts (and Weaviate's text2vec modules) do.
        byName.set(slot.name, meanOf(await embedForSlot(ctx.options.embedder, slot, q.concepts)));
      } catch (err) {
        throw new CollectionError(500, `nearText: vectorizing the concepts with ${slot.module} failed: ${(err as Error).message}`);
      }
    }
    return slots.map((slot) => ({ slot, query: byName.get(slot.name)! }));
  }
  if (q.nearObject) {
    const o = await ctx.options.store.getObject(cls, q.nearObject.toLowerCase(), true);
    if (!o) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} not found`);
    return slots.map((slot) => {
      const v = vectorOf(o, slot.name);
      if (!v) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} has no vector ${slot.name}`);
      return { slot, query: v };
    });
  }
  throw unprocessable("targetVectors is only valid with a vector search (nearVector, nearText, nearObject, hybrid)");
}

/** The element-wise mean of equally long vectors, as Float32. */
function meanOf(vectors: number[][]): Float32Array {
  const sums = new Float64Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < sums.length; i++) sums[i]! += v[i]!;
  return Float32Array.from(sums, (x) => x / vectors.length);
}

/** An object's stored vector under a name (`default`: the legacy one). */
function vectorOf(o: StoredObject, name: string): Float32Array | null {
  return (name === DEFAULT_VECTOR ? (o.vector ?? o.vectors?.[name]) : o.vectors?.[name]) ?? null;
}

/**
 * The combined distance of each object from its per-entry distances (null: it lacks that vector), by Weaviate's
 * rules: minimum over the distances it has; weighted sums need every distance; relativeScore normalises each
 * entry's distances over the objects kept.
 */
function combine<T>(mt: MultiTargetQuery, rows: { o: T; distances: (number | null)[] }[]): { o: T; distance: number }[] {
  if (mt.combination === "minimum") {
    return rows.flatMap(({ o, distances }) => {
      const have = distances.filter((d): d is number => d !== null);
      return have.length ? [{ o, distance: Math.min(...have) }] : [];
    });
  }
  const complete = rows.filter((r) => r.distances.every((d) => d !== null)) as { o: T; distances: number[] }[];
  const w = mt.weights!;
  if (mt.combination !== "relativeScore") return complete.map(({ o, distances }) => ({ o, distance: distances.reduce((s, d, i) => s + w[i]! * d, 0) }));
  const lo = w.map((_, i) => Math.min(...complete.map((r) => r.distances[i]!)));
  const hi = w.map((_, i) => Math.max(...complete.map((r) => r.distances[i]!)));
  return complete.map(({ o, distances }) => ({
    o,
    distance: distances.reduce((s, d, i) => s + w[i]! * (hi[i] === lo[i] ? 1 : (d - lo[i]!) / (hi[i]! - lo[i]!)), 0),
  }));
}
