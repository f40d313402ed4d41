/**
 * Event-loop stalls under one heavy request: while a single request runs against an in-process server, how long the
 * server's event loop is blocked (the largest delay `perf_hooks.monitorEventLoopDelay` sees, 10 ms resolution) and
 * how long a concurrent `GET /healthz` poller waits at worst. Every tenant's dispatching shares that loop, so a long
 * stall stops all of them. Goal: under 100 ms in every case.
 *
 * Cases (sizes of the review that found 3–11 s stalls; OPENBATCH_BENCH_STALL_SCALE < 1 scales them down):
 * 1. first use of `local/glove-100d` on a fresh cache dir (the word-vector cache is built from the package's JSON);
 * 2. `POST /v1/batch/objects` with 20,000 objects of 128-d vectors (HNSW inserts, the store write, the JSON);
 * 3. `POST /v1/batch/objects` of 3,000 objects through the local vectorizer;
 * 4. a synchronous `POST /v1/embeddings` of 450 strings of 66 KB on `local/glove-100d`.
 *
 * Cases 2 and 4 are also the big-JSON cases: their 26 MB and 30 MB bodies are parsed as they arrive, in 512 KiB slices
 * (src/api/json-stream.ts), the batch's 28 MB answer is streamed 500 objects per slice, and the embeddings body goes
 * upstream as received; before that, one JSON.parse (160 ms, 80 ms), one JSON.stringify of the answer (270 ms) and one
 * of the embeddings body (70 ms) each held the loop at once.
 *
 * The measurement is exported for test/event-loop.test.ts, which runs it at a small scale with a generous bound.
 * Request bodies are built before the monitor starts and answers are read as bytes, so the client's own JSON work (it
 * shares the loop) is not counted.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startServer, type TestServer } from "../test/support/harness.js";
import type { BenchRow } from "./report.js";

/** Sizes of the four cases. */
export interface StallSizes {
  /** Objects with given 128-d vectors in one batch request. */
  vectorObjects: number;
  /** Objects through the vectorizer in one batch request. */
  vectorizerObjects: number;
  /** Characters of each vectorized object's text. */
  vectorizerChars: number;
  /** Strings in the sync embeddings call. */
  embedInputs: number;
  /** Characters per string in the sync embeddings call. */
  embedChars: number;
}

/** The review's sizes. */
export const FULL_SIZES: StallSizes = { vectorObjects: 20_000, vectorizerObjects: 3_000, vectorizerChars: 120, embedInputs: 450, embedChars: 66_000 };

/** One case's worst stall: event-loop delay and `/healthz` latency, both in ms, and the request's own time. */
export interface Stall {
  case: string;
  maxLoopDelayMs: number;
  maxHealthzMs: number;
  requestMs: number;
  status: number;
}

/** Short common words: many tokens per byte, the embedder's costliest input for the JSON around it. */
const WORDS = "a of to in is it on at be we an by or as up so no do go he me my us am if".split(" ");

/** Deterministic text of about `chars` characters from common words. */
function text(chars: number, seed: number): string {
  const out: string[] = [];
  let n = 0;
  for (let i = 0; n < chars; i++) {
    const w = WORDS[(i * 7 + seed * 13 + ((i * i) % 11)) % WORDS.length]!;
    out.push(w);
    n += w.length + 1;
  }
  return out.join(" ");
}

/** Deterministic vectors in [-1, 1] (mulberry32), rounded to 6 decimals. */
function vector(dims: number, seed: number): number[] {
  let a = seed >>> 0;
  return Array.from({ length: dims }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.round((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2e6 - 1e6) / 1e6;
  });
}

/** UTF-8 bytes of a body, built before the clock starts. */
const encode = (s: string) => new TextEncoder().encode(s);

const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;

/**
 * Sends one request (its body prebuilt) while sampling the event loop and polling `/healthz`; the answer is read as
 * bytes before the sampling stops and parsed after.
 */
async function measure(server: TestServer, name: string, path: string, body: Uint8Array<ArrayBuffer>): Promise<Stall & { answer: unknown }> {
  const base = server.url.replace(/\/v1$/, "");
  const h = monitorEventLoopDelay({ resolution: 10 });
  let polling = true;
  let maxHealthzMs = 0;
  // The wait counts from when the poll was due (the last answer + 5 ms), so a stall that starts between polls counts.
  const poller = (async () => {
    let due = performance.now();
    while (polling) {
      const res = await fetch(`${base}/healthz`);
      await res.arrayBuffer();
      const now = performance.now();
      maxHealthzMs = Math.max(maxHealthzMs, now - due);
      await new Promise((r) => setTimeout(r, 5));
      due = now + 5;
    }
  })();
  h.enable();
  const t0 = performance.now();
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const bytes = Buffer.from(await res.arrayBuffer());
  const requestMs = performance.now() - t0;
  h.disable();
  polling = false;
  await poller;
  const answer: unknown = JSON.parse(bytes.toString("utf8"));
  if (!res.ok) throw new Error(`${name}: ${res.status} ${bytes.toString("utf8").slice(0, 300)}`);
  return { case: name, maxLoopDelayMs: h.max / 1e6, maxHealthzMs, requestMs, status: res.status, answer };
}

async function postJson(server: TestServer, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${server.url.replace(/\/v1$/, "")}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

/**
 * Runs the four cases on one fresh server with a fresh word-vector cache dir. Checks each answer (every object stored,
 * one embedding per input) so a fast failure cannot pass for a short stall.
 * @returns one Stall per case, in the order above.
 */
export async function measureStalls(sizes: StallSizes): Promise<Stall[]> {
  const cacheDir = await mkdtemp(join(tmpdir(), "openbatch-stall-cache-"));
  const server = await startServer({}, { cacheDir });
  const out: Stall[] = [];
  try {
    // 1. First use: the cache is built from the package's JSON and loaded.
    const first = await measure(server, "first use of local/glove-100d (cache build)", "/v1/embeddings", encode(JSON.stringify({ model: "local/glove-100d", input: "hello world" })));
    if ((first.answer as { data: unknown[] }).data.length !== 1) throw new Error("first use: no embedding");
    out.push(first);

    // 2. Given vectors.
    await postJson(server, "/v1/schema", { class: "Vec", vectorizer: "none", properties: [{ name: "n", dataType: ["int"] }] });
    const vecBody = encode(JSON.stringify({ objects: Array.from({ length: sizes.vectorObjects }, (_, i) => ({ class: "Vec", id: uuid(i), properties: { n: i }, vector: vector(128, i + 1) })) }));
    const vec = await measure(server, `batch import, ${sizes.vectorObjects} × 128-d vectors`, "/v1/batch/objects", vecBody);
    checkBatch(vec.answer, sizes.vectorObjects);
    await checkSearchable(server, sizes.vectorObjects);
    out.push(vec);

    // 3. Through the vectorizer.
    await postJson(server, "/v1/schema", { class: "Doc", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "local/glove-100d", vectorizeClassName: false } }, properties: [{ name: "body", dataType: ["text"] }] });
    const docBody = encode(JSON.stringify({ objects: Array.from({ length: sizes.vectorizerObjects }, (_, i) => ({ class: "Doc", id: uuid(i), properties: { body: text(sizes.vectorizerChars, i) } })) }));
    const doc = await measure(server, `vectorizer import, ${sizes.vectorizerObjects} objects of ${sizes.vectorizerChars} chars`, "/v1/batch/objects", docBody);
    checkBatch(doc.answer, sizes.vectorizerObjects);
    out.push(doc);

    // 4. Sync embeddings of large inputs.
    const embBody = encode(JSON.stringify({ model: "local/glove-100d", input: Array.from({ length: sizes.embedInputs }, (_, i) => text(sizes.embedChars, i)) }));
    const emb = await measure(server, `sync embeddings, ${sizes.embedInputs} × ${Math.round(sizes.embedChars / 1000)} KB`, "/v1/embeddings", embBody);
    if ((emb.answer as { data: unknown[] }).data.length !== sizes.embedInputs) throw new Error("sync embeddings: wrong count");
    out.push(emb);
  } finally {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
  return out.map(({ case: c, maxLoopDelayMs, maxHealthzMs, requestMs, status }) => ({ case: c, maxLoopDelayMs, maxHealthzMs, requestMs, status }));
}

/** Read-your-writes: right after the batch answered, the last object's own vector finds it first, at distance ~0. */
async function checkSearchable(server: TestServer, n: number): Promise<void> {
  const k = n - 1;
  const query = `{ Get { Vec(nearVector: {vector: ${JSON.stringify(vector(128, k + 1))}}, limit: 1) { n _additional { id distance } } } }`;
  const res = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
  const hit = ((await res.json()) as { data?: { Get?: { Vec?: { _additional: { id: string; distance: number } }[] } } }).data?.Get?.Vec?.[0];
  if (hit?._additional.id !== uuid(k) || !(Math.abs(hit._additional.distance) < 1e-4)) throw new Error(`batch import: object ${uuid(k)} not found by its own vector right after the batch; got ${JSON.stringify(hit)}`);
}

function checkBatch(answer: unknown, n: number): void {
  const results = answer as { result?: { errors?: unknown } }[];
  if (!Array.isArray(results) || results.length !== n) throw new Error(`batch: ${Array.isArray(results) ? results.length : "no"} results for ${n} objects`);
  const failed = results.filter((r) => r.result?.errors);
  if (failed.length) throw new Error(`batch: ${failed.length} objects failed, e.g. ${JSON.stringify(failed[0])}`);
}

/** Bench rows: worst event-loop delay and worst `/healthz` wait per case, with the ratio to the 100 ms goal. */
export async function benchEventLoop(): Promise<BenchRow[]> {
  const scale = Number(process.env.OPENBATCH_BENCH_STALL_SCALE ?? 1);
  const sizes: StallSizes = {
    vectorObjects: Math.round(FULL_SIZES.vectorObjects * scale),
    vectorizerObjects: Math.round(FULL_SIZES.vectorizerObjects * scale),
    vectorizerChars: FULL_SIZES.vectorizerChars,
    embedInputs: Math.round(FULL_SIZES.embedInputs * scale),
    embedChars: FULL_SIZES.embedChars,
  };
  const rows: BenchRow[] = [];
  for (const s of await measureStalls(sizes)) {
    rows.push({ bench: "event-loop", case: `${s.case}: max loop delay`, value: s.maxLoopDelayMs, unit: "ms", ratio: 100 / s.maxLoopDelayMs, ratioOf: "100 ms goal ÷ measured" });
    rows.push({ bench: "event-loop", case: `${s.case}: max /healthz wait`, value: s.maxHealthzMs, unit: "ms", ratio: 100 / s.maxHealthzMs, ratioOf: "100 ms goal ÷ measured" });
    rows.push({ bench: "event-loop", case: `${s.case}: the request itself`, value: s.requestMs, unit: "ms" });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { report } = await import("./report.js");
  console.log(`report: ${report("event-loop", await benchEventLoop())}`);
}
