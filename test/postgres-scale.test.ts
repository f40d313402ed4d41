import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, uploadJsonl, waitFor } from "./support/harness.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/**
 * Scale-out on PostgreSQL, as a user runs it: two API servers (`serve --no-dispatch`) and three workers
 * (`openbatch worker`) as separate processes on one database. A batch created through one server is listed, cancelled
 * and downloaded through the other; a 3,000-item batch survives a worker killed with SIGKILL (its leases come back by
 * heartbeat: leases are far longer than the test) and then every process killed and restarted, each custom_id recorded
 * once; a worker without a batch's provider never claims its items; three workers stay within a shared rpm budget over
 * every window; a collection imported through one server is searched through the other, and after the restart.
 */
const reachable = await postgresReachable();

const PACED_RPM = 600;
/** Leases far longer than the test: only the heartbeat can give a killed worker's items back in time. */
const LEASE_MS = 600_000;

/** A running API server process: the openai SDK on it, and its root URL for Weaviate's REST routes. */
interface ApiServer {
  child: ChildProcess;
  openai: OpenAI;
  root: string;
}

/** One JSON call to a server's Weaviate REST route; answers status and parsed body. */
async function rest(root: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(root + path, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The widest count of `arrivals` (sorted unix ms) inside any window of `windowMs` starting at an arrival. */
function busiestWindow(arrivals: number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < arrivals.length; i++) {
    while (j < arrivals.length && arrivals[j]! < arrivals[i]! + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe.skipIf(!reachable)("scale out on PostgreSQL: two API servers and three workers as processes on one database", () => {
  let db: { url: string; drop: () => Promise<void> };
  let sql: pg.Client;
  let dir: string;
  const up = new FakeUpstream();
  const gpu = new FakeUpstream();
  const paced = new FakeUpstream();
  const pacedArrivals: number[] = [];
  const children: ChildProcess[] = [];
  let serverConfig: string;
  let workerConfig: string;
  let gpuConfig: string;
  let a: ApiServer;
  let b: ApiServer;
  let workers: ChildProcess[] = [];
  /** Lease owner id of workers[0] (read from the `workers` table as it registered). */
  let firstWorkerId = "";

  const workerIds = async () => new Set((await sql.query<{ id: string }>(`SELECT id FROM workers`)).rows.map((r) => r.id));

  /** Starts a worker process; resolves once its metrics port answers (it registered before listening). */
  async function startWorker(config: string, name: string): Promise<ChildProcess> {
    const port = await freePort();
    const child = spawnCli(["worker", "--database-url", db.url, "-c", config, "--data-dir", join(dir, name), "--metrics-port", String(port)], {}, { built: true });
    children.push(child);
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    return child;
  }

  async function startServer(name: string): Promise<ApiServer> {
    const port = await freePort();
    const child = spawnCli(["serve", "--no-dispatch", "--port", String(port), "--grpc-port", "0", "-c", serverConfig, "--data-dir", join(dir, name)], { OPENBATCH_DATABASE_URL: db.url }, { built: true });
    children.push(child);
    const root = `http://127.0.0.1:${port}`;
    await waitHealthy(`${root}/healthz`);
    return { child, root, openai: new OpenAI({ baseURL: `${root}/v1`, apiKey: "k", maxRetries: 0 }) };
  }

  /** Both API servers and three workers; the first worker alone first, so its lease owner id is known. */
  async function startCluster(): Promise<void> {
    [a, b] = await Promise.all([startServer("api-a"), startServer("api-b")]);
    const before = await workerIds();
    const first = await startWorker(workerConfig, "w1");
    firstWorkerId = [...(await workerIds())].find((id) => !before.has(id)) ?? "";
    expect(firstWorkerId).not.toBe("");
    workers = [first, ...(await Promise.all([startWorker(workerConfig, "w2"), startWorker(workerConfig, "w3")]))];
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "openbatch-pg-scale-"));
    await Promise.all([up.start(), gpu.start(), paced.start()]);
    up.plan = () => ({ kind: "delay", ms: 20 });
    paced.plan = () => {
      pacedArrivals.push(Date.now());
      return { kind: "ok" };
    };
    const providers = {
      // A budget far above what the test sends: the window is maxConcurrency at once (no latency probing on a busy box).
      up: { type: "openai-compatible", baseURL: up.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000, rpm: 1_000_000 },
      paced: { type: "openai-compatible", baseURL: paced.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000, rpm: PACED_RPM },
      gpu: { type: "openai-compatible", baseURL: gpu.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000 },
    };
    const models = { "gpu-model": "gpu", "paced-model": "paced", "*": "up" };
    serverConfig = join(dir, "server.json");
    await writeFile(serverConfig, JSON.stringify({ providers, models, leaseMs: LEASE_MS }));
    workerConfig = join(dir, "worker.json");
    await writeFile(workerConfig, JSON.stringify({ providers: { up: providers.up, paced: providers.paced }, models: { "paced-model": "paced", "*": "up" }, leaseMs: LEASE_MS }));
    gpuConfig = join(dir, "gpu.json");
    await writeFile(gpuConfig, JSON.stringify({ providers: { gpu: providers.gpu }, models: { "*": "gpu" }, leaseMs: LEASE_MS }));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await startCluster();
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map((c) => exited(c)));
    await Promise.all([up.stop(), gpu.stop(), paced.stop()]);
    await sql?.end();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a batch created through one server is listed, read and downloaded through the other; a cancel through either holds", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `x${i}`);
    const file = await uploadJsonl(a.openai, chatLines(keys));
    const batch = await a.openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const listed = await b.openai.batches.list({ limit: 10 });
    expect(listed.data.map((x) => x.id)).toContain(batch.id);
    const done = await waitFor(b.openai, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 40, completed: 40, failed: 0 });
    const out = await readJsonl(b.openai, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    // The input file's bytes, uploaded through a, read through b.
    expect(await (await b.openai.files.content(file.id)).text()).toBe(chatLines(keys));

    // A cancel through b of a batch created through a, while its calls are held upstream.
    let held = 0;
    up.plan = () => (held++, { kind: "held" });
    const slow = await a.openai.batches.create({ input_file_id: (await uploadJsonl(a.openai, chatLines(["h1", "h2", "h3"]))).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (let i = 0; i < 600 && held === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const cancelling = await b.openai.batches.cancel(slow.id);
    expect(["cancelling", "cancelled"]).toContain(cancelling.status);
    up.release();
    const ended = await waitFor(a.openai, slow.id);
    expect(ended.status).toBe("cancelled");
    expect(ended.request_counts!.total).toBe(3);
    up.plan = () => ({ kind: "delay", ms: 20 });
  }, 120_000);

  it("three workers together stay within the provider's shared rpm budget over every window", async () => {
    const n = 60;
    const keys = Array.from({ length: n }, (_, i) => `p${i}`);
    const file = await uploadJsonl(a.openai, chatLines(keys, "paced-model"));
    const batch = await a.openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(b.openai, batch.id, undefined, 90_000);
    expect(done.request_counts).toMatchObject({ total: n, completed: n });
    // Every call answered at once and none repeated: nothing was refused or retried.
    expect(paced.calls.length).toBe(n);
    // Arrivals as the upstream counted them, in every sliding window of 1 s, 2 s, 5 s and the whole run: within the rpm,
    // plus two sends (the workers share one schedule in PostgreSQL, sends 60 s ÷ rpm apart whoever sends them; a busy
    // machine delays some sends more than others). Uncoordinated, three workers at the full budget each would send
    // three times the rpm; three workers each pacing a third, up to three sends more per window.
    const span = pacedArrivals.at(-1)! - pacedArrivals[0]! + 1;
    const seen = [1000, 2000, 5000, span].map((windowMs) => ({ windowMs, most: busiestWindow(pacedArrivals, windowMs), allowed: Math.floor((PACED_RPM * windowMs) / 60_000) + 2 }));
    console.log(`postgres-scale: busiest windows of the paced upstream (rpm ${PACED_RPM}): ${seen.map((w) => `${w.most} calls in ${w.windowMs} ms`).join(", ")}`);
    for (const w of seen) expect(w.most, `calls in the busiest ${w.windowMs} ms`).toBeLessThanOrEqual(w.allowed);
  }, 120_000);

  it("a worker without a batch's provider never claims its items; one that has it runs them", async () => {
    const gpuFile = await uploadJsonl(a.openai, chatLines(["g1", "g2", "g3", "g4"], "gpu-model"));
    const gpuBatch = await a.openai.batches.create({ input_file_id: gpuFile.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    // A batch created after it, on a provider the workers have, finishes: the workers were running all along.
    const other = await a.openai.batches.create({ input_file_id: (await uploadJsonl(a.openai, chatLines(["o1", "o2"]))).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect((await waitFor(b.openai, other.id)).status).toBe("completed");
    const waiting = await b.openai.batches.retrieve(gpuBatch.id);
    expect(waiting.status).toBe("in_progress");
    expect(waiting.request_counts).toMatchObject({ total: 4, completed: 0, failed: 0 });
    // Not even leased: every item is still queued, with no owner.
    const rows = (await sql.query(`SELECT state, lease_owner FROM request_items WHERE batch_id = $1`, [gpuBatch.id])).rows;
    expect(rows).toEqual(Array.from({ length: 4 }, () => ({ state: "queued", lease_owner: null })));
    expect(gpu.calls.length).toBe(0);
    await startWorker(gpuConfig, "gpu-worker");
    const done = await waitFor(b.openai, gpuBatch.id);
    expect(done.request_counts).toMatchObject({ total: 4, completed: 4 });
    expect(gpu.calls.length).toBe(4);
    expect(up.calls.filter((c) => c.body.model === "gpu-model")).toEqual([]);
  }, 120_000);

  it("a collection imported through one server's Weaviate REST batch is searched through the other's GraphQL and REST", async () => {
    expect((await rest(a.root, "POST", "/v1/schema", { class: "Shared", vectorizer: "none", properties: [{ name: "title", dataType: ["text"] }] })).status).toBe(200);
    const ids = Array.from({ length: 200 }, () => randomUUID());
    const objects = ids.map((id, i) => ({ class: "Shared", id, properties: { title: i === 77 ? "the quantum harbour" : `plain title ${i}` }, vector: [Math.cos(i / 40), Math.sin(i / 40), 0.5] }));
    const imported = await rest(a.root, "POST", "/v1/batch/objects", { objects });
    expect(imported.status).toBe(200);
    expect(imported.body.filter((o: any) => o.result?.errors)).toEqual([]);
    // Right after A answered, through B: nearest first, BM25, by id, and counted.
    const q = (query: string) => rest(b.root, "POST", "/v1/graphql", { query });
    const near = await q(`{ Get { Shared(nearVector:{vector:[${Math.cos(120 / 40)}, ${Math.sin(120 / 40)}, 0.5]}, limit:3) { title _additional { id } } } }`);
    expect(near.body.data.Get.Shared[0]._additional.id).toBe(ids[120]);
    const keyword = await q(`{ Get { Shared(bm25:{query:"quantum"}, limit:5) { title _additional { id } } } }`);
    expect(keyword.body.data.Get.Shared.map((o: any) => o._additional.id)).toEqual([ids[77]]);
    expect((await rest(b.root, "GET", `/v1/objects/Shared/${ids[5]}`)).body.properties).toEqual({ title: "plain title 5" });
    expect((await q(`{ Aggregate { Shared { meta { count } } } }`)).body.data.Aggregate.Shared[0].meta.count).toBe(200);
  }, 60_000);

  it("a worker stalled past the dead mark (SIGSTOP) is counted out by the others, and registers again when it resumes", async () => {
    const registered = async () => (await workerIds()).has(firstWorkerId);
    expect(await registered()).toBe(true);
    workers[0]!.kill("SIGSTOP");
    try {
      for (let i = 0; i < 300 && (await registered()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await registered()).toBe(false);
    } finally {
      workers[0]!.kill("SIGCONT");
    }
    for (let i = 0; i < 200 && !(await registered()); i++) await new Promise((r) => setTimeout(r, 50));
    // Back in the table: budget shares count it, and if it dies now its leases return by heartbeat (next test).
    expect(await registered()).toBe(true);
  }, 60_000);

  it("a 3,000-item batch created on one server, read on the other: a worker killed with SIGKILL mid-batch has its leases back within seconds (heartbeat), every custom_id once", async () => {
    const n = 3000;
    const keys = Array.from({ length: n }, (_, i) => `k${i}`);
    let seen = 0;
    // A quarter of the way in, calls are held upstream for a while, so the worker killed then certainly dies with
    // calls in flight (a worker between two claims holds no lease for a moment).
    let holding = false;
    up.plan = () => {
      if (++seen === n / 4) holding = true;
      return { kind: "delay", ms: holding ? 1500 : 20 };
    };
    const file = await uploadJsonl(b.openai, chatLines(keys));
    const batch = await b.openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect((await a.openai.batches.retrieve(batch.id)).request_counts!.total).toBe(n);
    for (let i = 0; i < 2400 && !holding; i++) await new Promise((r) => setTimeout(r, 25));
    expect(holding).toBe(true);
    const leased = async () => Number((await sql.query(`SELECT count(*) AS n FROM request_items WHERE lease_owner = $1`, [firstWorkerId])).rows[0].n);
    // Past the calls answered before the hold; what it leases now stays leased while the hold lasts.
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 40 && (await leased()) === 0; i++) await new Promise((r) => setTimeout(r, 25));
    workers[0]!.kill("SIGKILL");
    const killedAt = Date.now();
    holding = false;
    await exited(workers[0]!);
    // Its leases as PostgreSQL holds them, from the kill until the heartbeat of the live processes returned them.
    const heldAtKill = await leased();
    while ((await leased()) > 0 && Date.now() - killedAt < 60_000) await new Promise((r) => setTimeout(r, 50));
    const backAfter = Date.now() - killedAt;
    console.log(`postgres-scale: ${heldAtKill} items leased by the killed worker came back ${backAfter} ms after its kill -9 (leases of ${LEASE_MS} ms)`);
    expect(heldAtKill).toBeGreaterThan(0);
    expect(await leased()).toBe(0);

    const done = await waitFor(a.openai, batch.id, undefined, 150_000);
    expect(workers[0]!.signalCode).toBe("SIGKILL");
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: n, completed: n, failed: 0 });
    const out = await readJsonl(a.openai, done.output_file_id);
    expect(out).toHaveLength(n);
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(n);
    // Each custom_id carries its own request's answer.
    for (const l of out) expect(l.response.body.choices[0].message.content).toBe(`echo: ${keys[Number(l.custom_id.slice(4))]}`);
    expect(await readJsonl(b.openai, done.error_file_id)).toEqual([]);
    const repeated = keys.filter((k) => up.count(k) > 1).length;
    console.log(`postgres-scale: ${repeated} of ${n} items were sent upstream twice (at-least-once), each recorded once`);
    expect(keys.every((k) => up.count(k) >= 1)).toBe(true);
  }, 240_000);

  it("every process killed with SIGKILL mid-batch and restarted: nothing lost, every custom_id once, files downloadable, the collection still searchable", async () => {
    const n = 1500;
    const keys = Array.from({ length: n }, (_, i) => `r${i}`);
    let seen = 0;
    // A third of the way in, calls are held upstream: every process dies with calls in flight.
    let holding = false;
    up.plan = () => {
      if (++seen === n / 3) holding = true;
      return { kind: "delay", ms: holding ? 1500 : 20 };
    };
    const text = chatLines(keys);
    const file = await uploadJsonl(a.openai, text);
    const batch = await a.openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (let i = 0; i < 2400 && !holding; i++) await new Promise((r) => setTimeout(r, 25));
    expect(holding).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map((c) => exited(c)));
    const left = (await sql.query(`SELECT count(*) FILTER (WHERE state = 'queued')::int AS queued, count(*) FILTER (WHERE state = 'in_flight')::int AS leased FROM request_items WHERE batch_id = $1`, [batch.id])).rows[0];
    // Leased by the dead (for 600 s): the restarted processes must hand them back by heartbeat.
    expect(left.leased).toBeGreaterThan(0);
    expect(left.queued).toBeGreaterThan(0);

    up.plan = () => ({ kind: "delay", ms: 20 });
    await startCluster();
    const done = await waitFor(b.openai, batch.id, undefined, 150_000);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: n, completed: n, failed: 0 });
    const out = await readJsonl(b.openai, done.output_file_id);
    expect(out).toHaveLength(n);
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(n);
    expect(await readJsonl(a.openai, done.error_file_id)).toEqual([]);
    expect(await (await a.openai.files.content(file.id)).text()).toBe(text);
    expect(await (await b.openai.files.content(done.output_file_id!)).text()).toBe(await (await a.openai.files.content(done.output_file_id!)).text());
    // The collection imported before the kill: rebuilt by each restarted server from PostgreSQL.
    for (const s of [a, b]) {
      const counted = await rest(s.root, "POST", "/v1/graphql", { query: `{ Aggregate { Shared { meta { count } } } }` });
      expect(counted.body.data.Aggregate.Shared[0].meta.count).toBe(200);
    }
  }, 240_000);
});
