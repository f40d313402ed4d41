import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, uploadJsonl, waitFor } from "./support/harness.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/**
 * Scale-out on PostgreSQL, as a user runs it: two API servers (`serve --no-dispatch`) and workers (`openbatch worker`)
 * as separate processes on one database. A batch created through one server is listed, cancelled and downloaded through
 * the other; workers killed with SIGKILL mid-batch lose nothing and record every custom_id once; a worker without a
 * batch's provider never claims its items; two workers together stay within a shared rpm budget.
 */
const reachable = await postgresReachable();

const PACED_RPM = 600;

describe.skipIf(!reachable)("scale out on PostgreSQL: API servers and workers as processes on one database", () => {
  let db: { url: string; drop: () => Promise<void> };
  let dir: string;
  const up = new FakeUpstream();
  const gpu = new FakeUpstream();
  const paced = new FakeUpstream();
  const pacedArrivals: number[] = [];
  const children: ChildProcess[] = [];
  let serverConfig: string;
  let workerConfig: string;
  let gpuConfig: string;
  let a: OpenAI;
  let b: OpenAI;

  /** Starts a worker process; resolves once its log says it runs. */
  async function startWorker(config: string, name: string): Promise<ChildProcess> {
    const port = await freePort();
    const child = spawnCli(["worker", "--database-url", db.url, "-c", config, "--data-dir", join(dir, name), "--metrics-port", String(port)]);
    children.push(child);
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    return child;
  }

  async function startServer(name: string): Promise<OpenAI> {
    const port = await freePort();
    const child = spawnCli(["serve", "--no-dispatch", "--port", String(port), "--grpc-port", "0", "-c", serverConfig, "--data-dir", join(dir, name)], {
      OPENBATCH_DATABASE_URL: db.url,
    });
    children.push(child);
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "k", maxRetries: 0 });
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
      up: { type: "openai-compatible", baseURL: up.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000 },
      paced: { type: "openai-compatible", baseURL: paced.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000, rpm: PACED_RPM },
      gpu: { type: "openai-compatible", baseURL: gpu.url, apiKey: "k", maxConcurrency: 8, timeoutMs: 5000 },
    };
    const models = { "gpu-model": "gpu", "paced-model": "paced", "*": "up" };
    // Leases far longer than the test: only the heartbeat can give a killed worker's items back in time.
    serverConfig = join(dir, "server.json");
    await writeFile(serverConfig, JSON.stringify({ providers, models, leaseMs: 600_000 }));
    workerConfig = join(dir, "worker.json");
    await writeFile(workerConfig, JSON.stringify({ providers: { up: providers.up, paced: providers.paced }, models: { "paced-model": "paced", "*": "up" }, leaseMs: 600_000 }));
    gpuConfig = join(dir, "gpu.json");
    await writeFile(gpuConfig, JSON.stringify({ providers: { gpu: providers.gpu }, models: { "*": "gpu" }, leaseMs: 600_000 }));
    [a, b] = await Promise.all([startServer("api-a"), startServer("api-b")]);
    await Promise.all([startWorker(workerConfig, "w1"), startWorker(workerConfig, "w2")]);
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map((c) => exited(c)));
    await Promise.all([up.stop(), gpu.stop(), paced.stop()]);
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a batch created through one server is listed, read and downloaded through the other; a cancel through either holds", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `x${i}`);
    const file = await uploadJsonl(a, chatLines(keys));
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const listed = await b.batches.list({ limit: 10 });
    expect(listed.data.map((x) => x.id)).toContain(batch.id);
    const done = await waitFor(b, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 40, completed: 40, failed: 0 });
    const out = await readJsonl(b, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    // The input file's bytes, uploaded through a, read through b.
    expect(await (await b.files.content(file.id)).text()).toBe(chatLines(keys));

    // A cancel through b of a batch created through a, while its calls are held upstream.
    let held = 0;
    up.plan = () => (held++, { kind: "held" });
    const slow = await a.batches.create({ input_file_id: (await uploadJsonl(a, chatLines(["h1", "h2", "h3"]))).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (let i = 0; i < 600 && held === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const cancelling = await b.batches.cancel(slow.id);
    expect(["cancelling", "cancelled"]).toContain(cancelling.status);
    up.release();
    const ended = await waitFor(a, slow.id);
    expect(ended.status).toBe("cancelled");
    expect(ended.request_counts!.total).toBe(3);
    up.plan = () => ({ kind: "delay", ms: 20 });
  }, 120_000);

  it("two workers together stay within the provider's shared rpm budget", async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `p${i}`);
    const file = await uploadJsonl(a, chatLines(keys, "paced-model"));
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(b, batch.id, undefined, 90_000);
    expect(done.request_counts).toMatchObject({ total: 60, completed: 60 });
    // Count what reached the upstream in every 2 s window: the budget allows rpm/30 (+ the first sends of each worker).
    const perWindow = (PACED_RPM / 60) * 2;
    let most = 0;
    for (let i = 0; i < pacedArrivals.length; i++) {
      let n = 0;
      while (i + n < pacedArrivals.length && pacedArrivals[i + n]! < pacedArrivals[i]! + 2000) n++;
      most = Math.max(most, n);
    }
    // Uncoordinated, two workers at the full budget each would send about twice perWindow.
    expect(most).toBeLessThanOrEqual(perWindow + 3);
    expect(paced.calls.length).toBe(60);
  }, 120_000);

  it("a worker without a batch's provider never claims its items; one that has it runs them", async () => {
    const gpuFile = await uploadJsonl(a, chatLines(["g1", "g2", "g3", "g4"], "gpu-model"));
    const gpuBatch = await a.batches.create({ input_file_id: gpuFile.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    // A batch created after it, on a provider the workers have, finishes: the workers were running all along.
    const other = await a.batches.create({ input_file_id: (await uploadJsonl(a, chatLines(["o1", "o2"]))).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect((await waitFor(b, other.id)).status).toBe("completed");
    const waiting = await b.batches.retrieve(gpuBatch.id);
    expect(waiting.status).toBe("in_progress");
    expect(waiting.request_counts).toMatchObject({ total: 4, completed: 0, failed: 0 });
    expect(gpu.calls.length).toBe(0);
    await startWorker(gpuConfig, "gpu-worker");
    const done = await waitFor(b, gpuBatch.id);
    expect(done.request_counts).toMatchObject({ total: 4, completed: 4 });
    expect(gpu.calls.length).toBe(4);
    expect(up.calls.filter((c) => c.body.model === "gpu-model")).toEqual([]);
  }, 120_000);

  it("workers killed with SIGKILL mid-batch: their leases come back, every custom_id is recorded exactly once", async () => {
    const n = 400;
    const keys = Array.from({ length: n }, (_, i) => `k${i}`);
    const workers = children.slice(2, 4);
    let seen = 0;
    let replacement: Promise<ChildProcess> | null = null;
    up.plan = () => {
      seen++;
      // kill -9 one worker a quarter of the way in, and the other halfway, starting a fresh one in its place.
      if (seen === n / 4) workers[0]!.kill("SIGKILL");
      if (seen === n / 2) {
        workers[1]!.kill("SIGKILL");
        replacement = startWorker(workerConfig, "w3");
      }
      return { kind: "delay", ms: 20 };
    };
    const file = await uploadJsonl(a, chatLines(keys));
    const batch = await b.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(a, batch.id, undefined, 120_000);
    expect(replacement).not.toBeNull();
    await replacement;
    expect(workers.every((w) => w.signalCode === "SIGKILL")).toBe(true);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: n, completed: n, failed: 0 });
    const ids = (await readJsonl(b, done.output_file_id)).map((l) => l.custom_id);
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
    expect(await readJsonl(b, done.error_file_id)).toEqual([]);
  }, 180_000);
});
