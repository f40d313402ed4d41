import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodiesFor, bounded, expectHandled, rawTexts, send, TEST_MS } from "./support/fuzz.js";
import { startServer, type TestServer } from "./support/harness.js";

const bodies = (valid: unknown) => fc.oneof({ weight: 5, arbitrary: bodiesFor(valid).map((value) => ({ value })) }, { weight: 1, arbitrary: rawTexts(valid).map((raw) => ({ raw })) });

const VALID = {
  requests: [
    { custom_id: "a-1", params: { model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }], system: "s", temperature: 0.2 } },
    { custom_id: "a-2", params: { model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: [{ type: "text", text: "yo" }] }] } },
  ],
};

describe("fuzz: Anthropic Message Batches request schema over HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("the body mutated below is valid to begin with", async () => {
    const a = await send(`${server.url}/messages/batches`, { value: VALID });
    expect(a.status, a.text).toBe(200);
    expect(a.json.type).toBe("message_batch");
  });

  it("POST /v1/messages/batches: a batch or an Anthropic-shaped 4xx", async () => {
    await fc.assert(fc.asyncProperty(bodies(VALID), async (b) => expectHandled(await send(`${server.url}/messages/batches`, b), "anthropic")), bounded(150));
  }, TEST_MS);

  it("ids and list queries in paths: a 4xx in Anthropic's shape", async () => {
    const part = fc.oneof(fc.string({ minLength: 1, maxLength: 60 }), fc.constantFrom("msgbatch_", "%ZZ", "..", "a".repeat(3000)));
    await fc.assert(
      fc.asyncProperty(part, fc.constantFrom("/", "/results", "/cancel", "?limit=", "?after_id=", "?before_id="), async (raw, where) => {
        const value = encodeURIComponent(raw);
        const url = where.startsWith("?") ? `${server.url}/messages/batches${where}${value}` : `${server.url}/messages/batches/${value}${where === "/" ? "" : where}`;
        const res = await fetch(url, { method: where === "/cancel" ? "POST" : "GET", signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        expectHandled({ status: res.status, text, json }, "anthropic");
      }),
      bounded(100),
    );
  }, TEST_MS);
});
