import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, spawnCli } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, uploadJsonl, upstreamConfig, type TestServer } from "./support/harness.js";

describe("openbatch watch", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    upstream.plan = () => ({ kind: "held" });
    server = await startServer({ ...upstreamConfig(upstream.url, { maxConcurrency: 2 }), apiKeys: ["k1"] });
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("follows a running batch to its end and reports progress", async () => {
    const client = server.client("k1");
    const file = await uploadJsonl(client, chatLines(Array.from({ length: 40 }, (_, i) => `w ${i}`)));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const root = server.url.replace(/\/v1$/, "");
    const watcher = spawnCli(["watch", batch.id, "--url", root, "--interval", "100"], { OPENBATCH_API_KEY: "k1" });
    // The upstream holds every call until the watcher has reported the batch running.
    const deadline = Date.now() + 30_000;
    while (!watcher.output().includes("in_progress:") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    upstream.release();
    expect(await exited(watcher)).toBe(0);
    expect(watcher.output()).toContain("in_progress:");
    expect(watcher.output()).toContain(`Batch ${batch.id} completed: 40 succeeded, 0 failed, of 40.`);
  });

  it("exits 1 with the server's message for an unknown batch or a wrong key", async () => {
    const root = server.url.replace(/\/v1$/, "");
    const missing = spawnCli(["watch", "batch_nope", "--url", root], { OPENBATCH_API_KEY: "k1" });
    expect(await exited(missing)).toBe(1);
    expect(missing.output()).toContain("404");
    const unauthorised = spawnCli(["watch", "batch_nope", "--url", root, "--api-key", "wrong"]);
    expect(await exited(unauthorised)).toBe(1);
    expect(unauthorised.output()).toContain("401");
  });
});
