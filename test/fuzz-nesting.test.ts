import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestLineValidator } from "../src/core/request-line.js";
import { bounded, expectHandled, nestedText, send, TEST_MS, toJsonText, type Dialect } from "./support/fuzz.js";
import { startServer, type TestServer } from "./support/harness.js";

/**
 * Nesting past the parser's bound (256 levels, core/nesting.ts) at random places of every dialect's bodies: a 4xx
 * in the dialect's shape, never a stack overflow answered 500.
 */
describe("fuzz: nesting deeper than the bound, in every dialect", () => {
  let server: TestServer;
  let grokBatch: string;
  beforeAll(async () => {
    server = await startServer({});
    grokBatch = (await send(`${server.url}/batches`, { value: { name: "deep", model: "m" } })).json.id;
  });
  afterAll(async () => {
    await server.close();
  });

  const deep = fc.tuple(fc.integer({ min: 257, max: 6000 }), fc.constantFrom("array", "object", "mixed")).map(([d, k]) => nestedText(d, k as "array" | "object" | "mixed"));

  it("a deep value in a body: 4xx in the called dialect's shape", async () => {
    const routes: { path: (root: string) => string; dialect: Dialect; body: (v: unknown) => unknown }[] = [
      { path: (r) => `${r}/v1/batches`, dialect: "openai", body: (v) => ({ input_file_id: "file-x", endpoint: "/v1/chat/completions", completion_window: "24h", metadata: v }) },
      { path: (r) => `${r}/v1/batches/${grokBatch}/requests`, dialect: "openai", body: (v) => ({ requests: [{ custom_id: "a", body: { model: "m", messages: v } }] }) },
      { path: (r) => `${r}/v1/chat/completions`, dialect: "openai", body: (v) => ({ model: "m", messages: [{ role: "user", content: v }] }) },
      { path: (r) => `${r}/v1/messages/batches`, dialect: "anthropic", body: (v) => ({ requests: [{ custom_id: "a", params: { model: "c", max_tokens: 5, messages: v } }] }) },
      { path: (r) => `${r}/v1beta/models/g:batchGenerateContent`, dialect: "google", body: (v) => ({ batch: { inputConfig: { requests: { requests: [{ request: { contents: v } }] } } } }) },
      { path: (r) => `${r}/v1beta/batches`, dialect: "google", body: (v) => ({ requests: [{ model: "g", contents: [v] }] }) },
      { path: (r) => `${r}/v1/objects`, dialect: "weaviate", body: (v) => ({ class: "Deep", properties: { p: v } }) },
      { path: (r) => `${r}/v1/graphql`, dialect: "weaviate", body: (v) => ({ query: "{ Get { Deep { p } } }", variables: { w: v } }) },
    ];
    const root = server.url.replace(/\/v1$/, "");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), deep, async (route, v) => {
        const a = await send(route.path(root), { raw: toJsonText(route.body(v)) });
        expect(a.status, a.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
        expectHandled(a, route.dialect);
      }),
      bounded(60),
    );
  }, TEST_MS);

  it("a deep GraphQL selection or filter: errors in the answer, never a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 257, max: 6000 }), fc.boolean(), async (d, filter) => {
        const query = filter
          ? `{ Get { Deep(where: ${"{operator: Not, operands: [".repeat(d)}{path: ["p"], operator: Equal, valueInt: 1}${"]}".repeat(d)}) { p } } }`
          : `{ Get { Deep ${"{ p ".repeat(d)}${"}".repeat(d)} } }`;
        const a = await send(`${server.url}/graphql`, { value: { query } });
        expectHandled(a, "weaviate");
        if (a.status === 200) expect(a.json.errors?.length, a.text.slice(0, 300)).toBeGreaterThan(0);
      }),
      bounded(30),
    );
  }, TEST_MS);

  it("a deep JSONL line: invalid_json_line at that line", () => {
    fc.assert(
      fc.property(deep, (v) => {
        const r = new RequestLineValidator("/v1/chat/completions", 10).check(toJsonText({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: v } }), 1);
        expect(r).toMatchObject({ code: "invalid_json_line", line: 1 });
      }),
      bounded(200),
    );
  }, TEST_MS);
});
