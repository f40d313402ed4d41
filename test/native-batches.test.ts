import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exited, spawnCli } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, readJsonl, SHARED_CACHE_DIR, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

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
    // B checks keys: each of A's providers carries its own, and a gateway batch the caller's.
    b = await startServer({ ...upstreamConfig(upstream.url), apiKeys: ["b-key", "ant-key", "goog-key", "caller-upstream-key"] }, { cacheDir: SHARED_CACHE_DIR });
    const origin = b.url.replace(/\/v1$/, "");
    const native = { batchMode: "native", nativeMaxRequests: CHUNK, nativePollMs: 50 };
    a = await startServer({
      providers: {
        vendor: { type: "openai-compatible", baseURL: b.url, apiKey: "b-key", ...native },
        claude: { type: "anthropic", baseURL: origin, apiKey: "ant-key", ...native },
        gem: { type: "gemini", baseURL: origin, apiKey: "goog-key", ...native },
        emb: { type: "local-embeddings" },
      },
      models: { "claude-*": "claude", "gemini-*": "gem", "*": "vendor" },
      prices: { "*": { input: 1, output: 2 } },
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
    const before = (await b.client("b-key").batches.list({ limit: 100 })).data.length;
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
    const vendorBatches = (await b.client("b-key").batches.list({ limit: 100 })).data.slice(0, (await b.client("b-key").batches.list({ limit: 100 })).data.length - before);
    expect(vendorBatches).toHaveLength(Math.ceil(N / CHUNK));
    // Each vendor batch carries our job tag, and the upstream key A was configured with reached B.
    expect(vendorBatches.every((v) => typeof v.metadata?.openbatch_job === "string")).toBe(true);
    // Usage is summed from the vendor's results, and priced at batch prices: every item ran natively.
    expect((done as any).usage.input_tokens).toBeGreaterThan(0);
    const cost = (done as any).estimated_cost;
    expect(cost.charged).toBeCloseTo(cost.batch, 6);
    expect(cost.charged).toBeLessThan(cost.regular);
  });

  it("x-openbatch-batch-mode: direct runs a batch directly on a native provider; a bad value is a 400", async () => {
    const client = a.client();
    const before = (await b.client("b-key").batches.list({ limit: 100 })).data.length;
    const keys = ["direct one", "direct two"];
    const file = await uploadJsonl(client, chatLines(keys));
    // A provider whose batchMode is native, asked for direct: A sends each request itself (to B's chat endpoint).
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }, { headers: { "x-openbatch-batch-mode": "direct" } });
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect((await b.client("b-key").batches.list({ limit: 100 })).data.length).toBe(before);
    // Sent directly: regular prices.
    const cost = (done as any).estimated_cost;
    expect(cost.charged).toBeCloseTo(cost.regular, 6);
    const err = await apiError(client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }, { headers: { "x-openbatch-batch-mode": "cheap" } }));
    expect(err.status).toBe(400);
    expect(err.message).toContain("x-openbatch-batch-mode");
  });

  it("native on a provider without a batch API is refused (400 at create when the provider is known, per item otherwise)", async () => {
    const client = a.client();
    const lines = JSON.stringify({ custom_id: "g", method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input: "hello" } }) + "\n";
    const file = await uploadJsonl(client, lines);
    const create = (headers: Record<string, string>) => client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" }, { headers });
    const err = await apiError(create({ "x-openbatch-batch-mode": "native", "x-openbatch-provider": "emb" }));
    expect(err.status).toBe(400);
    expect(err.message).toContain("has no batch API");
    // Routed by its model only after validation: the item fails and says why, rather than running at another price.
    const batch = await create({ "x-openbatch-batch-mode": "native" });
    const done = await waitFor(client, batch.id);
    const errors = await readJsonl(client, done.error_file_id);
    expect(errors.map((l) => l.error.code)).toEqual(["native_unsupported"]);
  });

  /** Runs an OpenAI-dialect chat batch on A with `model`, and checks every answer came back once, translated back. */
  async function crossDialect(model: string, n: number, vendorCount: () => Promise<number>) {
    const keys = Array.from({ length: n }, (_, i) => `${model} item ${i}`);
    const client = a.client();
    const before = await vendorCount();
    const file = await uploadJsonl(client, chatLines(keys, model));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    const out = await readJsonl(client, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    for (const line of out) {
      // The vendor's answer (Anthropic message / Gemini response) comes back as an OpenAI chat.completion.
      expect(line.response.body.object).toBe("chat.completion");
      expect(line.response.body.choices[0].message.content).toBe(`echo: ${keys[Number(line.custom_id.slice(4))]}`);
    }
    for (const k of keys) expect(upstream.count(k)).toBe(1);
    expect((await vendorCount()) - before).toBe(Math.ceil(n / CHUNK));
  }

  it("an OpenAI-dialect batch run natively as Anthropic Message Batches on B", async () => {
    const count = async () => ((await (await fetch(b.url.replace(/\/v1$/, "") + "/v1/messages/batches?limit=1000", { headers: { "x-api-key": "ant-key" } })).json()) as { data: unknown[] }).data.length;
    await crossDialect("claude-test", 9, count);
  });

  it("an OpenAI-dialect batch run natively as Gemini Batch Mode on B", async () => {
    const count = async () => (((await (await fetch(b.url.replace(/\/v1$/, "") + "/v1beta/batches?pageSize=1000", { headers: { "x-goog-api-key": "goog-key" } })).json()) as { operations?: unknown[] }).operations ?? []).length;
    await crossDialect("gemini-test", 8, count);
  });

  it("gateway mode: an embeddings batch on local/glove-100d run natively on B with the caller's key", async () => {
    const texts = ["the cat sat", "a dog ran", "birds fly south"];
    const lines = texts.map((t, i) => JSON.stringify({ custom_id: `e-${i}`, method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input: t } })).join("\n") + "\n";
    const client = a.client("caller-upstream-key");
    const before = (await b.client("b-key").batches.list({ limit: 100 })).data.length;
    const file = await uploadJsonl(client, lines);
    const batch = await client.batches.create(
      { input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" },
      { headers: { "x-openbatch-provider": "vendor" } },
    );
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    const out = await readJsonl(client, done.output_file_id);
    expect(out.map((l) => l.custom_id).sort()).toEqual(["e-0", "e-1", "e-2"]);
    expect(out.every((l) => l.response.body.data[0].embedding.length === 100)).toBe(true);
    // The vendor batch was made with the caller's key (B's owner is that key), not the provider's configured one.
    expect((await b.client("b-key").batches.list({ limit: 100 })).data.length).toBe(before);
    expect((await b.client("caller-upstream-key").batches.list({ limit: 100 })).data).toHaveLength(1);
  });
});

describe("openbatch estimate names the mode a batch would run in", () => {
  it("native on a provider whose batchMode is native (batch prices), direct on a self-hosted one (regular prices)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "openbatch-native-estimate-"));
    try {
      const input = join(dir, "in.jsonl");
      await writeFile(input, chatLines(["one", "two"], "gpt-4o-mini"));
      const run = async (provider: Record<string, unknown>) => {
        await writeFile(join(dir, "config.json"), JSON.stringify({ providers: { p: provider }, models: { "*": "p" }, prices: { "gpt-4o-mini": { input: 0.15, output: 0.6 } } }));
        const cli = spawnCli(["estimate", input, "--config", join(dir, "config.json"), "--json"]);
        expect(await exited(cli)).toBe(0);
        return JSON.parse(cli.output().slice(cli.output().indexOf("{")));
      };
      const native = await run({ type: "openai-compatible", baseURL: "http://127.0.0.1:9/v1", batchMode: "native" });
      expect(native.run).toMatchObject({ provider: "p", mode: "native" });
      expect(native.cost.expected).toBeCloseTo(native.cost.batch, 12);
      const selfHosted = await run({ type: "openai-compatible", baseURL: "http://127.0.0.1:9/v1" });
      expect(selfHosted.run).toMatchObject({ provider: "p", mode: "direct" });
      expect(selfHosted.cost.expected).toBeCloseTo(selfHosted.cost.regular, 12);
      const openai = await run({ type: "openai-compatible", baseURL: "https://api.openai.com/v1" });
      expect(openai.run.mode).toBe("native");
      expect(openai.run.reason).toContain("auto");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
