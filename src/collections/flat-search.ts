import type { ClassState, CollectionContext } from "./collection-context.js";
import type { Distance } from "./schema.js";
import { DEFAULT_VECTOR, type VectorSlot } from "./vector-config.js";
import { hnswSupports, type SearchHit, type VectorIndex } from "./vector-index.js";

/*
 * The vector half of a filtered search, as Weaviate does it: with an allow-list smaller than the slot's
 * `flatSearchCutoff` (default 40,000), an exact scan of the allowed vectors; otherwise HNSW's search restricted to
 * the allow-list. A flat index (`vectorIndexType: "flat"`, manhattan, hamming) holds its vectors and scans them itself.
 *
 * For HNSW the vectors live in the index worker's graph, where reading one back costs ~14 µs (hnswlib-node's getPoint
 * builds a JS array), and reading the allowed rows from the store ~20 µs each; so, like Weaviate's vector cache, a
 * cache per class and vector slot (up to `vectorCacheMaxObjects`, Weaviate's default 1e12) is filled from the store on
 * a miss and emptied per object by the write hooks (inverted-index.ts forwards them here). Vectors sit in one
 * Float32Array per slot, row by row, with their norms beside them, so a scan is a run of dot products. Measured on
 * this 2-core machine, loaded by other work (bench/filtered-search.ts, 20,000 random 64-d vectors, 10 % selectivity):
 * reading the 2,000 allowed vectors from SQLite per query held the server at 15 queries/s.
 */

/** The cached vectors of one slot: rows of `dims` floats in `data`, their norms, and the row of each seq. */
class Slab {
  data = new Float32Array(0);
  norms = new Float64Array(0);
  readonly rowOf = new Map<number, number>();
  private rows = 0;
  private free: number[] = [];

  constructor(readonly dims: number) {}

  get size(): number {
    return this.rowOf.size;
  }

  put(seq: number, v: Float32Array): void {
    if (v.length !== this.dims || this.rowOf.has(seq)) return;
    let row = this.free.pop();
    if (row === undefined) {
      if (this.rows * this.dims >= this.data.length) {
        const cap = Math.max(1024, this.rows * 2);
        const data = new Float32Array(cap * this.dims);
        data.set(this.data);
        const norms = new Float64Array(cap);
        norms.set(this.norms);
        this.data = data;
        this.norms = norms;
      }
      row = this.rows++;
    }
    this.data.set(v, row * this.dims);
    let n = 0;
    for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
    this.norms[row] = Math.sqrt(n);
    this.rowOf.set(seq, row);
  }

  drop(seq: number): void {
    const row = this.rowOf.get(seq);
    if (row === undefined) return;
    this.rowOf.delete(seq);
    this.free.push(row);
  }
}

interface Cache {
  /** Bumped by every invalidation: a load that started before one does not fill the cache (it may be stale). */
  epoch: number;
  slots: Map<string, Slab>;
}
const caches = new WeakMap<ClassState, Cache>();

/** Objects just written or deleted (their seqs; null: all of the class's): their cached vectors are dropped. Call after the write. */
export function vectorCacheInvalidated(st: ClassState, seqs: readonly number[] | null): void {
  const c = caches.get(st);
  if (!c) return;
  c.epoch++;
  if (seqs === null) return void c.slots.clear();
  for (const slab of c.slots.values()) for (const s of seqs) slab.drop(s);
}

/**
 * The `k` allowed objects nearest to `query` in one vector slot, nearest first (exact below flatSearchCutoff, ties:
 * lower seq first).
 * @param allowed seqs a `where` filter let through.
 * @throws Error when the store cannot be read.
 */
export async function filteredVectorSearch(ctx: CollectionContext, st: ClassState, slot: VectorSlot, index: VectorIndex, query: Float32Array, k: number, allowed: readonly number[]): Promise<SearchHit[]> {
  const cfg = slot.indexConfig;
  const cutoff = typeof cfg.flatSearchCutoff === "number" ? cfg.flatSearchCutoff : 40_000;
  if (slot.indexType === "flat" || !hnswSupports(cfg.distance) || allowed.length >= cutoff) return index.search(query, k, allowed);
  const slab = await cachedSlab(ctx, st, slot, query.length, allowed);
  return nearest(cfg.distance, query, k, allowed, slab);
}

/** The slot's slab holding every allowed vector (misses read from the store; a private one when the cache cannot take them). */
async function cachedSlab(ctx: CollectionContext, st: ClassState, slot: VectorSlot, dims: number, seqs: readonly number[]): Promise<Slab> {
  let c = caches.get(st);
  if (!c) caches.set(st, (c = { epoch: 0, slots: new Map() }));
  let slab = c.slots.get(slot.name);
  if (!slab || slab.dims !== dims) c.slots.set(slot.name, (slab = new Slab(dims)));
  const cached = slab;
  // The usual case, a warm cache, costs one pass of lookups; the misses are collected only when there are some.
  if (cached.size >= seqs.length && seqs.every((s) => cached.rowOf.has(s))) return cached;
  const missing = seqs.filter((s) => !cached.rowOf.has(s));
  const epoch = c.epoch;
  const limit = typeof slot.indexConfig.vectorCacheMaxObjects === "number" ? slot.indexConfig.vectorCacheMaxObjects : Infinity;
  const loaded: [number, Float32Array][] = [];
  for (let i = 0; i < missing.length; i += 1000) {
    for (const o of await ctx.options.store.objectsBySeq(st.def.class, missing.slice(i, i + 1000), true)) {
      const v = slot.name === DEFAULT_VECTOR ? o.vector : (o.vectors?.[slot.name] ?? null);
      if (v) loaded.push([o.seq, v]);
    }
  }
  if (c.epoch === epoch && c.slots.get(slot.name) === cached && cached.size + loaded.length <= limit) {
    for (const [s, v] of loaded) cached.put(s, v);
    return cached;
  }
  // Stale for the cache or over its size: this query gets a slab of its own.
  const own = new Slab(dims);
  for (const s of seqs) {
    const row = cached.rowOf.get(s);
    if (row !== undefined) own.put(s, cached.data.subarray(row * dims, (row + 1) * dims));
  }
  for (const [s, v] of loaded) own.put(s, v);
  return own;
}

/** Exact k-nearest of the allowed seqs the slab holds, in Weaviate's distance, kept in a bounded sorted list. */
function nearest(distance: Distance, query: Float32Array, k: number, allowed: readonly number[], slab: Slab): SearchHit[] {
  if (k <= 0) return [];
  const { data, norms, rowOf, dims } = slab;
  // Rows and raw scores first (one tight loop per metric), then the k best of them.
  const rows = new Int32Array(allowed.length);
  const labels = new Float64Array(allowed.length);
  let n = 0;
  for (const label of allowed) {
    const row = rowOf.get(label);
    if (row === undefined) continue;
    rows[n] = row;
    labels[n++] = label;
  }
  const scores = new Float64Array(n);
  if (distance === "l2-squared") {
    for (let j = 0; j < n; j++) {
      const base = rows[j]! * dims;
      let d = 0;
      for (let i = 0; i < dims; i++) {
        const x = query[i]! - data[base + i]!;
        d += x * x;
      }
      scores[j] = d;
    }
  } else {
    let qn = 0;
    for (let i = 0; i < dims; i++) qn += query[i]! * query[i]!;
    qn = Math.sqrt(qn);
    const cosine = distance === "cosine";
    for (let j = 0; j < n; j++) {
      const base = rows[j]! * dims;
      let dot = 0;
      for (let i = 0; i < dims; i++) dot += query[i]! * data[base + i]!;
      const norm = norms[rows[j]!]!;
      scores[j] = !cosine ? -dot : qn === 0 || norm === 0 ? 1 : 1 - dot / (qn * norm);
    }
  }
  const top: SearchHit[] = [];
  for (let j = 0; j < n; j++) {
    const d = scores[j]!, label = labels[j]!;
    if (top.length === k) {
      const worst = top[k - 1]!;
      if (d > worst.distance || (d === worst.distance && label > worst.label)) continue;
      top.pop();
    }
    let i = top.length;
    while (i > 0 && (top[i - 1]!.distance > d || (top[i - 1]!.distance === d && top[i - 1]!.label > label))) i--;
    top.splice(i, 0, { label, distance: d });
  }
  return top;
}
