/**
 * Filtered nearVector: recall@10 and queries/s of `nearVector` + `where` through `POST /v1/graphql` at 1 %, 10 % and
 * 50 % selectivity, vs exact search over the objects the filter lets through (brute force in this process, whose
 * queries/s is the baseline of the ratio). Three ways per selectivity: allow-lists from the filterable index searched
 * flat (Weaviate's default flatSearchCutoff, 40,000) and on HNSW (flatSearchCutoff 0), and a filter the index does not
 * hold (a store scan per query, as every filter was served before the filterable index).
 * N (OPENBATCH_BENCH_FILTERED_OBJECTS, default 20,000) random 64-d vectors, each with an int `bucket` = index mod 100;
 * the filter is `bucket < s` for selectivity s %. QUERIES (OPENBATCH_BENCH_FILTERED_QUERIES, default 50) per case,
 * after six untimed ones (the first filtered query of a class builds its filterable index; its time is a row).
 */
import { startServer } from "../test/support/harness.js";
import type { BenchRow } from "./report.js";

const BENCH = "filtered-search";
const N = Number(process.env.OPENBATCH_BENCH_FILTERED_OBJECTS ?? 20_000);
const D = 64;
const K = 10;
const QUERIES = Number(process.env.OPENBATCH_BENCH_FILTERED_QUERIES ?? 50);
const idOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the filtered-search bench. @returns its rows. */
export async function benchFilteredSearch(): Promise<BenchRow[]> {
  const rand = rng(11);
  const vectors = Array.from({ length: N }, () => Array.from({ length: D }, () => Math.round((rand() * 2 - 1) * 1e6) / 1e6));
  const norms = vectors.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
  const server = await startServer({});
  const rows: BenchRow[] = [];
  try {
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return r.json() as Promise<any>;
    };
    // Two classes of the same objects: Weaviate's defaults, and flatSearchCutoff 0 (every filtered search on HNSW).
    // `raw` holds the bucket again without a filterable index: a filter on it scans the store, as every filter did before.
    const classes = [
      ["Filtered", {}],
      ["FilteredHnsw", { flatSearchCutoff: 0 }],
    ] as const;
    for (const [cls, vectorIndexConfig] of classes) {
      await post("/schema", { class: cls, vectorizer: "none", vectorIndexConfig, properties: [{ name: "bucket", dataType: ["int"] }, { name: "raw", dataType: ["int"], indexFilterable: false }] });
      for (let s = 0; s < N; s += 1000) {
        await post("/batch/objects", { objects: vectors.slice(s, s + 1000).map((v, j) => ({ class: cls, id: idOf(s + j), properties: { bucket: (s + j) % 100, raw: (s + j) % 100 }, vector: v })) });
      }
    }
    const queries = Array.from({ length: QUERIES }, () => Array.from({ length: D }, () => rand() * 2 - 1));
    const search = async (cls: string, q: number[], where: string) => {
      const r = await post("/graphql", { query: `{ Get { ${cls}(nearVector: {vector: ${JSON.stringify(q)}}, where: ${where}, limit: ${K}) { _additional { id } } } }` });
      if (r.errors) throw new Error(JSON.stringify(r.errors));
      return r.data.Get[cls].map((h: { _additional: { id: string } }) => h._additional.id) as string[];
    };
    const cases = [
      ["Filtered", "bucket", "flat below flatSearchCutoff (default 40,000)"],
      ["FilteredHnsw", "bucket", "HNSW with the allow-list (flatSearchCutoff 0)"],
      ["Filtered", "raw", "store scan (indexFilterable false, as before the filterable index)"],
    ] as const;
    for (const pct of [1, 10, 50]) {
      // The exact top-10s, and the time of this process's exact scan of the filtered objects (the ratios' baseline).
      let t = performance.now();
      const wants = queries.map((q) => {
        const qn = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
        const exact: [number, number][] = [];
        for (let i = 0; i < N; i++) {
          if (i % 100 >= pct) continue;
          let d = 0;
          const v = vectors[i]!;
          for (let j = 0; j < D; j++) d += q[j]! * v[j]!;
          exact.push([i, 1 - d / (qn * norms[i]!)]);
        }
        return new Set(exact.sort((a, b) => a[1] - b[1]).slice(0, K).map(([i]) => idOf(i)));
      });
      const bruteQps = QUERIES / ((performance.now() - t) / 1000);
      for (const [cls, prop, how] of cases) {
        const where = `{path: ["${prop}"], operator: LessThan, valueInt: ${pct}}`;
        const warm = performance.now();
        await search(cls, queries[0]!, where);
        if (pct === 1 && prop === "bucket") rows.push({ bench: BENCH, case: `${cls}: first filtered query (builds the filterable index${cls === "Filtered" ? ", fills the vector cache" : ""})`, value: performance.now() - warm, unit: "ms" });
        // A few more untimed, so the case is timed warm (compiled code paths, caches filled), as the others are.
        for (const q of queries.slice(1, 6)) await search(cls, q, where);
        t = performance.now();
        let found = 0;
        for (const [k, q] of queries.entries()) found += (await search(cls, q, where)).filter((id) => wants[k]!.has(id)).length;
        const served = QUERIES / ((performance.now() - t) / 1000);
        rows.push({ bench: BENCH, case: `${pct} % selectivity, ${how}: queries/s (recall@10 ${(found / (QUERIES * K)).toFixed(3)}, ${N} objects)`, value: served, unit: "q/s", ratio: served / bruteQps, ratioOf: "exact scan of the filtered objects" });
      }
    }
  } finally {
    await server.close();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { report } = await import("./report.js");
  console.log(`report: ${report("openbatch-bench-filtered-search", await benchFilteredSearch())}`);
}
