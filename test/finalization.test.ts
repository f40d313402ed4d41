import Anthropic from "@anthropic-ai/sdk";
import type { IncomingMessage, ServerResponse } from "node:http";
import { existsSync, type WriteStream } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { Writable } from "node:stream";
import { join } from "node:path";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildServer } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine, type EngineOptions } from "../src/engine/engine.js";
import { resultFileId } from "../src/engine/finalizer.js";
import { BlobStore } from "../src/store/blob-store.js";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, readJsonl, SHARED_CACHE_DIR, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";

/** A server like the harness's, with engine options (finalization limits, a fault-injecting blob store) passed through. */
async function startWith(config: Record<string, unknown>, options: Partial<EngineOptions> = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "openbatch-final-")));
  const parsed = parseConfig({ ...config, retry: { baseDelayMs: 20, maxDelayMs: 200 } });
  const engine = await Engine.open({ config: parsed, pollMs: 50, ...options, dataDir });
  await engine.start();
  const app = await buildServer({ engine, apiKeys: [], maxFileBytes: parsed.limits.maxFileBytes, dataDir });
  const url = `${await app.listen({ port: 0, host: "127.0.0.1" })}/v1`;
  return {
    engine,
    app,
    url,
    dataDir,
    client: () => new OpenAI({ baseURL: url, apiKey: "unused", maxRetries: 0 }),
    async close() {
      await app.close();
      await engine.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A chat completion whose content is `size` characters: a large, valid upstream answer. */
function bigAnswer(key: string, size: number): string {
  return JSON.stringify({
    id: "chatcmpl-big",
    object: "chat.completion",
    created: 0,
    model: "fake-model",
    choices: [{ index: 0, message: { role: "assistant", content: `${key}:` + "x".repeat(size) }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

/** Blob storage whose writers fail on demand with `fault()`, counting the writes it failed. */
class FaultyBlobs extends BlobStore {
  fault: (() => Error) | null = null;
  failed = 0;
  override openWriter(id: string) {
    if (!this.fault) return super.openWriter(id);
    this.failed++;
    const err = this.fault();
    // A disk that refuses every write: nothing reaches it, not even a partial file.
    const stream = new Writable({ write: (_chunk, _enc, done) => done(err) }) as unknown as WriteStream;
    return { stream, commit: async () => undefined, abort: async () => undefined };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("result files are written item by item", () => {
  let upstream: FakeUpstream;
  let server: TestServer | null = null;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
  });
  afterEach(async () => {
    await server?.close();
    server = null;
    await upstream.stop();
  });

  it("pages are bounded by bytes, not only by count, and a large body is written as it is", async () => {
    const sizes = [20_000, 10, 50_000, 10, 10, 30_000];
    upstream.plan = (call) => ({ kind: "status", status: 200, body: bigAnswer(call.key, sizes[Number(call.key.slice(1))]!) });
    server = await startWith(upstreamConfig(upstream.url), { finalization: { pageItems: 1000, pageBytes: 4096, chunkBytes: 1024 } });
    // What the finalizer read per page, and the longest piece written into any blob.
    const pages: { items: number; bytes: number }[] = [];
    const store = server.engine.store;
    const pageItems = store.pageItems.bind(store);
    store.pageItems = async (...args) => {
      const page = await pageItems(...args);
      pages.push({ items: page.length, bytes: page.reduce((n, i) => n + (i.response_body?.length ?? 0), 0) });
      return page;
    };
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(sizes.map((_, i) => `k${i}`)));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    const out = await readJsonl(client, done.output_file_id);
    expect(out.map((l) => l.custom_id)).toEqual(sizes.map((_, i) => `req-${i}`));
    out.forEach((l, i) => expect(l.response.body.choices[0].message.content).toBe(`k${i}:` + "x".repeat(sizes[i]!)));
    // Every page over the byte budget held one item alone; small items shared pages.
    expect(pages.filter((p) => p.items > 1).every((p) => p.bytes <= 4096)).toBe(true);
    expect(pages.some((p) => p.items > 1)).toBe(true);
    expect(Math.max(...pages.map((p) => p.items))).toBeLessThan(sizes.length);
  });

  it("seed 001 result pages are bounded by bytes too: fewer than `limit` large results, with has_more", async () => {
    upstream.plan = (call) => ({ kind: "status", status: 200, body: bigAnswer(call.key, 3000) });
    server = await startWith(upstreamConfig(upstream.url), { finalization: { pageBytes: 8000 } });
    const http = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(server!.url + path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      return (await res.json()) as any;
    };
    const { id } = await http("POST", "/batches", { name: "big", model: "grok-4", endpoint: "/v1/chat/completions" });
    const requests = Array.from({ length: 7 }, (_, i) => ({ custom_id: `r${i}`, body: { model: "grok-4", messages: [{ role: "user", content: `k${i}` }] } }));
    await http("POST", `/batches/${id}/requests`, { requests });
    await http("POST", `/batches/${id}/start`);
    while ((await http("GET", `/batches/${id}`)).status !== "completed") await sleep(50);
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let after = "";
    for (;;) {
      const page = await http("GET", `/batches/${id}/results?limit=100${after ? `&after=${after}` : ""}`);
      pageSizes.push(page.data.length);
      for (const r of page.data) {
        expect(r.response.choices[0].message.content).toBe(`k${seen.length}:` + "x".repeat(3000));
        seen.push(r.custom_id);
      }
      if (!page.has_more) break;
      after = page.data[page.data.length - 1].id;
    }
    expect(seen).toEqual(requests.map((r) => r.custom_id));
    // About 3.2 KB a result, 8,000 bytes a page: two a page, never all seven.
    expect(Math.max(...pageSizes)).toBe(2);
  });

  it("a batch whose results exceed V8's string limit (~512 MiB) completes, with every line intact", { timeout: 240_000 }, async () => {
    // 22 answers of 25 MiB: 550 MiB of output, more than one JavaScript string can hold. Before, the page of results
    // was one string and finalization threw RangeError forever. One call at a time keeps memory near one answer.
    const size = 25 * 1024 * 1024;
    const n = 22;
    const body = Buffer.from(bigAnswer("big", size));
    upstream.plan = () => ({ kind: "status", status: 200, body: body as unknown as string });
    server = await startWith(upstreamConfig(upstream.url, { maxConcurrency: 1, timeoutMs: 60_000 }));
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(Array.from({ length: n }, (_, i) => `k${i}`)));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id, undefined, 200_000);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    const meta = await client.files.retrieve(done.output_file_id!);
    expect(meta.bytes).toBeGreaterThan(537_000_000);
    // Read it as a stream (it is too large for one string here too): count lines, check each one's ends and length.
    const res = await client.files.content(done.output_file_id!);
    let bytes = 0;
    let lineBytes = 0;
    let head = "";
    let tail = Buffer.alloc(0);
    const lines: { head: string; tail: string; bytes: number }[] = [];
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      let buf = Buffer.from(chunk);
      bytes += buf.length;
      for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
        const piece = buf.subarray(0, nl);
        if (head.length < 40) head += piece.subarray(0, 40 - head.length).toString("latin1");
        lines.push({ head, tail: Buffer.concat([tail, piece]).subarray(-16).toString("latin1"), bytes: lineBytes + piece.length });
        head = "";
        tail = Buffer.alloc(0);
        lineBytes = 0;
        buf = buf.subarray(nl + 1);
      }
      if (head.length < 40) head += buf.subarray(0, 40 - head.length).toString("latin1");
      tail = Buffer.concat([tail, buf]).subarray(-16);
      lineBytes += buf.length;
    }
    expect(bytes).toBe(meta.bytes);
    expect(lines).toHaveLength(n);
    for (const l of lines) {
      expect(l.head.startsWith('{"id":"batch_req_')).toBe(true);
      expect(l.tail.endsWith('}},"error":null}')).toBe(true);
      expect(l.bytes).toBeGreaterThan(size);
    }
  });
});

describe("a finalization that keeps failing ends the batch failed", () => {
  let upstream: FakeUpstream;
  let server: TestServer | null = null;
  let blobs: FaultyBlobs;
  let dir: string;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-final-"));
    blobs = new FaultyBlobs(join(dir, "files"));
  });
  afterEach(async () => {
    await server?.close();
    server = null;
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function runBatch(finalization: EngineOptions["finalization"], fault: () => Error) {
    server = await startWith(upstreamConfig(upstream.url), { dataDir: dir, blobs, finalization });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a", "b", "c"]));
    // Uploads work; from here on every blob write fails.
    blobs.fault = fault;
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    return { client, batch };
  }

  it("after maxAttempts failed writes, with the reason in errors, and then stops retrying", async () => {
    const eio = () => Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
    const { client, batch } = await runBatch({ maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 }, eio);
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("failed");
    expect(done.failed_at).not.toBeNull();
    expect(done.output_file_id).toBeNull();
    expect(done.error_file_id).toBeNull();
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(done.errors?.data).toHaveLength(1);
    expect(done.errors!.data![0]!.code).toBe("finalization_failed");
    expect(done.errors!.data![0]!.message).toContain("EIO: i/o error, write");
    expect(done.errors!.data![0]!.message).toContain("attempt 3 of 3");
    expect(blobs.failed).toBe(3);
    // Many dispatcher passes later, nothing more was tried and no file of the batch is left.
    await sleep(500);
    expect(blobs.failed).toBe(3);
    const files = await client.files.list();
    expect(files.data.filter((f) => f.filename.startsWith(batch.id))).toEqual([]);
    expect((await readdir(join(dir, "files"))).filter((n) => n.endsWith(".partial"))).toEqual([]);
  });

  it("at once for an error that would only recur (RangeError: Invalid string length)", async () => {
    const { client, batch } = await runBatch({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 20 }, () => new RangeError("Invalid string length"));
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("failed");
    expect(done.errors!.data![0]!.message).toContain("Invalid string length");
    expect(blobs.failed).toBe(1);
  });

  it("a cancel while it waits to retry is a 409 that says why", async () => {
    const eio = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    const { client, batch } = await runBatch({ maxAttempts: 5, baseDelayMs: 60_000 }, eio);
    await waitFor(client, batch.id, () => blobs.failed >= 1);
    const err = await apiError(client.batches.cancel(batch.id));
    expect(err.status).toBe(409);
    expect((err.error as { code?: string }).code).toBe("batch_finalizing");
    expect(err.message).toContain("finalizing");
    expect((await client.batches.retrieve(batch.id)).status).toBe("finalizing");
  });

  it("an Anthropic batch, whose results are read from the store, ends as usual without the files", async () => {
    server = await startWith(upstreamConfig(upstream.url), { dataDir: dir, blobs, finalization: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    blobs.fault = () => Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
    const client = new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: "unused", maxRetries: 0 });
    const params = { model: "claude-sonnet-4", max_tokens: 16, messages: [{ role: "user" as const, content: "hello" }] };
    const created = await client.messages.batches.create({ requests: [{ custom_id: "a", params }] });
    let batch = created;
    while (batch.processing_status !== "ended") {
      await sleep(50);
      batch = await client.messages.batches.retrieve(created.id);
    }
    expect(blobs.failed).toBe(2);
    expect(batch.request_counts.succeeded).toBe(1);
    const results = [];
    for await (const r of await client.messages.batches.results(created.id)) results.push(r);
    expect(results.map((r) => [r.custom_id, r.result.type])).toEqual([["a", "succeeded"]]);
  });

  it("crash-looping attempts count: a batch whose attempts never finish ends failed on restart", async () => {
    server = await startWith(upstreamConfig(upstream.url), { dataDir: dir, finalization: { maxAttempts: 2 } });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, batch.id);
    await server.close();
    server = null;
    // As if two processes had died while finalizing it: still finalizing, both attempts counted.
    const db = new Database(join(dir, "openbatch.db"));
    db.prepare(`UPDATE batches SET status = 'finalizing', completed_at = NULL, output_file_id = NULL, finalize_attempts = 2 WHERE id = ?`).run(batch.id);
    db.close();
    server = await startWith(upstreamConfig(upstream.url), { dataDir: dir, finalization: { maxAttempts: 2 } });
    const done = await waitFor(server.client(), batch.id);
    expect(done.status).toBe("failed");
    expect(done.errors!.data![0]!.message).toContain("cut short");
  });
});

describe("limits.maxResponseBytes", () => {
  let upstream: FakeUpstream;
  let server: TestServer | null = null;
  let endless: LocalHttpServer | null = null;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
  });
  afterEach(async () => {
    await server?.close();
    server = null;
    await endless?.stop();
    endless = null;
    await upstream.stop();
  });

  it("an answer past the cap fails that item alone with response_too_large; the others succeed", async () => {
    upstream.plan = (call) => (call.key === "big" ? { kind: "status", status: 200, body: bigAnswer("big", 200_000) } : { kind: "ok" });
    server = await startServer({ ...upstreamConfig(upstream.url), limits: { maxResponseBytes: 100_000 } });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a", "big", "c"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    const errors = await readJsonl(client, done.error_file_id);
    expect(errors).toHaveLength(1);
    expect(errors[0].custom_id).toBe("req-1");
    expect(errors[0].response).toBeNull();
    expect(errors[0].error.code).toBe("response_too_large");
    expect(errors[0].error.message).toContain("100000");
    // Not retried: the same request answers as much again.
    expect(upstream.count("big")).toBe(1);
    expect((await readJsonl(client, done.output_file_id)).map((l) => l.custom_id)).toEqual(["req-0", "req-2"]);
  });

  it("reading stops at the cap: an answer that never ends fails the item instead of filling memory", async () => {
    // Chunked, no content-length, never ends: only a bounded read gets past it.
    endless = await listenLocal((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, "x");
      res.write('{"x":"');
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    });
    server = await startServer({ ...upstreamConfig(endless.origin + "/v1", { timeoutMs: 60_000 }), limits: { maxResponseBytes: 1024 * 1024 } });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
    const [line] = await readJsonl(client, done.error_file_id);
    expect(line.error.code).toBe("response_too_large");
  });

  it("holds for an in-process model too (local/glove-100d embeddings)", async () => {
    server = await startServer({ limits: { maxResponseBytes: 50_000 } }, { cacheDir: SHARED_CACHE_DIR });
    const client = server.client();
    const many = Array.from({ length: 300 }, (_, i) => `word ${i}`);
    const lines = [
      { custom_id: "small", method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input: "a red apple" } },
      { custom_id: "large", method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input: many } },
    ];
    const file = await uploadJsonl(client, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    const done = await waitFor(client, batch.id, undefined, 120_000);
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    const [err] = await readJsonl(client, done.error_file_id);
    expect(err.custom_id).toBe("large");
    expect(err.error.code).toBe("response_too_large");
  }, 180_000);
});

describe("crash leftovers", () => {
  let upstream: FakeUpstream;
  let dir: string;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-final-"));
  });
  afterEach(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("kill -9 during finalization, then restart: exactly one output file and one error file", { timeout: 180_000 }, async () => {
    // One success, then many failures with large bodies: the error file takes long enough to write that the kill
    // lands after the output file exists and before the batch names it (where a second output file used to appear).
    const failures = 150;
    const errorBody = JSON.stringify({ error: { message: "e".repeat(2 * 1024 * 1024), type: "invalid_request_error", code: null } });
    upstream.plan = (call) => (call.key === "ok" ? { kind: "ok" } : { kind: "status", status: 400, body: errorBody });
    await writeFile(join(dir, "config.json"), JSON.stringify(upstreamConfig(upstream.url)));
    const port = await freePort();
    const args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
    let child = spawnCli(args);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
      const file = await uploadJsonl(client, chatLines(["ok", ...Array.from({ length: failures }, (_, i) => `bad ${i}`)]));
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const outputName = `${batch.id}_output.jsonl`;
      for (;;) {
        const listed = await client.files.list({ purpose: "batch_output" });
        if (listed.data.some((f) => f.filename === outputName)) break;
        await sleep(2);
      }
      child.kill("SIGKILL");
      await exited(child);
      // The kill landed mid-finalization: the batch is still finalizing, with its output file written.
      const db = new Database(join(dir, "data", "openbatch.db"), { readonly: true });
      const row = db.prepare(`SELECT status FROM batches WHERE id = ?`).get(batch.id) as { status: string };
      db.close();
      expect(row.status).toBe("finalizing");

      child = spawnCli(args);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const done = await waitFor(client, batch.id, undefined, 120_000);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: failures + 1, completed: 1, failed: failures });
      const all = [];
      for await (const f of client.files.list({ limit: 100 })) all.push(f);
      const outputs = all.filter((f) => f.filename === outputName);
      const errorFiles = all.filter((f) => f.filename === `${batch.id}_error.jsonl`);
      expect(outputs.map((f) => f.id)).toEqual([done.output_file_id]);
      expect(errorFiles.map((f) => f.id)).toEqual([done.error_file_id]);
      expect((await readJsonl(client, done.output_file_id)).map((l) => l.custom_id)).toEqual(["req-0"]);
      // On disk: the input, output and error files, nothing half-written.
      const names = await readdir(join(dir, "data", "files"));
      expect(names.sort()).toEqual([file.id, done.output_file_id!, done.error_file_id!].sort());
    } finally {
      child.kill("SIGKILL");
      await exited(child);
    }
  });

  it("at start, a stray .partial, a blob with no row and an unreferenced output file of a batch are removed", async () => {
    const dataDir = join(dir, "data");
    let server = await startServer(upstreamConfig(upstream.url), { dataDir });
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(["a", "b"]));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    expect(done.output_file_id).toBe(resultFileId(batch.id, "output"));
    await server.close();

    // What earlier crashes left: an upload cut short, bytes whose row never came, a second output file of the batch
    // (an earlier version's killed finalization), and an output file of a batch since deleted (the user's: it stays).
    const files = join(dataDir, "files");
    const partial = join(files, "file-0123456789abcdef01234567.partial");
    const blob = join(files, "file-89abcdef0123456789abcdef");
    const second = "file-aaaaaaaaaaaaaaaaaaaaaaaa";
    const kept = "file-bbbbbbbbbbbbbbbbbbbbbbbb";
    await writeFile(partial, "half an upload");
    await writeFile(blob, "bytes with no row");
    await writeFile(join(files, second), "a second output\n");
    await writeFile(join(files, kept), "an output of a deleted batch\n");
    const db = new Database(join(dataDir, "openbatch.db"));
    const insert = db.prepare(`INSERT INTO files (id, owner, filename, purpose, bytes, created_at, expires_at) VALUES (?, '', ?, 'batch_output', ?, ?, NULL)`);
    insert.run(second, `${batch.id}_output.jsonl`, 16, Date.now());
    insert.run(kept, "batch_0000000000000000deadbeef_output.jsonl", 29, Date.now());
    db.close();

    server = await startServer(upstreamConfig(upstream.url), { dataDir });
    try {
      expect(existsSync(partial)).toBe(false);
      expect(existsSync(blob)).toBe(false);
      expect(existsSync(join(files, second))).toBe(false);
      expect((await apiError(server.client().files.retrieve(second))).status).toBe(404);
      expect((await server.client().files.retrieve(kept)).filename).toBe("batch_0000000000000000deadbeef_output.jsonl");
      const out = await readJsonl(server.client(), done.output_file_id);
      expect(out.map((l) => l.custom_id)).toEqual(["req-0", "req-1"]);
    } finally {
      await server.close();
    }
  });
});
