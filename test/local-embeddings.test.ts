import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readJsonl, SHARED_CACHE_DIR, startServer, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

const jeopardy = JSON.parse(readFileSync(new URL("../../shared/datasets/jeopardy/jeopardy_1k.json", import.meta.url), "utf8")) as { Category: string; Question: string; Answer: string }[];

const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe("local/glove-100d: real embeddings with no config, no key, no network", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR });
  }, 120_000);
  afterAll(async () => {
    await server.close();
  });

  async function embedBatch(inputs: string[], extra: Record<string, unknown> = {}) {
    const client = server.client();
    const lines = inputs.map((input, i) => JSON.stringify({ custom_id: `e${i}`, method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input, ...extra } }));
    const file = await uploadJsonl(client, lines.join("\n") + "\n");
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    const out = await readJsonl(client, done.output_file_id);
    const errors = await readJsonl(client, done.error_file_id);
    return { done, out, errors, byId: new Map(out.map((l) => [l.custom_id, l.response.body])) };
  }

  it("embeds the 1,000 Jeopardy questions in a batch; nearest to 'biology' are science clues", async () => {
    const texts = jeopardy.map((q) => `${q.Question} ${q.Answer}`);
    const { done, out, byId } = await embedBatch([...texts, "biology"]);
    expect(done.status).toBe("completed");
    expect(out).toHaveLength(1001);
    const vec = (i: number) => byId.get(`e${i}`).data[0].embedding as number[];
    expect(vec(0)).toHaveLength(100);
    expect(Math.abs(cosine(vec(0), vec(0)) - 1)).toBeLessThan(1e-5);
    expect(done.usage?.input_tokens).toBeGreaterThan(10_000);
    const query = vec(1000);
    const ranked = texts.map((_, i) => ({ i, score: cosine(query, vec(i)) })).sort((a, b) => b.score - a.score);
    const top = ranked.slice(0, 5).map((r) => jeopardy[r.i]!.Category);
    expect(top.filter((c) => /SCIENCE|BIOLOGY|NATURE|ANIMAL|MEDIC|HEALTH/i.test(c)).length).toBeGreaterThanOrEqual(2);
  });

  it("is deterministic, and a related sentence ranks above an unrelated one", async () => {
    const { byId } = await embedBatch([
      "The cell is the basic unit of all living organisms",
      "Biology is the study of life and living things",
      "The stock market fell sharply after the bank raised interest rates",
      "The cell is the basic unit of all living organisms",
    ]);
    const v = (i: number) => byId.get(`e${i}`).data[0].embedding as number[];
    expect(v(0)).toEqual(v(3));
    expect(cosine(v(0), v(1))).toBeGreaterThan(cosine(v(0), v(2)) + 0.1);
  });

  it("takes arrays of strings and base64 encoding", async () => {
    const { byId } = await embedBatch(["apples and oranges"], {});
    const { byId: b64 } = await embedBatch(["apples and oranges"], { encoding_format: "base64" });
    const { byId: arr } = await embedBatch([["apples and oranges", "pears"]] as unknown as string[]);
    const floats = byId.get("e0").data[0].embedding as number[];
    const decoded = Array.from(new Float32Array(new Uint8Array(Buffer.from(b64.get("e0").data[0].embedding, "base64")).buffer));
    decoded.forEach((x, i) => expect(x).toBeCloseTo(floats[i]!, 6));
    expect(arr.get("e0").data.map((d: { index: number }) => d.index)).toEqual([0, 1]);
    expect(arr.get("e0").data[0].embedding).toEqual(floats);
  });

  it("fails a bad item in its own error line, in OpenAI's error shape", async () => {
    const { done, errors } = await embedBatch(["fine", [1, 2, 3]] as unknown as string[]);
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    expect(errors).toHaveLength(1);
    expect(errors[0].custom_id).toBe("e1");
    expect(errors[0].response.status_code).toBe(400);
    expect(errors[0].response.body.error.param).toBe("input");
  });

  it("answers POST /v1/embeddings synchronously and lists the model", async () => {
    const client = server.client();
    const res = await client.embeddings.create({ model: "local/glove-100d", input: ["a red apple", "a green pear"] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0]!.embedding).toHaveLength(100);
    expect(res.usage.prompt_tokens).toBe(6);
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toContain("local/glove-100d");
    await expect(client.embeddings.create({ model: "nobody-serves-this", input: "x" })).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("a chat batch with no configured model fails per item, saying how to configure one", async () => {
    const client = server.client();
    const line = (i: number) => JSON.stringify({ custom_id: `c${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "llama-3", messages: [{ role: "user", content: "hi" }] } });
    const file = await uploadJsonl(client, [line(0), line(1)].join("\n"));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 2, completed: 0, failed: 2 });
    const errors = await readJsonl(client, done.error_file_id);
    expect(errors.map((e) => e.error.code)).toEqual(["model_not_found", "model_not_found"]);
    expect(errors[0].error.message).toContain('"type":"local-llm"');
  });
});
