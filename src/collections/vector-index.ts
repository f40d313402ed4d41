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
 * the default ef; see bench/collections.ts). The HNSW indexes live in one worker thread (index-worker.ts): inserting
 * thousands of vectors takes seconds, which on the event loop stalled every request and tenant. Neither has manhattan or a float hamming (usearch's hamming is over
 * bits), so those distances, and `vectorIndexType: "flat"`, use an exact scan. Inserting is ~80 % of the server's CPU
 * during an import with given vectors.
 *
 * Distances are Weaviate's: cosine = 1 − cos, dot = −a·b, l2-squared = Σ(a−b)², manhattan = Σ|a−b|,
 * hamming = number of differing dimensions.
 */
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { startModuleWorker, WorkerChannel } from "../providers/worker-thread.js";
import type { Distance, VectorIndexConfig } from "./schema.js";

/** One search hit: the object's label (its seq) and its distance to the query. */
export interface SearchHit {
  label: number;
  distance: number;
}

/** A vector to add under a label; `isNew` false when it replaces the label's vector (the size stays). */
export interface VectorEntry {
  label: number;
  vector: Float32Array;
  isNew: boolean;
}

/**
 * A vector index over labelled vectors of one fixed length. Writes and searches are asynchronous (HNSW work runs in a
 * worker thread) and take effect in call order: a search called after a write's promise resolved sees the write.
 */
export interface VectorIndex {
  /** Vector length, fixed by the first vector; null while empty and never used. */
  readonly dims: number | null;
  /** Live vectors. */
  readonly size: number;
  /** Whether it changed since it was last saved. */
  readonly dirty: boolean;
  /** Adds vectors, or replaces those under existing labels. The caller has checked the lengths. */
  upsert(entries: readonly VectorEntry[]): Promise<void>;
  /** Removes labels; labels not in the index are ignored. */
  remove(labels: readonly number[]): Promise<void>;
  /** The `k` nearest labels, nearest first; `allow` restricts the labels considered. */
  search(query: Float32Array, k: number, allow?: readonly number[]): Promise<SearchHit[]>;
  /** Saves it (when it can) with the store version it reflects. */
  save(version: number): Promise<void>;
  /** Removes its files (and frees it). */
  drop(): Promise<void>;
  /** Frees its memory without saving (the service saved it before). */
  close(): Promise<void>;
  /**
   * Takes the search settings of a changed index config (`ef`, `dynamicEfMin|Max|Factor`) for the searches after it;
   * the settings the graph is built with (distance, maxConnections, efConstruction) stay as they are.
   */
  configure(config: VectorIndexConfig): void;
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
/**
 * Vectors per message to the index worker. A chunk is tens to hundreds of ms of inserts there; searches of other
 * requests queue behind one chunk, not behind a whole batch.
 */
const INSERT_CHUNK = 256;

/** What a saved HNSW index was built from; it is loaded only when all of it still holds. */
interface HnswMeta {
  version: number;
  dims: number;
  distance: Distance;
  maxConnections: number;
  efConstruction: number;
}

/** The one worker thread owning every HNSW index of this process (index-worker.ts), started on first use. */
let indexWorker: WorkerChannel | null = null;
let nextHandle = 1;
const worker = () =>
  (indexWorker ??= new WorkerChannel(
    () => startModuleWorker(new URL("./index-worker.js", import.meta.url)),
    // The indexes were in the thread that died; their handles now fail with "not open" (restart the server).
    () => undefined,
  ));

/**
 * HNSW (hnswlib-node) for cosine, dot and l2-squared, held by the index worker thread under a handle. Saved to
 * `<path>` with `<path>.json` beside it.
 */
class HnswIndex implements VectorIndex {
  private readonly handle = nextHandle++;
  /** Whether the worker holds the index yet (it is created by the first insert). */
  private created = false;
  dims: number | null = null;
  size = 0;
  dirty = false;

  constructor(
    private readonly path: string | null,
    private readonly distance: "cosine" | "dot" | "l2-squared",
    private config: VectorIndexConfig,
  ) {}

  configure(config: VectorIndexConfig): void {
    this.config = { ...this.config, ef: config.ef, dynamicEfMin: config.dynamicEfMin, dynamicEfMax: config.dynamicEfMax, dynamicEfFactor: config.dynamicEfFactor };
  }

  /** Loads the saved index when it matches `version` and the settings. @returns whether it did. */
  async load(version: number, live: number): Promise<boolean> {
    if (!this.path || !existsSync(this.path) || !existsSync(this.path + ".json")) return false;
    try {
      const meta = JSON.parse(await readFile(this.path + ".json", "utf8")) as HnswMeta;
      if (meta.version !== version || meta.distance !== this.distance || meta.maxConnections !== this.config.maxConnections || meta.efConstruction !== this.config.efConstruction) return false;
      if (!(await worker().call<boolean>("load", { h: this.handle, path: this.path, space: SPACE[this.distance], dims: meta.dims, live }))) return false;
      this.created = true;
      this.dims = meta.dims;
      this.size = live;
      return true;
    } catch {
      return false;
    }
  }

  async upsert(entries: readonly VectorEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const dims = (this.dims ??= entries[0]!.vector.length);
    for (let start = 0; start < entries.length; start += INSERT_CHUNK) {
      const chunk = entries.slice(start, start + INSERT_CHUNK);
      const labels = Float64Array.from(chunk, (e) => e.label);
      const vectors = new Float32Array(chunk.length * dims);
      chunk.forEach((e, i) => vectors.set(e.vector, i * dims));
      const init = this.created ? undefined : { space: SPACE[this.distance], dims, maxElements: INITIAL_CAPACITY, m: this.config.maxConnections, efConstruction: this.config.efConstruction };
      this.dirty = true;
      await worker().call("upsert", { h: this.handle, init, labels, vectors }, [labels.buffer, vectors.buffer]);
      this.created = true;
      for (const e of chunk) if (e.isNew) this.size++;
    }
  }

  async remove(labels: readonly number[]): Promise<void> {
    if (!this.created || labels.length === 0) return;
    const list = Float64Array.from(labels);
    this.dirty = true;
    this.size -= await worker().call<number>("remove", { h: this.handle, labels: list }, [list.buffer]);
  }

  async search(query: Float32Array, k: number, allow?: readonly number[]): Promise<SearchHit[]> {
    if (!this.created || this.size === 0 || k <= 0) return [];
    const c = this.config;
    const ef = c.ef > 0 ? c.ef : Math.min(Math.max(k * c.dynamicEfFactor, c.dynamicEfMin), c.dynamicEfMax);
    const q = Float32Array.from(query);
    const list = allow ? Float64Array.from(allow) : undefined;
    const { neighbors, distances } = await worker().call<{ neighbors: number[]; distances: number[] }>(
      "search",
      { h: this.handle, query: q, k, ef: Math.max(ef, k), allow: list },
      list ? [q.buffer, list.buffer] : [q.buffer],
    );
    // hnswlib's inner-product space answers 1 − a·b; Weaviate's dot distance is −a·b.
    const shift = this.distance === "dot" ? -1 : 0;
    return neighbors.map((label, i) => ({ label, distance: distances[i]! + shift }));
  }

  async save(version: number): Promise<void> {
    if (!this.path || !this.dirty) return;
    if (!this.created) return this.drop();
    // Cleared first: a write landing while the file is written marks it dirty again.
    this.dirty = false;
    try {
      await worker().call("save", { h: this.handle, path: this.path });
      const meta: HnswMeta = { version, dims: this.dims!, distance: this.distance, maxConnections: this.config.maxConnections, efConstruction: this.config.efConstruction };
      await writeFile(this.path + ".json", JSON.stringify(meta));
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  async drop(): Promise<void> {
    await this.close();
    if (!this.path) return;
    await rm(this.path, { force: true });
    await rm(this.path + ".json", { force: true });
  }

  async close(): Promise<void> {
    if (!this.created) return;
    this.created = false;
    await worker().call("free", { h: this.handle });
  }
}

/** Exact scan over vectors held in memory: manhattan, hamming, and `vectorIndexType: "flat"`. Rebuilt from the store at start. */
class FlatIndex implements VectorIndex {
  private readonly vectors = new Map<number, Float32Array>();
  dims: number | null = null;
  dirty = false;

  constructor(private readonly distance: Distance) {}

  /** An exact scan has no search settings. */
  configure(): void {}

  get size(): number {
    return this.vectors.size;
  }

  async upsert(entries: readonly VectorEntry[]): Promise<void> {
    for (const { label, vector } of entries) {
      this.dims ??= vector.length;
      this.vectors.set(label, vector);
    }
  }

  async remove(labels: readonly number[]): Promise<void> {
    for (const label of labels) this.vectors.delete(label);
  }

  async search(query: Float32Array, k: number, allow?: readonly number[]): Promise<SearchHit[]> {
    const set = allow ? new Set(allow) : null;
    return exactSearch(this.distance, query, k, this.vectors, set ? (label) => set.has(label) : undefined);
  }

  async save(): Promise<void> {}
  async drop(): Promise<void> {}
  async close(): Promise<void> {
    this.vectors.clear();
  }
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
  let batch: VectorEntry[] = [];
  for await (const { label, vector } of opts.stored()) {
    batch.push({ label, vector, isNew: true });
    if (batch.length >= INSERT_CHUNK * 4) {
      await index.upsert(batch);
      batch = [];
    }
  }
  await index.upsert(batch);
  if (index instanceof HnswIndex && index.size > 0) await index.save(opts.version);
  return index;
}
