import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

const jeopardy = JSON.parse(readFileSync(new URL("../../shared/datasets/jeopardy/jeopardy_1k.json", import.meta.url), "utf8")) as { Question: string }[];
const reviews = readFileSync(new URL("../../shared/datasets/sentiment-labelled-sentences/yelp_labelled.txt", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => l.split("\t")[0]!);

describe("OpenAI Files + Batches lifecycle through the openai SDK", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url, { maxConcurrency: 16 }));
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("runs 2,000 real lines to completion, one output line per custom_id, usage summed", async () => {
    const keys = [...jeopardy.map((q) => q.Question), ...reviews];
    expect(keys.length).toBe(2000);
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(keys));
    expect(file.purpose).toBe("batch");
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { job: "lifecycle" } });
    expect(created.object).toBe("batch");
    expect(created.metadata).toEqual({ job: "lifecycle" });
    expect(created.request_counts?.total).toBe(2000);
    const done = await waitFor(client, created.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 2000, completed: 2000, failed: 0 });
    expect(done.in_progress_at).not.toBeNull();
    expect(done.finalizing_at).not.toBeNull();
    expect(done.completed_at).not.toBeNull();
    expect(done.error_file_id).toBeNull();
    const out = await readJsonl(client, done.output_file_id);
    expect(out).toHaveLength(2000);
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(2000);
    const first = out.find((l) => l.custom_id === "req-0");
    expect(first.response.status_code).toBe(200);
    expect(first.response.body.choices[0].message.content).toBe("echo: " + keys[0]);
    expect(first.error).toBeNull();
    expect(first.id).toMatch(/^batch_req_/);
    const expectedInput = keys.reduce((s, k) => s + k.split(/\s+/).length, 0);
    expect(done.usage?.input_tokens).toBe(expectedInput);
    expect(done.usage?.output_tokens).toBe(2000 * 3);
    expect(done.usage?.total_tokens).toBe(expectedInput + 6000);
    expect(upstream.calls[0]!.authorization).toBe("Bearer upstream-key");
    expect(upstream.maxInFlight).toBeLessThanOrEqual(16);
  });

  it("lists batches newest first with cursor pagination", async () => {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a"]));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).id);
    const page1 = await client.batches.list({ limit: 2 });
    expect(page1.data.map((b) => b.id)).toEqual([ids[2], ids[1]]);
    expect(page1.has_more).toBe(true);
    const all: string[] = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
    expect(all.slice(0, 3)).toEqual([ids[2], ids[1], ids[0]]);
    expect(new Set(all).size).toBe(all.length);
  });

  it("serves every batch endpoint", async () => {
    const client = server.client();
    const cases = [
      { url: "/v1/embeddings", body: { model: "e", input: "hello world" } },
      { url: "/v1/completions", body: { model: "c", prompt: "once upon" } },
      { url: "/v1/responses", body: { model: "r", input: "hi there" } },
    ] as const;
    for (const c of cases) {
      const file = await uploadJsonl(client, JSON.stringify({ custom_id: "x", method: "POST", url: c.url, body: c.body }) + "\n");
      const b = await client.batches.create({ input_file_id: file.id, endpoint: c.url, completion_window: "24h" });
      const done = await waitFor(client, b.id);
      expect(done.status).toBe("completed");
      const [line] = await readJsonl(client, done.output_file_id);
      expect(line.response.status_code).toBe(200);
      expect(upstream.calls.at(-1)!.path).toBe(c.url);
    }
  });
});
