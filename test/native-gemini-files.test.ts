import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GeminiBatches } from "../src/providers/native/gemini-batches.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

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
