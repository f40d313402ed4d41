/**
 * Keyword search: BM25 and hybrid through `POST /v1/graphql`, side by side with brute-force scorers in one run.
 *
 * Data: N objects (OPENBATCH_BENCH_BM25_OBJECTS, default 50,000) made from the 1,000 Jeopardy questions (object k is
 * question k mod 1000 with its answer and category, plus a word naming its round, so texts repeat with small changes)
 * and a random 32-d vector each; class with vectorizer "none". The server is `openbatch serve` in a process of its own.
 * 1. BM25 queries/s (8 queries of 1-4 words, limit 10, every text property; 4 queries in flight, so the figure is the
 *    server's throughput, not the client's turnaround) vs a brute-force BM25F scorer over the same tokens in this
 *    process (every object's tokens kept in memory, every object scored per query); top-10s compared; beside it the
 *    latency of one query sent alone.
 * 2. Hybrid (alpha 0.5, rankedFusion, the query vector given) p50/p99 latency, and queries/s vs brute force (the same
 *    brute-force BM25F plus an exact cosine scan, fused by rank).
 * 3. The first BM25 query after a one-object write (the inverted index kept up per write, not rebuilt), median of 5.
 * Beside 1, where a query's time goes: the scorer alone (bm25.ts over an index of the same objects built in this
 * process, no HTTP), and the floor of the path (a bm25 GraphQL query whose token no object holds: request, parse,
 * render, no scoring; 4 in flight too) — the most any bm25 query through GraphQL reaches here.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bm25Search } from "../src/collections/bm25.js";
import { MemoryInvertedIndex } from "../src/collections/inverted-index.js";
import type { ClassDef, PropertyDef } from "../src/collections/schema.js";
import { exited, freePort, spawnCli, waitHealthy } from "../test/support/child.js";
import { datasetsDir, type BenchRow } from "./report.js";

const BENCH = "bm25";
const N = Number(process.env.OPENBATCH_BENCH_BM25_OBJECTS ?? 50_000);
const D = 32;
const K = 10;
const ROUNDS = 25;
/** Queries in flight at once when measuring queries/s: the server's throughput, as several users' clients load it. */
const IN_FLIGHT = 4;
const QUERIES = ["science", "American history president", "the first state admitted to the union", "river river city", "Shakespeare play", "famous painter", "ocean", "king of england"];
const STOP = new Set("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "));
const PROPS = ["question", "answer", "category"] as const;

interface Question {
  Question: string;
  Answer: string;
  Category: string;
}
const idOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
const tokens = (s: string) => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

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

/** The brute-force scorer: Weaviate's BM25F (bm25.ts's formula) recomputed over every object per query. */
class Brute {
  private readonly toks: string[][][];
  private readonly avg: number;
  constructor(docs: Record<string, string>[]) {
    this.toks = docs.map((d) => PROPS.map((p) => tokens(d[p] ?? "")));
    this.avg = PROPS.reduce((s, _p, j) => s + this.toks.reduce((t, d) => t + d[j]!.length, 0) / docs.length, 0) / PROPS.length;
  }
  search(query: string, limit: number): [number, number][] {
    const terms = new Map<string, number>();
    for (const t of tokens(query)) if (!STOP.has(t)) terms.set(t, (terms.get(t) ?? 0) + 1);
    const n = this.toks.length;
    const scores = new Float64Array(n);
    for (const [term, times] of terms) {
      const f = new Float64Array(n);
      const L = new Float64Array(n);
      let df = 0;
      for (let i = 0; i < n; i++) {
        const d = this.toks[i]!;
        let has = false;
        for (let j = 0; j < PROPS.length; j++) {
          let tf = 0;
          for (const t of d[j]!) if (t === term) tf++;
          if (tf) (f[i]! += tf), (L[i]! += d[j]!.length), (has = true);
        }
        if (has) df++;
      }
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5)) * times;
      for (let i = 0; i < n; i++) if (f[i]) scores[i]! += idf * (f[i]! / (f[i]! + 1.2 * (1 - 0.75 + (0.75 * L[i]!) / this.avg)));
    }
    const hits: [number, number][] = [];
    for (let i = 0; i < n; i++) if (scores[i]) hits.push([i, scores[i]!]);
    return hits.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, limit);
  }
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** Runs the keyword-search bench. @returns its rows. */
export async function benchBm25(): Promise<BenchRow[]> {
  const questions = JSON.parse(readFileSync(join(datasetsDir(), "jeopardy", "jeopardy_1k.json"), "utf8")) as Question[];
  const docs = Array.from({ length: N }, (_, k) => {
    const q = questions[k % questions.length]!;
    return { question: q.Question, answer: q.Answer, category: `${q.Category} round${Math.floor(k / questions.length)}` };
  });
  const rand = rng(7);
  const vectors = docs.map(() => Array.from({ length: D }, () => rand() * 2 - 1));
  // The server in a process of its own (the compiled CLI, as users run it): a client in the same process would take
  // its CPU from the server's event loop and count it as the server's.
  const dir = await mkdtemp(join(tmpdir(), "openbatch-bench-bm25-"));
  const port = await freePort();
  const child = spawnCli(["serve", "--port", String(port), "--data-dir", join(dir, "data")], {}, { built: true });
  const server = { url: `http://127.0.0.1:${port}/v1` };
  const rows: BenchRow[] = [];
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return r.json() as Promise<any>;
    };
    await post("/schema", { class: "Jeopardy", vectorizer: "none", properties: PROPS.map((name) => ({ name, dataType: ["text"] })) });
    for (let s = 0; s < N; s += 1000) {
      await post("/batch/objects", { objects: docs.slice(s, s + 1000).map((d, j) => ({ class: "Jeopardy", id: idOf(s + j), properties: d, vector: vectors[s + j] })) });
    }
    const gql = async (args: string) => {
      const r = await post("/graphql", { query: `{ Get { Jeopardy(${args}, limit: ${K}) { _additional { id score } } } }` });
      if (r.errors) throw new Error(JSON.stringify(r.errors));
      return r.data.Get.Jeopardy as { _additional: { id: string; score: string } }[];
    };
    const bm25 = (q: string) => gql(`bm25: { query: ${JSON.stringify(q)} }`);
    await bm25("warm up"); // builds the inverted index once
    const brute = new Brute(docs);

    let same = 0;
    for (const q of QUERIES) {
      const got = (await bm25(q)).map((h) => h._additional.id);
      const want = brute.search(q, K).map(([i]) => idOf(i));
      if (JSON.stringify(got) === JSON.stringify(want)) same++;
    }
    // `IN_FLIGHT` loops, each sending its next query when its last one is answered. @returns queries/s.
    const loaded = async (total: number, query: (i: number) => Promise<unknown>) => {
      let next = 0;
      const start = performance.now();
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (next < total) await query(next++);
      }));
      return total / ((performance.now() - start) / 1000);
    };
    const single: number[] = [];
    for (const q of QUERIES) {
      const s = performance.now();
      await bm25(q);
      single.push(performance.now() - s);
    }
    const served = await loaded(ROUNDS * QUERIES.length, (i) => bm25(QUERIES[i % QUERIES.length]!));
    let t = performance.now();
    const bruteRounds = 2;
    for (let r = 0; r < bruteRounds; r++) for (const q of QUERIES) brute.search(q, K);
    const bruteQps = (bruteRounds * QUERIES.length) / ((performance.now() - t) / 1000);
    rows.push({ bench: BENCH, case: `bm25 queries/s, ${N} objects, ${IN_FLIGHT} in flight (${same}/${QUERIES.length} top-10s equal brute force)`, value: served, unit: "q/s", ratio: served / bruteQps, ratioOf: "brute-force BM25F" });
    rows.push({ bench: BENCH, case: "bm25 latency of one query alone, median of the 8", value: percentile(single, 50), unit: "ms" });
    rows.push({ bench: BENCH, case: "brute-force BM25F queries/s (baseline)", value: bruteQps, unit: "q/s" });
    const floorQps = await loaded(ROUNDS * QUERIES.length, (i) => bm25(`zqnothing${i % 8}`));
    rows.push({ bench: BENCH, case: "floor: bm25 GraphQL query matching no object (request, parse, render)", value: floorQps, unit: "q/s", ratio: floorQps / bruteQps, ratioOf: "brute-force BM25F" });
    const props: PropertyDef[] = PROPS.map((name) => ({ name, dataType: ["text"], indexFilterable: true, indexSearchable: true, indexRangeFilters: false }));
    const def = { class: "Jeopardy", properties: props, invertedIndexConfig: {} } as unknown as ClassDef;
    const local = new MemoryInvertedIndex(props);
    docs.forEach((d, i) => local.upsert({ seq: i + 1, id: idOf(i), properties: d }));
    for (const q of QUERIES) bm25Search(local, def, { query: q }, null, K);
    t = performance.now();
    for (let r = 0; r < ROUNDS * 4; r++) for (const q of QUERIES) bm25Search(local, def, { query: q }, null, K);
    const scorerQps = (ROUNDS * 4 * QUERIES.length) / ((performance.now() - t) / 1000);
    rows.push({ bench: BENCH, case: "scorer alone: bm25.ts over an in-process index of the same objects, no HTTP", value: scorerQps, unit: "q/s", ratio: scorerQps / bruteQps, ratioOf: "brute-force BM25F" });

    const qvec = (i: number) => vectors[(i * 7919) % N]!;
    const hybrid = (q: string, i: number) => gql(`hybrid: { query: ${JSON.stringify(q)}, alpha: 0.5, vector: ${JSON.stringify(qvec(i))} }`);
    const lat: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, q] of QUERIES.entries()) {
        const s = performance.now();
        await hybrid(q, i);
        lat.push(performance.now() - s);
      }
    }
    const hybridQps = lat.length / (lat.reduce((a, b) => a + b, 0) / 1000);
    // Brute-force hybrid: the brute BM25F ranking and an exact cosine scan, fused by rank (1/(60+rank)).
    const cos = (a: number[], b: number[]) => {
      let d = 0, na = 0, nb = 0;
      for (let j = 0; j < D; j++) (d += a[j]! * b[j]!), (na += a[j]! * a[j]!), (nb += b[j]! * b[j]!);
      return 1 - d / Math.sqrt(na * nb);
    };
    t = performance.now();
    for (let r = 0; r < bruteRounds; r++) {
      for (const [i, q] of QUERIES.entries()) {
        const kw = brute.search(q, 100);
        const v = qvec(i);
        const vec = vectors.map((x, j) => [j, cos(v, x)] as [number, number]).sort((a, b) => a[1] - b[1]).slice(0, 100);
        const fused = new Map<number, number>();
        kw.forEach(([j], rank) => fused.set(j, (fused.get(j) ?? 0) + 0.5 / (60 + rank)));
        vec.forEach(([j], rank) => fused.set(j, (fused.get(j) ?? 0) + 0.5 / (60 + rank)));
        [...fused].sort((a, b) => b[1] - a[1]).slice(0, K);
      }
    }
    const bruteHybridQps = (bruteRounds * QUERIES.length) / ((performance.now() - t) / 1000);
    rows.push({ bench: BENCH, case: `hybrid p50 latency (p99 ${percentile(lat, 99).toFixed(1)} ms)`, value: percentile(lat, 50), unit: "ms" });
    rows.push({ bench: BENCH, case: "hybrid queries/s", value: hybridQps, unit: "q/s", ratio: hybridQps / bruteHybridQps, ratioOf: "brute-force BM25F + exact scan" });

    const afterWrite: number[] = [];
    for (let r = 0; r < 5; r++) {
      await post("/batch/objects", { objects: [{ class: "Jeopardy", id: idOf(N + r), properties: { question: `fresh science zqword${r}`, answer: "a", category: "new" }, vector: vectors[r] }] });
      const s = performance.now();
      const hits = await bm25(`science zqword${r}`);
      afterWrite.push(performance.now() - s);
      if (!hits.some((h) => h._additional.id === idOf(N + r))) throw new Error("the object just written is not found by bm25");
    }
    rows.push({ bench: BENCH, case: "first bm25 query after a one-object write (median of 5)", value: percentile(afterWrite, 50), unit: "ms" });
  } finally {
    child.kill("SIGTERM");
    await exited(child);
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { report } = await import("./report.js");
  console.log(`report: ${report("openbatch-bench-bm25", await benchBm25())}`);
}
