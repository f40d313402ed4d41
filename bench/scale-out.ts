/**
 * Scale-out on PostgreSQL (issue 13), measured in one run, each case on a database of its own (created, then dropped):
 *
 * 1. Scale-out: an upstream (FakeUpstream) answering every call after 200 ms with no rate limit; one API server
 *    (in-process, `--no-dispatch`) and 1, 2 and 4 `openbatch worker` processes, each provider at maxConcurrency 8, so
 *    one worker can do at most 8 ÷ 0.2 s = 40 items/s. items/s = items ÷ (batch created → completed); each case gets
 *    `ITEMS_PER_WORKER × N` items so every case runs about as long. Ratio: items/s(N) ÷ (N × items/s(1)), goal ≥ 0.9.
 * 2. Shared budget: 3 worker processes on one provider whose upstream (test/support/load-target.ts) enforces `rps`
 *    over a sliding 1 s window, each worker configured with rpm = the upstream's capacity (rps × 60), the budget the
 *    workers must share through the database. Ratio: (delivered ÷ rps) ÷ wall, 1.00 = the physical limit (goal ≥ 0.9);
 *    429s as % of the requests the upstream saw (goal < 1 %).
 * 3. The same batch (instant FakeUpstream, maxConcurrency 64) through an in-process server with one dispatcher, on
 *    SQLite and on PostgreSQL: items/s from upload to completed. Ratio: PostgreSQL ÷ SQLite (goal ≥ 0.7).
 *
 * Sizes: 600 items per worker (scale-out), rps 20 for 30 s (budget), 50,000 items (SQLite vs PostgreSQL).
 * OPENBATCH_BENCH_SCALE_OUT_FACTOR=0.1 multiplies every size (a quick run, not for reporting). Without a reachable
 * PostgreSQL (OPENBATCH_TEST_PG_URL, default the machine's 127.0.0.1:5432) the bench says so and reports nothing.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { buildServer } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { exited, freePort, spawnCli, waitHealthy } from "../test/support/child.js";
import { FakeUpstream } from "../test/support/fake-upstream.js";
import { LoadTarget } from "../test/support/load-target.js";
import { createTestDatabase, postgresReachable } from "../test/support/postgres.js";
import type { BenchRow } from "./report.js";

const FACTOR = Number(process.env.OPENBATCH_BENCH_SCALE_OUT_FACTOR ?? "1");
const size = (n: number) => Math.max(1, Math.round(n * FACTOR));
const ITEMS_PER_WORKER = size(600);
const WORKERS = [1, 2, 4];
const UPSTREAM_MS = 200;
const BUDGET_RPS = 20;
const BUDGET_REQUESTS = size(BUDGET_RPS * 30);
const STORE_ITEMS = size(50_000);

function jsonl(n: number, model = "bench-model"): string {
  let s = "";
  for (let i = 0; i < n; i++) s += JSON.stringify({ custom_id: `r${i}`, method: "POST", url: "/v1/chat/completions", body: { model, messages: [{ role: "user", content: `item ${i}: one word please` }], max_tokens: 16 } }) + "\n";
  return s;
}

interface Api {
  client: OpenAI;
  close(): Promise<void>;
}

/** An in-process OpenBatch server with production defaults; `dispatch: false` serves the API only. */
async function startApi(providers: Record<string, unknown>, databaseUrl: string | undefined, dispatch: boolean): Promise<Api> {
  const dataDir = await mkdtemp(join(tmpdir(), "openbatch-bench-scale-out-"));
  const config = parseConfig({ providers, models: { "*": "up" } });
  const engine = await Engine.open({ dataDir, config, databaseUrl, dispatch });
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

/** `n` `openbatch worker` processes on the database, each with `providers`; resolves once all answer /healthz. */
async function startWorkers(n: number, databaseUrl: string, providers: Record<string, unknown>, dir: string): Promise<ChildProcess[]> {
  const config = join(dir, "worker.json");
  await writeFile(config, JSON.stringify({ providers, models: { "*": "up" } }));
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const port = await freePort();
      const child = spawnCli(["worker", "--database-url", databaseUrl, "-c", config, "--data-dir", join(dir, `w${i}`), "--metrics-port", String(port)]);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, 120_000);
      return child;
    }),
  );
}

/** SIGTERM (a worker returns its leases and exits), SIGKILL after 10 s. */
async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      c.kill("SIGTERM");
      const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
      await exited(c);
      clearTimeout(t);
    }),
  );
}

interface Run {
  /** Upload start → completed, s. */
  wallS: number;
  /** Batch created → completed, s. */
  runS: number;
  delivered: number;
}

/** upload → create → poll (200 ms) until terminal → count the 200 answers in the output file. */
async function runBatch(client: OpenAI, n: number, model?: string): Promise<Run> {
  const t0 = performance.now();
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(n, model)), "bench.jsonl"), purpose: "batch" });
  let batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  const t1 = performance.now();
  while (!["completed", "failed", "expired", "cancelled"].includes(batch.status)) {
    await new Promise((r) => setTimeout(r, 200));
    batch = await client.batches.retrieve(batch.id);
  }
  const t2 = performance.now();
  let delivered = 0;
  if (batch.output_file_id) {
    const text = await (await client.files.content(batch.output_file_id)).text();
    for (const line of text.split("\n")) if (line && (JSON.parse(line) as { response?: { status_code?: number } }).response?.status_code === 200) delivered++;
  }
  return { wallS: (t2 - t0) / 1000, runS: (t2 - t1) / 1000, delivered };
}

/** Runs `body` on a fresh database and a scratch dir, dropping both after. */
async function onFreshDatabase<T>(body: (url: string, dir: string) => Promise<T>): Promise<T> {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), "openbatch-bench-scale-out-"));
  try {
    return await body(db.url, dir);
  } finally {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function scaleOut(): Promise<BenchRow[]> {
  const upstream = await new FakeUpstream().start();
  upstream.plan = () => ({ kind: "delay", ms: UPSTREAM_MS });
  const providers = { up: { type: "openai-compatible", baseURL: upstream.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 30_000 } };
  const rows: BenchRow[] = [];
  let one = 0;
  try {
    for (const n of WORKERS) {
      const items = ITEMS_PER_WORKER * n;
      const run = await onFreshDatabase(async (url, dir) => {
        const api = await startApi(providers, url, false);
        const workers = await startWorkers(n, url, providers, dir);
        try {
          return await runBatch(api.client, items);
        } finally {
          await stopWorkers(workers);
          await api.close();
        }
      });
      const perS = run.delivered / run.runS;
      if (n === 1) one = perS;
      rows.push({ bench: "scale-out", case: `${n} worker${n > 1 ? "s" : ""}, ${items} items, upstream 200 ms, maxConcurrency 8 each`, value: perS, unit: "items/s", ratio: perS / (n * one), ratioOf: `÷ ${n} × 1 worker` });
      if (run.delivered !== items) rows.push({ bench: "scale-out", case: `${n} workers: items not delivered`, value: items - run.delivered, unit: "items" });
    }
  } finally {
    await upstream.stop();
  }
  return rows;
}

async function sharedBudget(): Promise<BenchRow[]> {
  const target = await new LoadTarget({ rps: BUDGET_RPS, latencyMs: [50, 250] }).start();
  const providers = { up: { type: "openai-compatible", baseURL: target.url, apiKey: "k", maxConcurrency: 16, timeoutMs: 30_000, rpm: BUDGET_RPS * 60 } };
  try {
    const run = await onFreshDatabase(async (url, dir) => {
      const api = await startApi(providers, url, false);
      const workers = await startWorkers(3, url, providers, dir);
      try {
        return await runBatch(api.client, BUDGET_REQUESTS);
      } finally {
        await stopWorkers(workers);
        await api.close();
      }
    });
    const seen = target.acceptedTotal + target.rejected.length;
    if (process.env.OPENBATCH_BENCH_SCALE_OUT_TRACE === "1") {
      // Arrivals per second (accepted / refused) and each refusal's retry-after, to see where the time went.
      const t0 = Math.min(target.accepted[0]?.at ?? Infinity, target.rejected[0]?.at ?? Infinity);
      const perS = new Map<number, [number, number]>();
      for (const a of target.accepted) (perS.get(Math.floor((a.at - t0) / 1000)) ?? perS.set(Math.floor((a.at - t0) / 1000), [0, 0]).get(Math.floor((a.at - t0) / 1000))!)[0]++;
      for (const r of target.rejected) (perS.get(Math.floor((r.at - t0) / 1000)) ?? perS.set(Math.floor((r.at - t0) / 1000), [0, 0]).get(Math.floor((r.at - t0) / 1000))!)[1]++;
      console.error("second: accepted/refused", [...perS.entries()].sort((x, y) => x[0] - y[0]).map(([k, [a, r]]) => `${k}:${a}/${r}`).join(" "));
      console.error("refusals", target.rejected.map((r) => `${((r.at - t0) / 1000).toFixed(2)}s ${r.key.slice(0, 12)} retry ${r.retryAfterMs}`).join("; "));
    }
    return [
      { bench: "scale-out", case: `shared budget: 3 workers, rpm ${BUDGET_RPS * 60} = capacity, ${BUDGET_REQUESTS} requests`, value: run.delivered / run.runS, unit: "req/s", ratio: run.delivered / BUDGET_RPS / run.runS, ratioOf: "÷ physical limit" },
      { bench: "scale-out", case: "shared budget: 429s", value: (100 * target.count429) / Math.max(1, seen), unit: "% of requests" },
    ];
  } finally {
    await target.stop();
  }
}

async function sqliteVsPostgres(): Promise<BenchRow[]> {
  const upstream = await new FakeUpstream().start();
  const providers = { up: { type: "openai-compatible", baseURL: upstream.url, apiKey: "k", maxConcurrency: 64 } };
  try {
    const api = await startApi(providers, undefined, true);
    const sqlite = await runBatch(api.client, STORE_ITEMS).finally(() => api.close());
    const pgRun = await onFreshDatabase(async (url) => {
      const pgApi = await startApi(providers, url, true);
      return runBatch(pgApi.client, STORE_ITEMS).finally(() => pgApi.close());
    });
    const s = sqlite.delivered / sqlite.wallS;
    const p = pgRun.delivered / pgRun.wallS;
    return [
      { bench: "scale-out", case: `${STORE_ITEMS} items, one dispatcher, instant upstream: SQLite`, value: s, unit: "items/s" },
      { bench: "scale-out", case: `${STORE_ITEMS} items, one dispatcher, instant upstream: PostgreSQL`, value: p, unit: "items/s", ratio: p / s, ratioOf: "÷ SQLite" },
    ];
  } finally {
    await upstream.stop();
  }
}

/** Every scale-out case; [] (said on stderr) without a reachable PostgreSQL. */
export async function benchScaleOut(): Promise<BenchRow[]> {
  if (!(await postgresReachable())) return [];
  // OPENBATCH_BENCH_SCALE_OUT_CASES=budget,stores runs only those cases (scale, budget, stores).
  const cases = process.env.OPENBATCH_BENCH_SCALE_OUT_CASES?.split(",") ?? ["scale", "budget", "stores"];
  const rows: BenchRow[] = [];
  if (cases.includes("scale")) rows.push(...(await scaleOut()));
  if (cases.includes("budget")) rows.push(...(await sharedBudget()));
  if (cases.includes("stores")) rows.push(...(await sqliteVsPostgres()));
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { report } = await import("./report.js");
  console.log(`report: ${report("openbatch-bench-scale-out", await benchScaleOut())}`);
}
