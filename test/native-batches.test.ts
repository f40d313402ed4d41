import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, readJsonl, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/**
 * Native mode end to end: OpenBatch A hands its batches to OpenBatch B's own batch API (B acts as the vendor), and B
 * runs them on a fake chat upstream. Every custom_id must come out of A exactly once, B's upstream must see each
 * request exactly once, and B must hold one batch per chunk.
 */
describe("native mode: A runs its batches on B's OpenAI Batch API", () => {
  let upstream: FakeUpstream;
  let b: TestServer;
  let a: TestServer;
  const CHUNK = 7;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    b = await startServer(upstreamConfig(upstream.url));
    a = await startServer({
      providers: { vendor: { type: "openai-compatible", baseURL: b.url, apiKey: "b-key", batchMode: "native", nativeMaxRequests: CHUNK, nativePollMs: 50 } },
      models: { "*": "vendor" },
    });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await upstream?.stop();
  });

  it("every custom_id exactly once in A's output, each request sent upstream once, ceil(N / chunk) vendor batches", async () => {
    const N = 20;
    const keys = Array.from({ length: N }, (_, i) => `native item ${i}`);
    const client = a.client();
    const before = (await b.client().batches.list({ limit: 100 })).data.length;
    const file = await uploadJsonl(client, chatLines(keys));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
    const out = await readJsonl(client, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    for (const line of out) {
      const i = Number(line.custom_id.slice(4));
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.choices[0].message.content).toBe(`echo: ${keys[i]}`);
    }
    expect(done.error_file_id).toBeNull();
    for (const k of keys) expect(upstream.count(k)).toBe(1);
    const vendorBatches = (await b.client().batches.list({ limit: 100 })).data.slice(0, (await b.client().batches.list({ limit: 100 })).data.length - before);
    expect(vendorBatches).toHaveLength(Math.ceil(N / CHUNK));
    // Each vendor batch carries our job tag, and the upstream key A was configured with reached B.
    expect(vendorBatches.every((v) => typeof v.metadata?.openbatch_job === "string")).toBe(true);
    // Usage is summed from the vendor's results.
    expect((done as any).usage.input_tokens).toBeGreaterThan(0);
  });

  it("x-openbatch-batch-mode: direct runs a batch directly on a native provider; a bad value is a 400", async () => {
    const client = a.client();
    const before = (await b.client().batches.list({ limit: 100 })).data.length;
    const keys = ["direct one", "direct two"];
    const file = await uploadJsonl(client, chatLines(keys));
    // A provider whose batchMode is native, asked for direct: A sends each request itself (to B's chat endpoint).
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }, { headers: { "x-openbatch-batch-mode": "direct" } });
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect((await b.client().batches.list({ limit: 100 })).data.length).toBe(before);
    const err = await apiError(client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }, { headers: { "x-openbatch-batch-mode": "cheap" } }));
    expect(err.status).toBe(400);
    expect(err.message).toContain("x-openbatch-batch-mode");
  });
});
