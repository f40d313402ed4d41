import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodiesFor, bounded, expectHandled, rawTexts, send, TEST_MS } from "./support/fuzz.js";
import { startServer, type TestServer } from "./support/harness.js";

const bodies = (valid: unknown) => fc.oneof({ weight: 5, arbitrary: bodiesFor(valid).map((value) => ({ value })) }, { weight: 1, arbitrary: rawTexts(valid).map((raw) => ({ raw })) });

/** Server root (no /v1): Gemini lives under /v1beta. */
const rootOf = (s: TestServer) => s.url.replace(/\/v1$/, "");

const VALID = {
  batch: {
    displayName: "fuzz",
    model: "models/gemini-x",
    inputConfig: {
      requests: {
        requests: [
          { request: { contents: [{ role: "user", parts: [{ text: "hi" }] }], generationConfig: { temperature: 0.1, maxOutputTokens: 8 } }, metadata: { key: "k1" } },
          { request: { contents: [{ parts: [{ text: "yo" }] }] }, metadata: { key: "k2" } },
        ],
      },
    },
  },
};
const VALID_SEED = { requests: [{ model: "gemini-x", contents: [{ role: "user", parts: [{ text: "hi" }] }], metadata: { key: "a" } }, { model: "gemini-x", contents: [{ parts: [{ text: "yo" }] }] }] };

describe("fuzz: Gemini request schemas over HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("the bodies mutated below are valid to begin with", async () => {
    const a = await send(`${rootOf(server)}/v1beta/models/gemini-x:batchGenerateContent`, { value: VALID });
    expect(a.status, a.text).toBe(200);
    expect(a.json.name).toMatch(/^batches\//);
    const seed = await send(`${rootOf(server)}/v1beta/batches`, { value: VALID_SEED });
    expect(seed.status, seed.text).toBe(200);
  });

  it("POST /v1beta/models/{m}:batchGenerateContent: an Operation or a Google-shaped 4xx", async () => {
    await fc.assert(fc.asyncProperty(bodies(VALID), async (b) => expectHandled(await send(`${rootOf(server)}/v1beta/models/gemini-x:batchGenerateContent`, b), "google")), bounded(150));
  }, TEST_MS);

  it("the model and method in the path: any of them a batch or a Google-shaped 4xx", async () => {
    const body = { batch: { inputConfig: { requests: { requests: [{ request: { contents: [{ parts: [{ text: "hi" }] }] } }] } } } };
    const model = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constantFrom("gemini-x", "models/gemini-x", "..", "%ZZ", ":", "a".repeat(3000)));
    const method = fc.constantFrom(":batchGenerateContent", ":asyncBatchEmbedContent", ":generateContent", "", ":", "::batchGenerateContent");
    await fc.assert(
      fc.asyncProperty(model, method, async (m, verb) => {
        const path = /^[\w.-]+$/.test(m) ? m : encodeURIComponent(m);
        expectHandled(await send(`${rootOf(server)}/v1beta/models/${path}${verb}`, { value: body }), "google");
      }),
      bounded(100),
    );
  }, TEST_MS);

  it("POST /v1beta/batches (seed 003): a batch or a Google-shaped 4xx", async () => {
    await fc.assert(fc.asyncProperty(bodies(VALID_SEED), async (b) => expectHandled(await send(`${rootOf(server)}/v1beta/batches`, b), "google")), bounded(150));
  }, TEST_MS);
});
