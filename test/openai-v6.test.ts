import OpenAIv6, { NotFoundError, toFile } from "openai-v6";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, upstreamConfig, type TestServer } from "./support/harness.js";

/** The previous openai major (6.x, installed as `openai-v6`) still works end to end: upload → batch → results. */
describe("openai 6 SDK end to end", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let client: OpenAIv6;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url));
    client = new OpenAIv6({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it("uploads, runs a batch with output_expires_after, and reads every result", async () => {
    const keys = ["alpha", "beta", "gamma"];
    const file = await client.files.create({ file: await toFile(Buffer.from(chatLines(keys)), "in.jsonl"), purpose: "batch" });
    expect(file.purpose).toBe("batch");
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { sdk: "openai-v6" },
      output_expires_after: { anchor: "created_at", seconds: 3600 },
    });
    let batch = created;
    const deadline = Date.now() + 30_000;
    while (!["completed", "failed", "expired", "cancelled"].includes(batch.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      batch = await client.batches.retrieve(created.id);
    }
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(batch.metadata).toEqual({ sdk: "openai-v6" });
    expect(batch.error_file_id).toBeNull();

    const output = await client.files.retrieve(batch.output_file_id!);
    expect(output.expires_at! - output.created_at).toBe(3600);
    const lines = (await (await client.files.content(batch.output_file_id!)).text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(["req-0", "req-1", "req-2"]);
    expect(lines.map((l) => l.response.body.choices[0].message.content)).toEqual(keys.map((k) => `echo: ${k}`));

    const listed: string[] = [];
    for await (const b of client.batches.list()) listed.push(b.id);
    expect(listed).toContain(created.id);

    await client.files.delete(batch.output_file_id!);
    await expect(client.files.retrieve(batch.output_file_id!)).rejects.toBeInstanceOf(NotFoundError);
  });
});
