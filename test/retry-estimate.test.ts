import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countTokens } from "gpt-tokenizer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, spawnCli } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

describe("re-running only the failures", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let healthy = false;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    // Odd items fail with a non-retryable 400 until the upstream is "fixed".
    upstream.plan = (call) => (!healthy && Number(call.key.split(" ")[1]) % 2 === 1 ? { kind: "status", status: 400 } : { kind: "ok" });
    server = await startServer({ ...upstreamConfig(upstream.url), prices: { "fake-*": { input: 2, output: 8 } } });
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("POST /v1/batches/{id}/retry and `openbatch retry` make a batch of just the failed requests", async () => {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(Array.from({ length: 10 }, (_, i) => `n ${i}`)));
    const first = await waitFor(client, (await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).id);
    expect(first.request_counts).toEqual({ total: 10, completed: 5, failed: 5 });
    // Usage is priced at the configured price: batch = half of regular.
    const cost = (first as unknown as { estimated_cost: { regular: number; batch: number } }).estimated_cost;
    expect(cost.regular).toBeCloseTo((first.usage!.input_tokens * 2 + first.usage!.output_tokens * 8) / 1e6, 6);
    expect(cost.batch).toBeCloseTo(cost.regular / 2, 6);

    healthy = true;
    const res = await fetch(`${server.url}/batches/${first.id}/retry`, { method: "POST" });
    expect(res.status).toBe(200);
    const retry = (await res.json()) as { id: string; metadata: Record<string, string> };
    expect(retry.metadata.retry_of).toBe(first.id);
    const done = await waitFor(client, retry.id);
    expect(done.request_counts).toEqual({ total: 5, completed: 5, failed: 0 });
    const ids = (await readJsonl(client, done.output_file_id)).map((l) => l.custom_id).sort();
    expect(ids).toEqual(["req-1", "req-3", "req-5", "req-7", "req-9"]);

    // Nothing left to retry in the retry batch; the CLI says so and exits 1.
    const cli = spawnCli(["retry", retry.id, "--url", server.url.replace(/\/v1$/, "")]);
    expect(await exited(cli)).toBe(1);
    expect(cli.output()).toContain("nothing to retry");
  });

  it("refuses to retry a batch that is still running", async () => {
    upstream.plan = () => ({ kind: "delay", ms: 2000 });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["slow 1"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const res = await fetch(`${server.url}/batches/${batch.id}/retry`, { method: "POST" });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("batch_not_ended");
    await client.batches.cancel(batch.id);
  });
});

describe("openbatch estimate", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "openbatch-estimate-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("counts requests and real tokens, prices regular vs batch, and recommends a split", async () => {
    const texts = ["Classify: positive or negative? 'Great product!'", "Summarise the plot of Hamlet in one line.", "Translate to Spanish: good morning", "What is 2+2?"];
    const input = join(dir, "in.jsonl");
    await writeFile(input, texts.map((t, i) => JSON.stringify({ custom_id: `r${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "gpt-4o-mini", messages: [{ role: "user", content: t }], max_tokens: 50 } })).join("\n") + "\n");
    await writeFile(join(dir, "config.json"), JSON.stringify({ prices: { "gpt-4o-mini": { input: 0.15, output: 0.6 } }, limits: { maxRequestsPerBatch: 3 } }));
    const cli = spawnCli(["estimate", input, "--config", join(dir, "config.json"), "--json"]);
    expect(await exited(cli)).toBe(0);
    const est = JSON.parse(cli.output().slice(cli.output().indexOf("{")));
    const inputTokens = texts.reduce((s, t) => s + countTokens(t + "\n"), 0);
    expect(est).toMatchObject({ requests: 4, model: "gpt-4o-mini", inputTokens, maxOutputTokens: 200 });
    expect(est.cost.regular).toBeCloseTo((inputTokens * 0.15 + 200 * 0.6) / 1e6, 9);
    expect(est.cost.batch).toBeCloseTo(est.cost.regular / 2, 9);
    expect(est.split).toMatchObject({ batches: 2, requestsPerBatch: 2 });
  });
});
