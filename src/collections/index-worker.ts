/**
 * Worker thread that owns every HNSW index of the process (hnswlib-node): inserts, deletes, searches, loading and
 * saving run here, so an import of thousands of vectors (seconds of addPoint) never blocks the server's event loop.
 * vector-index.ts talks to it; each index is a numeric handle. Requests are handled one at a time in arrival order,
 * so a search sent after an insert sees it.
 *
 * Ops (all take `h`, the handle):
 * - `load {path, space, dims, live}` → whether the saved graph at `path` was loaded (false when a third or more of its
 *   slots are deleted; the caller then rebuilds);
 * - `upsert {init, labels: Float64Array, vectors: Float32Array (rows of dims)}` → null; `init` creates the index first;
 * - `remove {labels: Float64Array}` → how many were live and are now deleted;
 * - `search {query: Float32Array, k, ef, allow?: Float64Array}` → `{neighbors, distances}`;
 * - `save {path}` → null, written to `<path>.partial` then renamed; `free` → null.
 */
import { renameSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import hnswlib from "hnswlib-node";
import { serveWorker } from "../providers/worker-thread.js";

type Space = "cosine" | "ip" | "l2";
interface Init {
  space: Space;
  dims: number;
  maxElements: number;
  m: number;
  efConstruction: number;
}

const indexes = new Map<number, hnswlib.HierarchicalNSW>();

function get(h: number): hnswlib.HierarchicalNSW {
  const index = indexes.get(h);
  if (!index) throw new Error(`vector index ${h} is not open in the index worker`);
  return index;
}

serveWorker(parentPort!, {
  load: ({ h, path, space, dims, live }) => {
    const index = new hnswlib.HierarchicalNSW(space as Space, dims as number);
    index.readIndexSync(path as string);
    const count = index.getCurrentCount();
    // Deleted elements keep their slots; past a third of the index, rebuild instead.
    if (count > 0 && (count - (live as number)) / count > 1 / 3) return false;
    indexes.set(h as number, index);
    return true;
  },
  upsert: ({ h, init, labels, vectors }) => {
    let index = indexes.get(h as number);
    if (!index) {
      if (!init) throw new Error(`vector index ${h} is not open in the index worker`);
      const i = init as Init;
      index = new hnswlib.HierarchicalNSW(i.space, i.dims);
      index.initIndex({ maxElements: i.maxElements, m: i.m, efConstruction: i.efConstruction, randomSeed: 100 });
      indexes.set(h as number, index);
    }
    const ls = labels as Float64Array;
    const vs = vectors as Float32Array;
    const dims = vs.length / ls.length;
    let max = index.getMaxElements();
    while (index.getCurrentCount() + ls.length > max) max *= 2;
    if (max !== index.getMaxElements()) index.resizeIndex(max);
    // Adding an existing label replaces its vector (and revives it if it was deleted).
    for (let i = 0; i < ls.length; i++) index.addPoint(Array.from(vs.subarray(i * dims, (i + 1) * dims)), ls[i]!);
    return null;
  },
  remove: ({ h, labels }) => {
    const index = indexes.get(h as number);
    if (!index) return 0;
    let removed = 0;
    for (const label of labels as Float64Array) {
      try {
        index.markDelete(label);
        removed++;
      } catch {
        // not in the index, or already deleted
      }
    }
    return removed;
  },
  search: ({ h, query, k, ef, allow }) => {
    const index = get(h as number);
    index.setEf(ef as number);
    const set = allow ? new Set(allow as Float64Array) : null;
    return index.searchKnn(Array.from(query as Float32Array), Math.min(k as number, index.getMaxElements()), set ? (label) => set.has(label) : undefined);
  },
  save: ({ h, path }) => {
    get(h as number).writeIndexSync(`${path as string}.partial`);
    renameSync(`${path as string}.partial`, path as string);
    return null;
  },
  free: ({ h }) => {
    indexes.delete(h as number);
    return null;
  },
});
