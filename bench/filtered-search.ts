/**
 * Filtered nearVector: recall@10 and queries/s of `nearVector` + `where` through `POST /v1/graphql` at 1 %, 10 % and
 * 50 % selectivity, vs exact search over the objects the filter lets through (brute force in this process, whose
 * queries/s is the baseline of the ratio). N (OPENBATCH_BENCH_FILTERED_OBJECTS, default 20,000) random 64-d vectors,
 * each with an int `bucket` = index mod 100; the filter is `bucket < s` for selectivity s %. Default HNSW settings.
 */
import { startServer } from "../test/support/harness.js";
import type { BenchRow } from "./report.js";

const BENCH = "filtered-search";
const N = Number(process.env.OPENBATCH_BENCH_FILTERED_OBJECTS ?? 20_000);
const D = 64;
const K = 10;
const QUERIES = 50;
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
    await post("/schema", { class: "Filtered", vectorizer: "none", properties: [{ name: "bucket", dataType: ["int"] }] });
    for (let s = 0; s < N; s += 1000) {
      await post("/batch/objects", { objects: vectors.slice(s, s + 1000).map((v, j) => ({ class: "Filtered", id: idOf(s + j), properties: { bucket: (s + j) % 100 }, vector: v })) });
    }
    const queries = Array.from({ length: QUERIES }, () => Array.from({ length: D }, () => rand() * 2 - 1));
    for (const pct of [1, 10, 50]) {
      const where = `{path: ["bucket"], operator: LessThan, valueInt: ${pct}}`;
      let found = 0;
      let t = performance.now();
      const got: string[][] = [];
      for (const q of queries) {
        const r = await post("/graphql", { query: `{ Get { Filtered(nearVector: {vector: ${JSON.stringify(q)}}, where: ${where}, limit: ${K}) { _additional { id } } } }` });
        if (r.errors) throw new Error(JSON.stringify(r.errors));
        got.push(r.data.Get.Filtered.map((h: { _additional: { id: string } }) => h._additional.id));
      }
      const served = QUERIES / ((performance.now() - t) / 1000);
      t = performance.now();
      queries.forEach((q, k) => {
        const qn = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
        const exact: [number, number][] = [];
        for (let i = 0; i < N; i++) {
          if (i % 100 >= pct) continue;
          let d = 0;
          const v = vectors[i]!;
          for (let j = 0; j < D; j++) d += q[j]! * v[j]!;
          exact.push([i, 1 - d / (qn * norms[i]!)]);
        }
        const want = new Set(exact.sort((a, b) => a[1] - b[1]).slice(0, K).map(([i]) => idOf(i)));
        found += got[k]!.filter((id) => want.has(id)).length;
      });
      const bruteQps = QUERIES / ((performance.now() - t) / 1000);
      rows.push({ bench: BENCH, case: `recall@10, ${pct} % selectivity, ${N} objects`, value: found / (QUERIES * K), unit: "" });
      rows.push({ bench: BENCH, case: `queries/s, ${pct} % selectivity`, value: served, unit: "q/s", ratio: served / bruteQps, ratioOf: "exact scan of the filtered objects" });
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
