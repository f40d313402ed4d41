/**
 * Vector indexes of the collections.
 *
 * HNSW comes from hnswlib-node (the reference C++ hnswlib). Both libraries the design names were measured with
 * `npx tsx bench/vector-libs.ts`: 20,000 uniform random 128-d vectors (the hardest case for HNSW), 200 queries, k=10,
 * M=16, efConstruction=128, recall against exact search, on a shared 2-vCPU VM (rates are ±30 %):
 *
 *   library                metric  insert/s  query/s ef=64  recall@10 ef=64 / ef=128
 *   hnswlib-node           cosine  3,500     2,800          0.494 / 0.674
 *   usearch, 1 thread      cosine  2,700     4,300          0.496 / 0.672
 *   usearch, all threads   cosine  6,300     7,000          0.473 / 0.689
 *   hnswlib-node           l2sq    5,100     9,600          0.586 / 0.765
 *   usearch, 1 thread      l2sq    5,300     9,000          0.578 / 0.764
 *   usearch, all threads   l2sq    10,200    9,900          0.579 / 0.757
 *
 * Recall is the same at the same graph settings and single-thread speed is on a par; usearch's multi-threaded batch
 * add is ~2x faster on 2 cores. hnswlib-node is used because its search takes a label filter (`where` + nearVector)
 * and it saves and loads its graph as one file. On real vectors recall is far higher (GloVe sentence vectors: 0.96 at
 * the default ef; see bench/collections.ts). Neither has manhattan or a float hamming (usearch's hamming is over
 * bits), so those distances, and `vectorIndexType: "flat"`, use an exact scan. Inserting is ~80 % of the server's CPU
 * during an import with given vectors.
 *
 * Distances are Weaviate's: cosine = 1 − cos, dot = −a·b, l2-squared = Σ(a−b)², manhattan = Σ|a−b|,
 * hamming = number of differing dimensions.
 */
import { existsSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import hnswlib from "hnswlib-node";
import type { Distance, VectorIndexConfig } from "./schema.js";

/** One search hit: the object's label (its seq) and its distance to the query. */
export interface SearchHit {
  label: number;
  distance: number;
}

/** A vector index over labelled vectors of one fixed length. */
export interface VectorIndex {
  /** Vector length, fixed by the first vector; null while empty and never used. */
  readonly dims: number | null;
  /** Live vectors. */
  readonly size: number;
  /** Whether it changed since it was last saved. */
  readonly dirty: boolean;
  /** Adds a vector, or replaces the one under `label` (`isNew` false). The caller has checked the length. */
  upsert(label: number, vector: Float32Array, isNew: boolean): void;
  remove(label: number): void;
  /** The `k` nearest labels, nearest first; `allow` restricts the labels considered. */
  search(query: Float32Array, k: number, allow?: (label: number) => boolean): SearchHit[];
  /** Saves it (when it can) with the store version it reflects. */
  save(version: number): Promise<void>;
  /** Removes its files. */
  drop(): Promise<void>;
}

/** Exact distance between two vectors in Weaviate's definition of each metric. */
export function distanceFn(distance: Distance): (a: Float32Array, b: Float32Array) => number {
  switch (distance) {
    case "cosine":
      return (a, b) => {
        let dot = 0, na = 0, nb = 0;
        for (let i = 0; i < a.length; i++) {
          dot += a[i]! * b[i]!;
          na += a[i]! * a[i]!;
          nb += b[i]! * b[i]!;
        }
        return na === 0 || nb === 0 ? 1 : 1 - dot / Math.sqrt(na * nb);
      };
    case "dot":
      return (a, b) => {
        let dot = 0;
        for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
        return -dot;
      };
    case "l2-squared":
      return (a, b) => {
        let s = 0;
        for (let i = 0; i < a.length; i++) {
          const d = a[i]! - b[i]!;
          s += d * d;
        }
        return s;
      };
    case "manhattan":
      return (a, b) => {
        let s = 0;
        for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
        return s;
      };
    case "hamming":
      return (a, b) => {
        let s = 0;
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) s++;
        return s;
      };
  }
}

/** Exact k-nearest over (label, vector) pairs. */
export function exactSearch(distance: Distance, query: Float32Array, k: number, entries: Iterable<[number, Float32Array]>, allow?: (label: number) => boolean): SearchHit[] {
  const fn = distanceFn(distance);
  const hits: SearchHit[] = [];
  for (const [label, v] of entries) {
    if (allow && !allow(label)) continue;
    hits.push({ label, distance: fn(query, v) });
  }
  hits.sort((x, y) => x.distance - y.distance || x.label - y.label);
  return hits.slice(0, k);
}

/** Whether hnswlib can index this metric. */
export const hnswSupports = (distance: Distance) => distance === "cosine" || distance === "dot" || distance === "l2-squared";

const SPACE = { cosine: "cosine", dot: "ip", "l2-squared": "l2" } as const;
const INITIAL_CAPACITY = 1024;

/** What a saved HNSW index was built from; it is loaded only when all of it still holds. */
interface HnswMeta {
  version: number;
  dims: number;
  distance: Distance;
  maxConnections: number;
  efConstruction: number;
}

/** HNSW (hnswlib-node) for cosine, dot and l2-squared. Saved to `<path>` with `<path>.json` beside it. */
class HnswIndex implements VectorIndex {
  private index: hnswlib.HierarchicalNSW | null = null;
  dims: number | null = null;
  size = 0;
  dirty = false;

  constructor(
    private readonly path: string | null,
    private readonly distance: "cosine" | "dot" | "l2-squared",
    private readonly config: VectorIndexConfig,
  ) {}

  /** Loads the saved index when it matches `version` and the settings. @returns whether it did. */
  async load(version: number, live: number): Promise<boolean> {
    if (!this.path || !existsSync(this.path) || !existsSync(this.path + ".json")) return false;
    try {
      const meta = JSON.parse(await readFile(this.path + ".json", "utf8")) as HnswMeta;
      if (meta.version !== version || meta.distance !== this.distance || meta.maxConnections !== this.config.maxConnections || meta.efConstruction !== this.config.efConstruction) return false;
      const index = new hnswlib.HierarchicalNSW(SPACE[this.distance], meta.dims);
      index.readIndexSync(this.path);
      // Deleted elements keep their slots; past a third of the index, rebuild instead.
      if (index.getCurrentCount() > 0 && (index.getCurrentCount() - live) / index.getCurrentCount() > 1 / 3) return false;
      this.index = index;
      this.dims = meta.dims;
      this.size = live;
      return true;
    } catch {
      return false;
    }
  }

  private create(dims: number): hnswlib.HierarchicalNSW {
    const index = new hnswlib.HierarchicalNSW(SPACE[this.distance], dims);
    index.initIndex({ maxElements: INITIAL_CAPACITY, m: this.config.maxConnections, efConstruction: this.config.efConstruction, randomSeed: 100 });
    this.dims = dims;
    return index;
  }

  upsert(label: number, vector: Float32Array, isNew: boolean): void {
    const index = (this.index ??= this.create(vector.length));
    if (index.getCurrentCount() >= index.getMaxElements()) index.resizeIndex(index.getMaxElements() * 2);
    // Adding an existing label replaces its vector (and revives it if it was deleted).
    index.addPoint(Array.from(vector), label);
    if (isNew) this.size++;
    this.dirty = true;
  }

  remove(label: number): void {
    if (!this.index) return;
    try {
      this.index.markDelete(label);
      this.size--;
      this.dirty = true;
    } catch {
      // not in the index, or already deleted
    }
  }

  search(query: Float32Array, k: number, allow?: (label: number) => boolean): SearchHit[] {
    if (!this.index || this.size === 0 || k <= 0) return [];
    const c = this.config;
    const ef = c.ef > 0 ? c.ef : Math.min(Math.max(k * c.dynamicEfFactor, c.dynamicEfMin), c.dynamicEfMax);
    this.index.setEf(Math.max(ef, k));
    const { neighbors, distances } = this.index.searchKnn(Array.from(query), Math.min(k, this.index.getMaxElements()), allow);
    // hnswlib's inner-product space answers 1 − a·b; Weaviate's dot distance is −a·b.
    const shift = this.distance === "dot" ? -1 : 0;
    return neighbors.map((label, i) => ({ label, distance: distances[i]! + shift }));
  }

  async save(version: number): Promise<void> {
    if (!this.path || !this.dirty) return;
    if (!this.index) return this.drop();
    this.index.writeIndexSync(this.path + ".partial");
    await rename(this.path + ".partial", this.path);
    const meta: HnswMeta = { version, dims: this.dims!, distance: this.distance, maxConnections: this.config.maxConnections, efConstruction: this.config.efConstruction };
    await writeFile(this.path + ".json", JSON.stringify(meta));
    this.dirty = false;
  }

  async drop(): Promise<void> {
    if (!this.path) return;
    await rm(this.path, { force: true });
    await rm(this.path + ".json", { force: true });
  }
}

/** Exact scan over vectors held in memory: manhattan, hamming, and `vectorIndexType: "flat"`. Rebuilt from the store at start. */
class FlatIndex implements VectorIndex {
  private readonly vectors = new Map<number, Float32Array>();
  dims: number | null = null;
  dirty = false;

  constructor(private readonly distance: Distance) {}

  get size(): number {
    return this.vectors.size;
  }

  upsert(label: number, vector: Float32Array): void {
    this.dims ??= vector.length;
    this.vectors.set(label, vector);
  }

  remove(label: number): void {
    this.vectors.delete(label);
  }

  search(query: Float32Array, k: number, allow?: (label: number) => boolean): SearchHit[] {
    return exactSearch(this.distance, query, k, this.vectors, allow);
  }

  async save(): Promise<void> {}
  async drop(): Promise<void> {}
}

/**
 * Opens the index of a class: the saved HNSW index when it reflects `version`, else one rebuilt from the stored
 * vectors `stored()` yields (label = seq).
 * @param path file of the saved index (null: never saved).
 * @param live how many stored objects have a vector.
 */
export async function openVectorIndex(opts: {
  path: string | null;
  indexType: "hnsw" | "flat";
  config: VectorIndexConfig;
  version: number;
  live: number;
  stored: () => AsyncIterable<{ label: number; vector: Float32Array }>;
}): Promise<VectorIndex> {
  const distance = opts.config.distance;
  const index: VectorIndex =
    opts.indexType === "hnsw" && hnswSupports(distance) ? new HnswIndex(opts.path, distance as "cosine" | "dot" | "l2-squared", opts.config) : new FlatIndex(distance);
  if (index instanceof HnswIndex && (await index.load(opts.version, opts.live))) return index;
  for await (const { label, vector } of opts.stored()) index.upsert(label, vector, true);
  if (index instanceof HnswIndex && index.size > 0) await index.save(opts.version);
  return index;
}
