import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeBatchVendor } from "./support/fake-batch-vendor.js";
import { chatLines, readJsonl, uploadJsonl, waitFor } from "./support/harness.js";

/**
 * kill -9 of a server running a batch natively, at the three points where a crash could lose or repeat vendor work:
 * after the vendor accepted a job but before its id was stored, while polling, and while recording results. The
 * restarted server must never create a vendor job twice and must record every custom_id exactly once.
 */
describe("native mode: kill -9 and restart on the same data dir", () => {
  let vendor: FakeBatchVendor;
  let dir: string;
  let port: number;
  let args: string[];
  let server: ReturnType<typeof spawnCli> | null = null;

  beforeEach(async () => {
    vendor = await new FakeBatchVendor().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-native-crash-"));
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ providers: { v: { type: "openai-compatible", baseURL: vendor.url, apiKey: "vk", batchMode: "native", nativePollMs: 50 } }, models: { "*": "v" } }),
    );
    port = await freePort();
    args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
  });
  afterEach(async () => {
    if (server) {
      server.kill("SIGKILL");
      await exited(server);
      server = null;
    }
    await vendor.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function start() {
    server = spawnCli(args);
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
  }
  async function kill() {
    server!.kill("SIGKILL");
    await exited(server!);
    server = null;
  }
  async function until(cond: () => boolean | Promise<boolean>) {
    const deadline = Date.now() + 60_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error("condition never held");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async function create(client: OpenAI, n: number) {
    const keys = Array.from({ length: n }, (_, i) => `crash ${i}`);
    const file = await uploadJsonl(client, chatLines(keys));
    return client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  }
  async function expectExactlyOnce(client: OpenAI, id: string, n: number) {
    const done = await waitFor(client, id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    const out = await readJsonl(client, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(Array.from({ length: n }, (_, i) => `req-${i}`).sort());
    expect(out.every((l) => l.response.body.choices[0].message.content.startsWith("vendor: crash "))).toBe(true);
  }

  it("killed after the vendor accepted the job but before its id was stored: found by its tag, never created twice", async () => {
    vendor.fault = (op, n) => (op === "create" && n === 1 ? { kind: "apply-then-hold" } : { kind: "ok" });
    let client = await start();
    const batch = await create(client, 5);
    await until(() => vendor.batches.size === 1);
    await kill();
    vendor.release();
    client = await start();
    await expectExactlyOnce(client, batch.id, 5);
    expect(vendor.batches.size).toBe(1);
    expect(vendor.count("create")).toBe(1);
    expect(vendor.count("list")).toBeGreaterThanOrEqual(1);
  });

  it("killed while polling: the restarted server polls the same vendor job on", async () => {
    vendor.pollsToEnd = 6;
    let client = await start();
    const batch = await create(client, 5);
    await until(() => vendor.count("poll") >= 2);
    await kill();
    client = await start();
    await expectExactlyOnce(client, batch.id, 5);
    expect(vendor.batches.size).toBe(1);
    expect(vendor.count("create")).toBe(1);
  });

  it("killed while recording results: recorded again after the restart, every custom_id once", async () => {
    const N = 1200;
    vendor.stallDownloadAfter = 700;
    let client = await start();
    const batch = await create(client, N);
    // Results are recorded 500 at a time: the first group is in, the rest of the download stalls.
    await until(async () => ((await client.batches.retrieve(batch.id)).request_counts?.completed ?? 0) >= 500);
    expect((await client.batches.retrieve(batch.id)).request_counts?.completed).toBeLessThan(N);
    await kill();
    vendor.release();
    client = await start();
    await expectExactlyOnce(client, batch.id, N);
    expect(vendor.batches.size).toBe(1);
    expect(vendor.count("download")).toBe(2);
  });
});
