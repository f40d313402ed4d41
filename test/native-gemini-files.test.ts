import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GeminiBatches } from "../src/providers/native/gemini-batches.js";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";
import { listenLocal } from "./support/local-http.js";

/**
 * Native Gemini Batch Mode past the inline size: A's Gemini provider uploads each vendor job larger than
 * `nativeInlineMaxBytes` to B as a JSONL file (Google's resumable upload), creates the batch with
 * `inputConfig.fileName`, and reads B's `responsesFile`; a job under it still goes inline. B is a second OpenBatch
 * acting as Gemini, running the work on a fake chat upstream.
 */
describe("native Gemini: file input past the inline size", () => {
  let upstream: FakeUpstream;
  let b: TestServer;
  let a: TestServer;
  let origin: string;
  const INLINE_MAX = 600;
  const MAX_BYTES = 2_000;

  type Op = { name: string; metadata: { displayName?: string; inputConfig?: { fileName?: string }; output?: { responsesFile?: string } } };
  const vendorBatches = async (): Promise<Op[]> =>
    ((await (await fetch(`${origin}/v1beta/batches?pageSize=1000`, { headers: { "x-goog-api-key": "goog-key" } })).json()) as { operations?: Op[] }).operations ?? [];

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    b = await startServer({ ...upstreamConfig(upstream.url), apiKeys: ["goog-key"] });
    origin = b.url.replace(/\/v1$/, "");
    a = await startServer({
      providers: { gem: { type: "gemini", baseURL: origin, apiKey: "goog-key", batchMode: "native", nativePollMs: 50, nativeMaxBytes: MAX_BYTES, nativeInlineMaxBytes: INLINE_MAX } },
      models: { "*": "gem" },
    });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await upstream?.stop();
  });

  /** Runs an OpenAI-dialect chat batch of `keys` on A. @returns the batch and the vendor batches it made on B. */
  async function run(keys: string[]) {
    const client = a.client();
    const before = new Set((await vendorBatches()).map((o) => o.name));
    const file = await uploadJsonl(client, chatLines(keys, "gemini-test"));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: keys.length, completed: keys.length, failed: 0 });
    const out = await readJsonl(client, done.output_file_id);
    expect(done.error_file_id).toBeNull();
    expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
    for (const line of out) {
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.choices[0].message.content).toBe(`echo: ${keys[Number(line.custom_id.slice(4))]}`);
    }
    for (const k of keys) expect(upstream.count(k), k).toBe(1);
    return (await vendorBatches()).filter((o) => !before.has(o.name));
  }

  it("jobs over nativeInlineMaxBytes go as uploaded files: every custom_id exactly once, one vendor batch per job", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `file item ${i} ${"x".repeat(i % 7)}`);
    const made = await run(keys);
    // 40 lines of ~130 bytes cut at 2,000 bytes: several jobs, each past the 600-byte inline size.
    expect(made.length).toBeGreaterThanOrEqual(3);
    for (const op of made) {
      expect(op.metadata.displayName).toMatch(/^vjob_/);
      expect(op.metadata.inputConfig?.fileName).toMatch(/^files\//);
      expect(op.metadata.output?.responsesFile).toMatch(/^files\/responses-/);
    }
    // The uploaded files carry the job tag in their displayName, and hold `{key, request}` lines.
    const fileName = made[0]!.metadata.inputConfig!.fileName!;
    const meta = (await (await fetch(`${origin}/v1beta/${fileName}`, { headers: { "x-goog-api-key": "goog-key" } })).json()) as { displayName: string };
    expect(meta.displayName).toBe(`${made[0]!.metadata.displayName}.jsonl`);
    const content = await (await fetch(`${origin}/download/v1beta/${fileName}:download?alt=media`, { headers: { "x-goog-api-key": "goog-key" } })).text();
    const lines = content.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(typeof l.key).toBe("string");
      expect(l.request.contents[0].parts[0].text).toMatch(/^file item /);
    }
  });

  it("a job under nativeInlineMaxBytes still goes inline", async () => {
    const made = await run(["small one"]);
    expect(made).toHaveLength(1);
    expect(made[0]!.metadata.inputConfig).toBeUndefined();
  });

  it("the resumable upload sends chunks at their offsets, the last with finalize; the file holds every line once", async () => {
    // The adapter on its own against B, with 64-byte chunks, so one upload takes many requests.
    const api = new GeminiBatches("gem", origin, "goog-key", {}, { maxRequests: 100, maxBytes: 1e9 }, 10_000, 10, 64);
    try {
      const lines = Array.from({ length: 25 }, (_, i) => ({ customId: `k-${i}`, body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: `chunked ${i} é✓` }] }] }) }));
      const submission = {
        tag: "vjob_chunked",
        model: "gemini-test",
        endpoint: "gemini:generateContent" as const,
        bytes: 5_000,
        async *lines() {
          yield* lines;
        },
      };
      const signal = new AbortController().signal;
      const name = await api.upload(submission, { signal });
      expect(name).toMatch(/^files\//);
      const content = await (await fetch(`${origin}/download/v1beta/${name}:download?alt=media`, { headers: { "x-goog-api-key": "goog-key" } })).text();
      expect(content).toBe(lines.map((l) => JSON.stringify({ key: l.customId, request: JSON.parse(l.body) }) + "\n").join(""));
      // Under the inline size nothing is uploaded.
      expect(await api.upload({ ...submission, bytes: 10 }, { signal })).toBeNull();
    } finally {
      await api.close();
    }
  });
});

/**
 * kill -9 of A after B (as Gemini) accepted a file-input batch and before A stored its id: the restarted A finds it by
 * its displayName tag and never creates it again. A proxy in front of B forwards every call and holds A's first
 * create answer, so the kill lands in that window.
 */
describe("native Gemini file input: kill -9 between the vendor's create and storing its id", () => {
  it("found by its tag after the restart: one vendor batch per job, every custom_id exactly once", async () => {
    const upstream = await new FakeUpstream().start();
    const b = await startServer({ ...upstreamConfig(upstream.url), apiKeys: ["goog-key"] });
    const origin = b.url.replace(/\/v1$/, "");
    const creates: string[] = [];
    let holdFirstCreate: (() => void) | null = null;
    const proxy = await listenLocal((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && !["host", "connection", "content-length", "transfer-encoding"].includes(k)) headers[k] = v;
        const answer = await fetch(origin + req.url, { method: req.method, headers, body: req.method === "GET" ? undefined : Buffer.concat(chunks) });
        const text = await answer.text();
        if (req.method === "POST" && /:batchGenerateContent$/.test(req.url ?? "")) {
          creates.push(Buffer.concat(chunks).toString("utf8"));
          if (creates.length === 1) await new Promise<void>((go) => (holdFirstCreate = go));
        }
        if (res.destroyed) return;
        const out: Record<string, string> = { "content-type": answer.headers.get("content-type") ?? "application/json" };
        for (const h of ["x-goog-upload-url", "x-goog-upload-status"]) if (answer.headers.get(h)) out[h] = answer.headers.get(h)!;
        res.writeHead(answer.status, out).end(text);
      })();
    });
    const dir = await mkdtemp(join(tmpdir(), "openbatch-gemini-files-crash-"));
    const port = await freePort();
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ providers: { gem: { type: "gemini", baseURL: proxy.origin, apiKey: "goog-key", batchMode: "native", nativePollMs: 50, nativeMaxBytes: 2_000, nativeInlineMaxBytes: 600 } }, models: { "*": "gem" } }),
    );
    const args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
    let server = spawnCli(args);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
      const keys = Array.from({ length: 30 }, (_, i) => `crash file item ${i}`);
      const file = await uploadJsonl(client, chatLines(keys, "gemini-test"));
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const deadline = Date.now() + 60_000;
      while (!holdFirstCreate) {
        if (Date.now() > deadline) throw new Error("A never created a vendor batch");
        await new Promise((r) => setTimeout(r, 20));
      }
      server.kill("SIGKILL");
      await exited(server);
      (holdFirstCreate as () => void)();
      expect(JSON.parse(creates[0]!).batch.inputConfig.fileName).toMatch(/^files\//);

      server = spawnCli(args);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const done = await waitFor(client, batch.id);
      expect(done.request_counts).toEqual({ total: keys.length, completed: keys.length, failed: 0 });
      const out = await readJsonl(client, done.output_file_id);
      expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
      for (const line of out) expect(line.response.body.choices[0].message.content).toBe(`echo: ${keys[Number(line.custom_id.slice(4))]}`);
      for (const k of keys) expect(upstream.count(k), k).toBe(1);
      // One create per job, and B holds one batch per job tag: the job whose create answer was lost was found, not made again.
      const ops = ((await (await fetch(`${origin}/v1beta/batches?pageSize=1000`, { headers: { "x-goog-api-key": "goog-key" } })).json()) as { operations: { metadata: { displayName: string } }[] }).operations;
      const tags = ops.map((o) => o.metadata.displayName);
      expect(tags.length).toBeGreaterThanOrEqual(2);
      expect(new Set(tags).size).toBe(tags.length);
      expect(creates).toHaveLength(tags.length);
    } finally {
      server.kill("SIGKILL");
      await exited(server);
      await proxy.stop();
      await b.close();
      await upstream.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
