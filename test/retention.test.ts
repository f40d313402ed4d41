import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import OpenAI, { NotFoundError, toFile } from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildServer } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

const DAY_S = 86_400;

/** Creates a chat batch through the SDK; `extra` goes into the create body as a user would write it. */
async function createBatch(client: OpenAI, fileId: string, extra: Record<string, unknown> = {}) {
  return client.batches.create({ input_file_id: fileId, endpoint: "/v1/chat/completions", completion_window: "24h", ...extra } as OpenAI.Batches.BatchCreateParams);
}

describe("output_expires_after and default file expiry (openai 7 SDK)", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    // One key fails for good, so a batch has both an output and an error file.
    upstream.plan = (call) => (call.key === "bad" ? { kind: "status", status: 400 } : { kind: "ok" });
    server = await startServer(upstreamConfig(upstream.url));
    client = server.client();
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it("sets expires_at = created_at + seconds on the output and the error file", async () => {
    const file = await uploadJsonl(client, chatLines(["good", "bad"]));
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      output_expires_after: { anchor: "created_at", seconds: 7200 },
    });
    const done = await waitFor(client, created.id);
    expect(done.status).toBe("completed");
    const output = await client.files.retrieve(done.output_file_id!);
    const errors = await client.files.retrieve(done.error_file_id!);
    for (const f of [output, errors]) {
      expect(f.purpose).toBe("batch_output");
      expect(f.expires_at! - f.created_at).toBe(7200);
    }
  });

  it("without output_expires_after the output files are kept until deleted (expires_at null)", async () => {
    const file = await uploadJsonl(client, chatLines(["good"]));
    const done = await waitFor(client, (await createBatch(client, file.id)).id);
    expect((await client.files.retrieve(done.output_file_id!)).expires_at).toBeNull();
  });

  it.each([
    ["not an object", "3600", "output_expires_after"],
    ["an unknown anchor", { anchor: "completed_at", seconds: 3600 }, "output_expires_after.anchor"],
    ["no anchor", { seconds: 3600 }, "output_expires_after.anchor"],
    ["no seconds", { anchor: "created_at" }, "output_expires_after.seconds"],
    ["seconds under an hour", { anchor: "created_at", seconds: 3599 }, "output_expires_after.seconds"],
    ["seconds over 30 days", { anchor: "created_at", seconds: 30 * DAY_S + 1 }, "output_expires_after.seconds"],
    ["fractional seconds", { anchor: "created_at", seconds: 3600.5 }, "output_expires_after.seconds"],
    ["seconds as a string", { anchor: "created_at", seconds: "3600" }, "output_expires_after.seconds"],
    ["an unknown key", { anchor: "created_at", seconds: 3600, after: 1 }, "output_expires_after.after"],
  ])("output_expires_after with %s → 400 naming %s", async (_what, value, param) => {
    const file = await uploadJsonl(client, chatLines(["good"]));
    const err = await apiError(createBatch(client, file.id, { output_expires_after: value }));
    expect(err.status).toBe(400);
    expect(err.type).toBe("invalid_request_error");
    expect(err.param).toBe(param);
  });

  it("the bounds themselves (3600 and 2592000) are accepted", async () => {
    for (const seconds of [3600, 30 * DAY_S]) {
      const file = await uploadJsonl(client, chatLines(["good"]));
      const done = await waitFor(client, (await createBatch(client, file.id, { output_expires_after: { anchor: "created_at", seconds } })).id);
      const out = await client.files.retrieve(done.output_file_id!);
      expect(out.expires_at! - out.created_at).toBe(seconds);
    }
  });

  it("a purpose=batch upload without expires_after expires after 30 days; other purposes are kept", async () => {
    const batchFile = await uploadJsonl(client, chatLines(["good"]));
    expect(batchFile.expires_at! - batchFile.created_at).toBe(30 * DAY_S);
    expect((await client.files.retrieve(batchFile.id)).expires_at).toBe(batchFile.expires_at);
    const userData = await client.files.create({ file: await toFile(Buffer.from("notes"), "notes.txt"), purpose: "user_data" });
    expect(userData.expires_at).toBeNull();
  });

  it("an upload's expires_after is honoured and validated", async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(chatLines(["good"])), "in.jsonl"),
      purpose: "batch",
      expires_after: { anchor: "created_at", seconds: 3600 },
    });
    expect(file.expires_at! - file.created_at).toBe(3600);
    const tooShort = await apiError(
      client.files.create({ file: await toFile(Buffer.from("x"), "in.jsonl"), purpose: "batch", expires_after: { anchor: "created_at", seconds: 60 } }),
    );
    expect(tooShort.status).toBe(400);
    expect(tooShort.param).toBe("expires_after.seconds");
    const badAnchor = await apiError(
      client.files.create({ file: await toFile(Buffer.from("x"), "in.jsonl"), purpose: "batch", expires_after: { anchor: "last_used_at" as "created_at", seconds: 3600 } }),
    );
    expect(badAnchor.param).toBe("expires_after.anchor");
  });
});

describe("output_expires_after survives a restart before finalization", () => {
  let upstream: FakeUpstream;
  let dataDir: string;

  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-retention-"));
  });
  afterEach(async () => {
    await upstream.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("the output file written by the next process still expires after the requested seconds", async () => {
    upstream.plan = () => ({ kind: "held" });
    let server = await startServer(upstreamConfig(upstream.url), { dataDir });
    const file = await uploadJsonl(server.client(), chatLines(["a", "b"]));
    const created = await createBatch(server.client(), file.id, { output_expires_after: { anchor: "created_at", seconds: 5400 } });
    const deadline = Date.now() + 10_000;
    while (upstream.inFlight === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(upstream.inFlight).toBeGreaterThan(0);
    await server.close();

    upstream.plan = () => ({ kind: "ok" });
    server = await startServer(upstreamConfig(upstream.url), { dataDir });
    try {
      const done = await waitFor(server.client(), created.id);
      expect(done.status).toBe("completed");
      const out = await server.client().files.retrieve(done.output_file_id!);
      expect(out.expires_at! - out.created_at).toBe(5400);
    } finally {
      await server.close();
    }
  });
});

describe("the retention sweep", () => {
  let upstream: FakeUpstream;
  let dataDir: string;
  let engine: Engine;
  let app: FastifyInstance;
  let client: OpenAI;
  /** How far the files' clock runs ahead of real time, ms. */
  let skewMs = 0;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    upstream.plan = () => ({ kind: "held" });
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-sweep-"));
    const config = parseConfig({ ...upstreamConfig(upstream.url), retry: { baseDelayMs: 20, maxDelayMs: 200 } });
    engine = await Engine.open({ dataDir, config, pollMs: 50, retention: { sweepMs: 50, now: () => Date.now() + skewMs } });
    await engine.start();
    app = await buildServer({ engine, apiKeys: [], maxFileBytes: config.limits.maxFileBytes, dataDir });
    client = new OpenAI({ baseURL: `${await app.listen({ port: 0, host: "127.0.0.1" })}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    upstream.release();
    await app?.close();
    await engine?.close();
    await upstream?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("deletes an expired file's row and bytes; retrieve, content and delete then 404; an input file in use waits for its batch", async () => {
    const expiring = { anchor: "created_at", seconds: 3600 } as const;
    const notes = await client.files.create({ file: await toFile(Buffer.from("notes"), "notes.txt"), purpose: "user_data", expires_after: expiring });
    const kept = await client.files.create({ file: await toFile(Buffer.from("keep me"), "keep.txt"), purpose: "user_data" });
    const input = await client.files.create({ file: await toFile(Buffer.from(chatLines(["slow"])), "in.jsonl"), purpose: "batch", expires_after: expiring });
    const batch = await createBatch(client, input.id);
    expect(batch.status).toBe("in_progress");
    expect(existsSync(join(dataDir, "files", notes.id))).toBe(true);

    skewMs = 3601 * 1000;
    const deadline = Date.now() + 10_000;
    while ((await engine.store.getFile(notes.id)) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await engine.store.getFile(notes.id)).toBeNull();
    expect(existsSync(join(dataDir, "files", notes.id))).toBe(false);

    await expect(client.files.retrieve(notes.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.files.content(notes.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.files.delete(notes.id)).rejects.toBeInstanceOf(NotFoundError);
    const notFound = await apiError(client.files.retrieve(notes.id));
    expect(notFound.error).toMatchObject({ type: "invalid_request_error", code: "not_found" });
    const listed: string[] = [];
    for await (const f of client.files.list()) listed.push(f.id);
    expect(listed).toContain(kept.id);
    expect(listed).not.toContain(notes.id);
    expect(listed).not.toContain(input.id);

    // The running batch's input has expired too: gone for callers, but its row and bytes stay until the batch ends.
    await expect(client.files.retrieve(input.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await engine.store.getFile(input.id)).not.toBeNull();
    expect(existsSync(join(dataDir, "files", input.id))).toBe(true);

    upstream.release();
    expect((await waitFor(client, batch.id)).status).toBe("completed");
    const after = Date.now() + 10_000;
    while ((await engine.store.getFile(input.id)) !== null && Date.now() < after) await new Promise((r) => setTimeout(r, 20));
    expect(await engine.store.getFile(input.id)).toBeNull();
    expect(existsSync(join(dataDir, "files", input.id))).toBe(false);
    expect((await client.files.retrieve(kept.id)).id).toBe(kept.id);
  });
});
