/**
 * Measures the two HNSW libraries the design names, hnswlib-node and usearch, on random vectors: insert rate, query
 * rate and recall@10 against exact search. `npx tsx bench/vector-libs.ts [count] [dims]` (default 20000 × 128).
 */
import hnswlib from "hnswlib-node";
import { Index, MetricKind, ScalarKind } from "usearch";

const N = Number(process.argv[2] ?? 20_000);
const D = Number(process.argv[3] ?? 128);
const Q = 200;
const K = 10;
const M = 16;
const EF_C = 128;

let seed = 42;
// A 32-bit LCG in integer arithmetic (a float version loses its low bits and cycles after ~10k values).
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 0x100000000) * 2 - 1;
const data = new Float32Array(N * D).map(rand);
const queries = new Float32Array(Q * D).map(rand);
const row = (a: Float32Array, i: number) => a.subarray(i * D, (i + 1) * D);

type Metric = "cosine" | "l2";
function dist(metric: Metric, a: Float32Array, b: Float32Array): number {
  let s = 0, na = 0, nb = 0;
  if (metric === "l2") {
    for (let i = 0; i < D; i++) { const d = a[i]! - b[i]!; s += d * d; }
    return s;
  }
  for (let i = 0; i < D; i++) { s += a[i]! * b[i]!; na += a[i]! * a[i]!; nb += b[i]! * b[i]!; }
  return 1 - s / Math.sqrt(na * nb);
}

function exact(metric: Metric): number[][] {
  const out: number[][] = [];
  for (let q = 0; q < Q; q++) {
    const qv = row(queries, q);
    const scored = Array.from({ length: N }, (_, i) => ({ i, d: dist(metric, qv, row(data, i)) }));
    scored.sort((x, y) => x.d - y.d);
    out.push(scored.slice(0, K).map((s) => s.i));
  }
  return out;
}

const recall = (truth: number[][], got: number[][]) => truth.reduce((s, t, q) => s + t.filter((i) => got[q]!.includes(i)).length, 0) / (Q * K);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

for (const metric of ["cosine", "l2"] as const) {
  const truth = exact(metric);
  // hnswlib-node: one point per call (its only insert API), single-threaded.
  {
    const index = new hnswlib.HierarchicalNSW(metric, D);
    index.initIndex({ maxElements: N, m: M, efConstruction: EF_C, randomSeed: 100 });
    let t = performance.now();
    for (let i = 0; i < N; i++) index.addPoint(Array.from(row(data, i)), i);
    const insertS = (performance.now() - t) / 1000;
    for (const ef of [64, 128]) {
      index.setEf(ef);
      t = performance.now();
      const got = Array.from({ length: Q }, (_, q) => index.searchKnn(Array.from(row(queries, q)), K).neighbors);
      const queryS = (performance.now() - t) / 1000;
      console.log(`hnswlib-node ${metric} ef=${ef}: insert ${fmt(N / insertS)}/s, query ${fmt(Q / queryS)}/s, recall@10 ${recall(truth, got).toFixed(3)}`);
    }
  }
  // usearch: batch add, single thread and all threads.
  for (const threads of [1, 0]) {
    for (const ef of [64, 128]) {
      const index = new Index({ dimensions: D, metric: metric === "l2" ? MetricKind.L2sq : MetricKind.Cos, quantization: ScalarKind.F32, connectivity: M, expansion_add: EF_C, expansion_search: ef, multi: false });
      let t = performance.now();
      index.add(BigUint64Array.from({ length: N }, (_, i) => BigInt(i)), data, threads);
      const insertS = (performance.now() - t) / 1000;
      t = performance.now();
      const got: number[][] = [];
      for (let q = 0; q < Q; q++) got.push(Array.from(index.search(row(queries, q), K, 1).keys, Number));
      const queryS = (performance.now() - t) / 1000;
      console.log(`usearch ${metric} ef=${ef} threads=${threads || "all"}: insert ${fmt(N / insertS)}/s, query ${fmt(Q / queryS)}/s, recall@10 ${recall(truth, got).toFixed(3)}`);
    }
  }
  // usearch one call per vector (how a server that indexes each batch as it comes would feed it).
  {
    const index = new Index({ dimensions: D, metric: metric === "l2" ? MetricKind.L2sq : MetricKind.Cos, quantization: ScalarKind.F32, connectivity: M, expansion_add: EF_C, expansion_search: 128, multi: false });
    const t = performance.now();
    for (let i = 0; i < N; i++) index.add(BigInt(i), row(data, i), 1);
    console.log(`usearch ${metric} add one at a time: ${fmt(N / ((performance.now() - t) / 1000))}/s`);
  }
}
