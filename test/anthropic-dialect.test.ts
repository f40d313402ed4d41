import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { startServer, upstreamConfig, type TestServer } from "./support/harness.js";

describe("Anthropic Message Batches through @anthropic-ai/sdk, run on an OpenAI-compatible upstream", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let client: Anthropic;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url, { maxConcurrency: 4 }));
    client = new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: "sk-ant-test", maxRetries: 0 });
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  const request = (i: number, extra: Record<string, unknown> = {}) => ({
    custom_id: `q-${i}`,
    params: { model: "claude-sonnet-4", max_tokens: 32, system: "Answer briefly.", messages: [{ role: "user" as const, content: `question ${i}` }], ...extra },
  });

  async function untilEnded(id: string) {
    for (let i = 0; i < 400; i++) {
      const b = await client.messages.batches.retrieve(id);
      if (b.processing_status === "ended") return b;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error("batch never ended");
  }

  it("create → retrieve → results, translated to and from the OpenAI upstream", async () => {
    const created = await client.messages.batches.create({ requests: [request(0), request(1), request(2, { stop_sequences: ["END"], temperature: 0.2 })] });
    expect(created.id).toMatch(/^msgbatch_/);
    expect(created.type).toBe("message_batch");
    expect(created.request_counts.processing + created.request_counts.succeeded).toBe(3);
    const ended = await untilEnded(created.id);
    expect(ended.request_counts).toEqual({ processing: 0, succeeded: 3, errored: 0, canceled: 0, expired: 0 });
    expect(ended.results_url).toMatch(/^http:\/\/.+\/v1\/messages\/batches\/msgbatch_.+\/results$/);
    const results = [];
    for await (const r of await client.messages.batches.results(created.id)) results.push(r);
    expect(results.map((r) => r.custom_id).sort()).toEqual(["q-0", "q-1", "q-2"]);
    const first = results.find((r) => r.custom_id === "q-0")!;
    expect(first.result.type).toBe("succeeded");
    if (first.result.type !== "succeeded") throw new Error("unreachable");
    expect(first.result.message.content[0]).toMatchObject({ type: "text", text: "echo: question 0" });
    expect(first.result.message.usage.output_tokens).toBe(3);
    // The upstream received OpenAI chat requests with the system prompt as the first message.
    const sent = upstream.calls.find((c) => JSON.stringify(c.body).includes("question 2"))!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.body.messages).toEqual([{ role: "system", content: "Answer briefly." }, { role: "user", content: "question 2" }]);
    expect(sent.body.max_tokens).toBe(32);
    expect(sent.body.stop).toEqual(["END"]);
  });

  it("lists newest first to the last page, cancels, deletes only ended batches", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.messages.batches.create({ requests: [request(10 + i)] })).id);
    const seen: string[] = [];
    for await (const b of client.messages.batches.list({ limit: 2 })) seen.push(b.id);
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    upstream.plan = () => ({ kind: "delay", ms: 400 });
    const slow = await client.messages.batches.create({ requests: Array.from({ length: 8 }, (_, i) => request(100 + i)) });
    await expect(client.messages.batches.delete(slow.id)).rejects.toMatchObject({ status: 409 });
    const cancelling = await client.messages.batches.cancel(slow.id);
    expect(["canceling", "ended"]).toContain(cancelling.processing_status);
    expect(cancelling.cancel_initiated_at).not.toBeNull();
    const ended = await untilEnded(slow.id);
    expect(ended.request_counts.canceled).toBeGreaterThan(0);
    const results = [];
    for await (const r of await client.messages.batches.results(slow.id)) results.push(r);
    expect(results).toHaveLength(8);
    expect(results.some((r) => r.result.type === "canceled")).toBe(true);
    upstream.plan = () => ({ kind: "ok" });

    const deleted = await client.messages.batches.delete(slow.id);
    expect(deleted).toMatchObject({ id: slow.id, type: "message_batch_deleted" });
    await expect(client.messages.batches.retrieve(slow.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("answers errors in Anthropic's shape", async () => {
    const bad = await fetch(server.url + "/messages/batches", { method: "POST", headers: { "content-type": "application/json", "x-api-key": "k" }, body: JSON.stringify({ requests: [{ custom_id: "bad id!", params: {} }] }) });
    expect(bad.status).toBe(400);
    const body = await bad.json();
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("invalid_request_error");
    await expect(client.messages.batches.retrieve("msgbatch_nope")).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(client.messages.batches.create({ requests: [request(1), { ...request(2), params: { ...request(2).params, model: "other" } }] })).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });

  it("an untranslatable field fails that request alone, naming the field", async () => {
    const batch = await client.messages.batches.create({
      requests: [request(200), { custom_id: "with-tools", params: { ...request(201).params, tools: [{ name: "t", input_schema: { type: "object" } }] } }],
    });
    await untilEnded(batch.id);
    const results = [];
    for await (const r of await client.messages.batches.results(batch.id)) results.push(r);
    const failed = results.find((r) => r.custom_id === "with-tools")!;
    expect(failed.result.type).toBe("errored");
    expect(JSON.stringify(failed.result)).toContain("tools");
    expect(results.find((r) => r.custom_id === "q-200")!.result.type).toBe("succeeded");
  });
});
