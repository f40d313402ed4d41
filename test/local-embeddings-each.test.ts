import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalEmbeddingsProvider } from "../src/providers/local/local-embeddings.js";
import type { UpstreamRequest } from "../src/providers/provider.js";
import { SHARED_CACHE_DIR } from "./support/harness.js";

/** The local model's coalesced call: each answer built in the worker, byte for byte what the request gets alone. */
describe("local-embeddings sendEmbeddings", () => {
  const provider = new LocalEmbeddingsProvider("local", SHARED_CACHE_DIR);
  beforeAll(async () => {
    await provider.load();
  }, 120_000);
  afterAll(async () => {
    await provider.close();
  });

  const request = (body: Record<string, unknown>): UpstreamRequest => ({ endpoint: "/v1/embeddings", model: "local/glove-100d", body: JSON.stringify(body) });
  const signal = new AbortController().signal;

  it("answers each request exactly as send does alone, with the usage its body holds", async () => {
    for (const extra of [{}, { encoding_format: "base64" }]) {
      const requests = ["the quick brown fox", "", "Quantum chromodynamics of gluons", "hello world hello"].map((input) => request({ model: "local/glove-100d", input, ...extra }));
      const answer = await provider.sendEmbeddings(requests, signal);
      expect(answer.kind).toBe("each");
      if (answer.kind !== "each") return;
      expect(answer.status).toBe(200);
      for (const [i, r] of requests.entries()) {
        const alone = await provider.send(r, signal);
        expect(answer.bodies[i]).toBe(alone.body);
        expect(answer.usages?.[i]).toEqual(JSON.parse(alone.body).usage);
      }
    }
  });

  it("answers an invalid group as a whole, with the error a request of it gets alone", async () => {
    const requests = ["a", "b"].map((input) => request({ model: "local/glove-100d", input, dimensions: 7 }));
    const answer = await provider.sendEmbeddings(requests, signal);
    expect(answer.kind).toBe("whole");
    if (answer.kind !== "whole") return;
    const alone = await provider.send(requests[0]!, signal);
    expect(answer.answer.status).toBe(400);
    expect(answer.answer.body).toBe(alone.body);
  });
});
