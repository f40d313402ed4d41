import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodiesFor, bounded, expectHandled, rawTexts, send, TEST_MS, toJsonText } from "./support/fuzz.js";
import { chatLines, startServer, uploadJsonl, type TestServer } from "./support/harness.js";

/** Random bodies for a route: mostly mutations of `valid` (sent as JSON), some raw text. */
const bodies = (valid: unknown) => fc.oneof({ weight: 5, arbitrary: bodiesFor(valid).map((value) => ({ value })) }, { weight: 1, arbitrary: rawTexts(valid).map((raw) => ({ raw })) });

describe("fuzz: OpenAI and seed 001 request schemas over HTTP (no upstream)", () => {
  let server: TestServer;
  let fileId: string;
  let grokBatch: string;
  beforeAll(async () => {
    server = await startServer({});
    const client = server.client();
    fileId = (await uploadJsonl(client, chatLines(["a", "b"]))).id;
    const created = await send(`${server.url}/batches`, { value: { name: "fuzz", model: "m" } });
    grokBatch = created.json.id;
  });
  afterAll(async () => {
    await server.close();
  });

  it("the bodies mutated below are valid to begin with", async () => {
    const created = await send(`${server.url}/batches`, { value: { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h" } });
    expect(created.status, created.text).toBe(200);
    expect(grokBatch).toMatch(/^batch_/);
    const added = await send(`${server.url}/batches/${grokBatch}/requests`, { value: { requests: [{ custom_id: "first", body: { model: "m", messages: [{ role: "user", content: "hi" }] } }] } });
    expect(added.status, added.text).toBe(200);
  });

  it("POST /v1/batches (OpenAI create from a file): a batch or an OpenAI-shaped 4xx", async () => {
    const valid = { input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { k: "v" }, priority: 1 };
    await fc.assert(fc.asyncProperty(bodies(valid), async (b) => expectHandled(await send(`${server.url}/batches`, b), "openai")), bounded(150));
  }, TEST_MS);

  it("POST /v1/batches (seed 001 create): a batch or an OpenAI-shaped 4xx", async () => {
    const valid = { name: "n", description: "d", model: "m", endpoint: "/v1/chat/completions", metadata: { k: "v" }, completion_window: "24h" };
    await fc.assert(fc.asyncProperty(bodies(valid), async (b) => expectHandled(await send(`${server.url}/batches`, b), "openai")), bounded(150));
  }, TEST_MS);

  it("POST /v1/batches/{id}/requests (seed 001 add): added or an OpenAI-shaped 4xx", async () => {
    // Each run's custom_ids are fresh, so a valid add succeeds rather than repeating an earlier run's ids.
    let n = 0;
    const valid = { requests: [{ custom_id: "__CID__", body: { model: "m", messages: [{ role: "user", content: "hi" }] } }] };
    await fc.assert(
      fc.asyncProperty(bodies(valid), async (b) => {
        const raw = ("raw" in b ? b.raw : toJsonText(b.value)).replaceAll("__CID__", () => `c-${n++}`);
        expectHandled(await send(`${server.url}/batches/${grokBatch}/requests`, { raw }), "openai");
      }),
      bounded(150),
    );
  }, TEST_MS);

  it("POST /v1/chat/completions with no upstream configured: an OpenAI-shaped 4xx, never a 5xx", async () => {
    const valid = { model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 8, temperature: 0.5, stream: false };
    await fc.assert(fc.asyncProperty(bodies(valid), async (b) => expectHandled(await send(`${server.url}/chat/completions`, b), "openai")), bounded(150));
  }, TEST_MS);

  it("ids in paths: any id is a 404 (or 400) in OpenAI's shape", async () => {
    const id = fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.constantFrom("batch_", "..", "%2e%2e", "a".repeat(3000), "😀", "%ZZ"));
    await fc.assert(
      fc.asyncProperty(id, fc.constantFrom("", "/cancel", "/requests", "/results", "/start"), async (raw, suffix) => {
        const path = `${server.url}/batches/${/^[\w%.-]+$/.test(raw) ? raw : encodeURIComponent(raw)}${suffix}`;
        const method = suffix === "/cancel" || suffix === "/start" ? "POST" : "GET";
        const res = await fetch(path, { method, signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        expectHandled({ status: res.status, text, json }, "openai");
      }),
      bounded(100),
    );
  }, TEST_MS);
});
