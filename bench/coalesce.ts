/**
 * Throughput beyond the naive limit (issue 16), measured side by side in one run:
 *
 * 1. Coalesced embeddings, 20,000 one-text `/v1/embeddings` requests through a whole batch (upload → done → output
 *    downloaded, the openai SDK against an in-process server):
 *    (a) `local/glove-100d`: coalesced (default embeddingsCoalesce 64) and one call per item, against the same server's
 *        synchronous `/v1/embeddings` called with 64 texts a call (4 callers); goal coalesced ÷ sync ≥ 0.9.
 *    (b) an OpenAI-compatible fake enforcing rpm 3,000 (bench/fake-embeddings.ts; 50 calls/s over a sliding 1 s
 *        window), configured `rpm: 3000`: coalesced, vs the input capacity (50 calls/s × 64 inputs); goal ≥ 0.9. One
 *        call per item runs on a tenth of the items (its limit is 50 items/s: 20,000 would take 400 s) and is
 *        compared by items/s.
 * 2. A queueing fake (8 slots, 200 ms each, unlimited queue, never a 429): OpenBatch with no budget and the default
 *    maxConcurrency (adaptive, latency-aware), with maxConcurrency 256 and no budget (adaptive too), and fixed
 *    concurrencies (an rpm far above the capacity makes the window maxConcurrency) swept over 4, 8, 12, 16 and 256.
 *    Ratios: throughput ÷ the sweep's best, and p50 latency (at the server) ÷ the unloaded 200 ms; goals ≥ 0.95 and
 *    ≤ 1.5.
 *
 * OPENBATCH_BENCH_COALESCE_SCALE=0.1 (or any factor) shrinks every size for a quick look; bench/queueing.ts runs
 * part 2 alone (OPENBATCH_BENCH_QUEUEING_N items per run, default 800: about 3 minutes for the 7 runs); the full run is
 * `npm run bench` (about 4 minutes for this part), or `tsx bench/coalesce.ts` with OPENBATCH_BENCH_COALESCE_PARTS (any of
 * glove, rpm, queueing). Numbers on a loaded machine vary; the ratios are the result.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { buildServer } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { FakeEmbeddings, QueueingUpstream } from "./fake-embeddings.js";
import { datasetsDir, type BenchRow } from "./report.js";

const SCALE = Number(process.env.OPENBATCH_BENCH_COALESCE_SCALE ?? 1);
const scale = (n: number) => Math.max(64, Math.round(n * SCALE));

interface Server {
  client: OpenAI;
  close(): Promise<void>;
}

async function startServer(raw: Record<string, unknown>, cacheDir?: string): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), "openbatch-bench-coalesce-"));
  const config = parseConfig(raw);
  const engine = await Engine.open({ dataDir, config, cacheDir });
  await engine.start();
  const app = await buildServer({ engine, apiKeys: [], maxFileBytes: config.limits.maxFileBytes });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  return {
    client: new OpenAI({ baseURL: `${address}/v1`, apiKey: "unused", maxRetries: 0, timeout: 600_000 }),
    async close() {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** upload → create → poll → download; @returns wall seconds. @throws when an item did not succeed. */
async function runBatch(client: OpenAI, lines: string, endpoint: "/v1/embeddings" | "/v1/chat/completions", n: number): Promise<number> {
  const t0 = performance.now();
  const file = await client.files.create({ file: await toFile(Buffer.from(lines), "bench.jsonl"), purpose: "batch" });
  let batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h" });
  while (!["completed", "failed", "expired", "cancelled"].includes(batch.status)) {
    await new Promise((r) => setTimeout(r, 100));
    batch = await client.batches.retrieve(batch.id);
  }
  if (batch.output_file_id) await (await client.files.content(batch.output_file_id)).text();
  const wall = (performance.now() - t0) / 1000;
  if (batch.request_counts?.completed !== n) throw new Error(`bench batch ended ${batch.status} ${JSON.stringify(batch.request_counts)}`);
  return wall;
}

function texts(n: number): string[] {
  const d = datasetsDir();
  const base = [
    ...(JSON.parse(readFileSync(join(d, "jeopardy/jeopardy_1k.json"), "utf8")) as { Question: string }[]).map((q) => q.Question),
    ...["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].flatMap((f) => readFileSync(join(d, "sentiment-labelled-sentences", f), "utf8").split("\n").filter(Boolean).map((l) => l.split("\t")[0]!)),
  ];
  return Array.from({ length: n }, (_, i) => `${base[i % base.length]} (${i})`);
}

const embedLines = (t: string[], model: string) => t.map((input, i) => JSON.stringify({ custom_id: `e${i}`, method: "POST", url: "/v1/embeddings", body: { model, input } })).join("\n") + "\n";

async function localGlove(cacheDir: string): Promise<BenchRow[]> {
  const bench = "coalesce/local-glove";
  const n = scale(20_000);
  const t = texts(n);
  const jsonl = embedLines(t, "local/glove-100d");
  const config = (extra: Record<string, unknown>) => ({ providers: { local: { type: "local-embeddings", ...extra } }, models: { "local/glove-100d": "local" } });
  // Sync baseline: the same server's /v1/embeddings, 64 texts a call, 4 callers.
  let server = await startServer(config({}), cacheDir);
  let syncS: number;
  let coalescedS: number;
  try {
    await server.client.embeddings.create({ model: "local/glove-100d", input: "warm up the vectors" });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < n) {
          const from = next;
          next += 64;
          await server.client.embeddings.create({ model: "local/glove-100d", input: t.slice(from, from + 64) });
        }
      }),
    );
    syncS = (performance.now() - t0) / 1000;
    coalescedS = await runBatch(server.client, jsonl, "/v1/embeddings", n);
  } finally {
    await server.close();
  }
  server = await startServer(config({ embeddingsCoalesce: 1 }), cacheDir);
  let aloneS: number;
  try {
    await server.client.embeddings.create({ model: "local/glove-100d", input: "warm up the vectors" });
    aloneS = await runBatch(server.client, jsonl, "/v1/embeddings", n);
  } finally {
    await server.close();
  }
  return [
    { bench, case: `sync /v1/embeddings, 64 texts a call, 4 callers, ${n} texts`, value: n / syncS, unit: "items/s" },
    { bench, case: `batch, coalesced (64 a call), ${n} one-text items (goal ≥ 0.9)`, value: n / coalescedS, unit: "items/s", ratio: syncS / coalescedS, ratioOf: "batch ÷ sync 64-a-call" },
    { bench, case: `batch, one call per item (embeddingsCoalesce 1), ${n} items`, value: n / aloneS, unit: "items/s", ratio: syncS / aloneS, ratioOf: "batch ÷ sync 64-a-call" },
  ];
}

async function rpmFake(): Promise<BenchRow[]> {
  const bench = "coalesce/rpm-3000";
  const rpm = 3000;
  const perS = rpm / 60;
  const rows: BenchRow[] = [];
  for (const [coalesce, n] of [
    [64, scale(20_000)],
    [1, scale(2_000)],
  ] as const) {
    const fake = await new FakeEmbeddings({ rpm }).start();
    const server = await startServer({ providers: { up: { type: "openai-compatible", baseURL: fake.origin + "/v1", apiKey: "k", rpm, maxConcurrency: 64, embeddingsCoalesce: coalesce } }, models: { "*": "up" } });
    try {
      const wall = await runBatch(server.client, embedLines(texts(n), "text-embedding-3-small"), "/v1/embeddings", n);
      const limitS = Math.ceil(n / coalesce) / perS;
      rows.push({
        bench,
        case: coalesce > 1 ? `coalesced (64 a call), ${n} items — ${fake.calls.length} calls, 429s ${fake.count429} (goal ≥ 0.9)` : `one call per item, ${n} items — ${fake.calls.length} calls, 429s ${fake.count429}`,
        value: n / wall,
        unit: "items/s",
        ratio: limitS / wall,
        ratioOf: `input capacity (${perS} calls/s × ${coalesce}) ÷ wall`,
      });
      console.error(`[coalesce] ${rows.at(-1)!.case}: ${wall.toFixed(1)} s`);
    } finally {
      await server.close();
      await fake.stop();
    }
  }
  rows.push({ bench, case: "speedup, coalesced ÷ one call per item", value: rows[0]!.value / rows[1]!.value, unit: "×" });
  return rows;
}

/** The queueing-upstream part alone (bench/queueing.ts runs it): @param n items per run (default 800 × the scale). */
export async function benchQueueing(n = scale(800)): Promise<BenchRow[]> {
  const bench = "queueing-upstream";
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `q${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "queue-model", messages: [{ role: "user", content: `question ${i}` }], max_tokens: 8 } })).join("\n") + "\n";
  const measured: { what: string; perS: number; p50: number }[] = [];
  const runOne = async (what: string, provider: Record<string, unknown>) => {
    const upstream = await new QueueingUpstream(8, 200).start();
    const server = await startServer({ providers: { q: { type: "openai-compatible", baseURL: upstream.url, ...provider } }, models: { "*": "q" } });
    try {
      const wall = await runBatch(server.client, lines, "/v1/chat/completions", n);
      const sorted = upstream.latencies.slice().sort((a, b) => a - b);
      measured.push({ what, perS: n / wall, p50: sorted[sorted.length >> 1]! });
      console.error(`[queueing] ${what}: ${(n / wall).toFixed(1)} items/s, p50 ${measured.at(-1)!.p50.toFixed(0)} ms`);
    } finally {
      await server.close();
      await upstream.stop();
    }
  };
  await runOne("OpenBatch, no budget, default maxConcurrency 16 (adaptive)", {});
  await runOne("OpenBatch, no budget, maxConcurrency 256 (adaptive)", { maxConcurrency: 256 });
  for (const c of [4, 8, 12, 16, 256]) await runOne(`fixed concurrency ${c} (rpm far above capacity)`, { maxConcurrency: c, rpm: 1_000_000 });
  const best = Math.max(...measured.filter((m) => m.what.startsWith("fixed")).map((m) => m.perS));
  return measured.map((m) => ({
    bench,
    case: `${m.what}, ${n} items, 8 slots × 200 ms — p50 ${(m.p50 / 200).toFixed(2)}× unloaded${m.what.includes("adaptive") ? " (goals ≥ 0.95, p50 ≤ 1.5×)" : ""}`,
    value: m.perS,
    unit: "items/s",
    ratio: m.perS / best,
    ratioOf: "÷ best fixed concurrency",
  }));
}

/** The issue-16 benches: coalesced embeddings (local and rpm-limited) and the queueing upstream. */
export async function benchCoalesce(cacheDir: string): Promise<BenchRow[]> {
  return [...(await localGlove(cacheDir)), ...(await rpmFake()), ...(await benchQueueing())];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `OPENBATCH_BENCH_COALESCE_PARTS=glove,rpm,queueing` (any of them; default all) runs those parts alone.
  const { tmpdir } = await import("node:os");
  const { report } = await import("./report.js");
  const parts = (process.env.OPENBATCH_BENCH_COALESCE_PARTS ?? "glove,rpm,queueing").split(",").map((s) => s.trim());
  const cacheDir = process.env.OPENBATCH_CACHE_DIR ?? join(tmpdir(), "openbatch-bench-cache");
  const rows: BenchRow[] = [];
  if (parts.includes("glove")) rows.push(...(await localGlove(cacheDir)));
  if (parts.includes("rpm")) rows.push(...(await rpmFake()));
  if (parts.includes("queueing")) rows.push(...(await benchQueueing()));
  console.log(`report: ${report("coalesce", rows)}`);
}
