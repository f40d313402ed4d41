import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { request, type ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiError, GoogleGenAI } from "@google/genai";
import type { FastifyInstance } from "fastify";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { UploadSessionOptions } from "../src/api/gemini/files.js";
import { buildServer } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";

const KEY_A = "gm-upload-key-a";
const KEY_B = "gm-upload-key-b";

/** An engine + HTTP server on a fresh data dir, with the given Gemini upload-session limits. */
interface UploadServer {
  base: string;
  dataDir: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

async function startUploadServer(geminiUploads: UploadSessionOptions, apiKeys = [KEY_A, KEY_B], maxFileBytes?: number): Promise<UploadServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "openbatch-uploads-"));
  const config = parseConfig({ apiKeys, ...(maxFileBytes ? { limits: { maxFileBytes } } : {}) });
  const engine = await Engine.open({ dataDir, config, pollMs: 50 });
  await engine.start();
  const app = await buildServer({ engine, apiKeys: config.apiKeys, maxFileBytes: config.limits.maxFileBytes, dataDir, geminiUploads });
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  return {
    base,
    dataDir,
    app,
    async close() {
      await app.close();
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Names of upload bytes still being staged (`<id>.partial`) in the data dir. */
async function partials(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, "files")).catch(() => [] as string[])).filter((n) => n.endsWith(".partial"));
}

/** Open file descriptors of this process (the server runs in it); Linux only. */
const openFds = () => readdirSync("/proc/self/fd").length;
const hasProcFds = existsSync("/proc/self/fd");

/**
 * The descriptors open once the server has settled: a store opens some on threads of its own after it started (the
 * SQLite WAL checkpointer's connection), so the count is read until three readings 100 ms apart agree (at most 5 s).
 */
async function settledFds(): Promise<number> {
  let last = openFds();
  for (let same = 0, i = 0; same < 2 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = openFds();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** `start` of a resumable upload over fetch: the response. */
function start(base: string, key: string, size = 5) {
  return fetch(`${base}/upload/v1beta/files`, {
    method: "POST",
    headers: {
      "x-goog-api-key": key,
      "content-type": "application/json",
      "x-goog-upload-protocol": "resumable",
      "x-goog-upload-command": "start",
      "x-goog-upload-header-content-length": String(size),
    },
    body: JSON.stringify({ file: { displayName: "part.jsonl", mimeType: "application/jsonl" } }),
  });
}

/** One chunk (or another command) to a session URL. */
function send(url: string, key: string, command: string, offset: number, body?: string) {
  return fetch(url, { method: "POST", headers: { "x-goog-api-key": key, "x-goog-upload-command": command, "x-goog-upload-offset": String(offset) }, body });
}

describe("Gemini resumable upload sessions: capped per key and in total, no descriptor held between chunks", () => {
  let server: UploadServer;
  beforeAll(async () => {
    server = await startUploadServer({ maxPerCaller: 100, maxTotal: 150 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("300 starts: key A gets 100 then 429 RESOURCE_EXHAUSTED, key B the 50 left of the total; fds stay flat; cancel frees a slot", async () => {
    const accepted: Record<string, string[]> = { [KEY_A]: [], [KEY_B]: [] };
    const refused: Record<string, any[]> = { [KEY_A]: [], [KEY_B]: [] };
    let fdsAt50 = 0;
    for (const key of [KEY_A, KEY_B]) {
      for (let i = 0; i < 150; i++) {
        const res = await start(server.base, key);
        if (res.status === 200) {
          const url = res.headers.get("x-goog-upload-url")!;
          accepted[key]!.push(url);
          // One chunk each, so every open session has its .partial file on disk.
          const chunk = await send(url, key, "upload", 0, "ab");
          expect(chunk.headers.get("x-goog-upload-status")).toBe("active");
          await chunk.arrayBuffer();
          if (accepted[KEY_A]!.length + accepted[KEY_B]!.length === 50 && hasProcFds) fdsAt50 = openFds();
        } else {
          expect(res.status).toBe(429);
          refused[key]!.push(await res.json());
        }
      }
    }
    expect(accepted[KEY_A]).toHaveLength(100);
    expect(refused[KEY_A]).toHaveLength(50);
    expect(accepted[KEY_B]).toHaveLength(50);
    expect(refused[KEY_B]).toHaveLength(100);
    // Google's error shape; the message says which cap and what to do.
    expect(refused[KEY_A]![0]).toEqual({ error: { code: 429, status: "RESOURCE_EXHAUSTED", message: expect.stringMatching(/this API key \(the limit is 100\).*cancel/) } });
    expect(refused[KEY_B]![0]).toEqual({ error: { code: 429, status: "RESOURCE_EXHAUSTED", message: expect.stringMatching(/on this server \(the limit is 150\)/) } });
    expect(await partials(server.dataDir)).toHaveLength(150);
    if (hasProcFds) {
      // 100 more sessions with bytes on disk than at the 50th: a descriptor per session would add 100.
      expect(openFds() - fdsAt50).toBeLessThan(20);
    }

    // The SDK sees the 429 as an ApiError.
    const ai = new GoogleGenAI({ apiKey: KEY_A, httpOptions: { baseUrl: server.base } });
    const err = await ai.files.upload({ file: new Blob(["{}\n"]), config: { mimeType: "application/jsonl" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);

    // Cancel ends a session: its partial file goes and its slot is free again.
    const cancelled = await send(accepted[KEY_A]![0]!, KEY_A, "cancel", 0);
    expect(cancelled.headers.get("x-goog-upload-status")).toBe("cancelled");
    await vi.waitFor(async () => expect(await partials(server.dataDir)).toHaveLength(149));
    const again = await start(server.base, KEY_A);
    expect(again.status).toBe(200);
    await again.arrayBuffer();
    const gone = await send(accepted[KEY_A]![0]!, KEY_A, "upload", 2, "cd");
    expect(gone.status).toBe(404);
    expect((await gone.json()).error).toMatchObject({ code: 404, status: "NOT_FOUND" });

    // Another key cannot use (or cancel) A's session.
    const foreign = await send(accepted[KEY_A]![1]!, KEY_B, "cancel", 0);
    expect(foreign.status).toBe(404);
    await foreign.arrayBuffer();

    // Cancel everything: no partial is left.
    for (const url of [...accepted[KEY_A]!.slice(1), ...accepted[KEY_B]!]) {
      const key = accepted[KEY_A]!.includes(url) ? KEY_A : KEY_B;
      await (await send(url, key, "cancel", 0)).arrayBuffer();
    }
    await (await send(again.headers.get("x-goog-upload-url")!, KEY_A, "cancel", 0)).arrayBuffer();
    await vi.waitFor(async () => expect(await partials(server.dataDir)).toEqual([]));
  }, 60_000);

  it("@google/genai 3.x files.upload still works, and a finalized upload frees its slot and leaves no partial", async () => {
    const small = await startUploadServer({ maxPerCaller: 2 });
    try {
      const ai = new GoogleGenAI({ apiKey: KEY_A, httpOptions: { baseUrl: small.base } });
      const text = Array.from({ length: 50 }, (_, i) => JSON.stringify({ key: `k${i}`, request: { contents: [{ parts: [{ text: `hi ${i}` }] }] } })).join("\n") + "\n";
      // More uploads than the cap: each finalize gives its slot back.
      for (let i = 0; i < 4; i++) {
        const file = await ai.files.upload({ file: new Blob([text], { type: "application/jsonl" }), config: { displayName: `in-${i}.jsonl` } });
        expect(file).toMatchObject({ state: "ACTIVE", sizeBytes: String(Buffer.byteLength(text)), displayName: `in-${i}.jsonl` });
        const got = await ai.files.get({ name: file.name! });
        expect(got.name).toBe(file.name);
        const content = await fetch(`${small.base}/v1beta/${file.name}:download?alt=media`, { headers: { "x-goog-api-key": KEY_A } });
        expect(await content.text()).toBe(text);
      }
      expect(await partials(small.dataDir)).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it("a chunk whose client goes away mid-body ends the session: no partial, no descriptor left", async () => {
    const res = await start(server.base, KEY_A, 1_000_000);
    const url = new URL(res.headers.get("x-goog-upload-url")!);
    await res.arrayBuffer();
    await (await send(url.href, KEY_A, "upload", 0, "first piece")).arrayBuffer();
    expect(await partials(server.dataDir)).toHaveLength(1);
    const before = hasProcFds ? await settledFds() : 0;
    await abortMidBody((cb) =>
      request(url, { method: "POST", headers: { "x-goog-api-key": KEY_A, "x-goog-upload-command": "upload", "x-goog-upload-offset": "11", "content-length": "500000" } }, cb),
      "x".repeat(100_000),
      async () => expect(await partialBytes(server.dataDir)).toBeGreaterThan(11),
    );
    await vi.waitFor(async () => {
      expect(await partials(server.dataDir)).toEqual([]);
      if (hasProcFds) expect(openFds()).toBeLessThanOrEqual(before);
    }, { timeout: 10_000 });
    const gone = await send(url.href, KEY_A, "query", 0);
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
  });
});

describe("Gemini upload past the file size limit", () => {
  it("the chunk that crosses it is a 413 in Google's shape, the session ends and its partial file is deleted", async () => {
    const server = await startUploadServer({}, [KEY_A], 1000);
    try {
      const res = await start(server.base, KEY_A, 1500);
      const url = res.headers.get("x-goog-upload-url")!;
      await (await send(url, KEY_A, "upload", 0, "a".repeat(600))).arrayBuffer();
      expect(await partials(server.dataDir)).toHaveLength(1);
      const over = await send(url, KEY_A, "upload", 600, "b".repeat(600));
      expect(over.status).toBe(413);
      expect((await over.json()).error).toMatchObject({ code: 413, status: "INVALID_ARGUMENT", message: expect.stringMatching(/larger than the limit of 1000 bytes/) });
      await vi.waitFor(async () => expect(await partials(server.dataDir)).toEqual([]));
      const gone = await send(url, KEY_A, "query", 0);
      expect(gone.status).toBe(404);
      await gone.arrayBuffer();
    } finally {
      await server.close();
    }
  });
});

describe("Gemini upload sessions expire", () => {
  it("an idle session's partial file is deleted by the sweep, its URL answers 404, and its slot is free", async () => {
    const server = await startUploadServer({ maxPerCaller: 3, ttlMs: 300, sweepMs: 50 });
    try {
      const urls: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await start(server.base, KEY_A);
        expect(res.status).toBe(200);
        urls.push(res.headers.get("x-goog-upload-url")!);
        await (await send(urls[i]!, KEY_A, "upload", 0, "abc")).arrayBuffer();
      }
      expect(await partials(server.dataDir)).toHaveLength(3);
      const full = await start(server.base, KEY_A);
      expect(full.status).toBe(429);
      await full.arrayBuffer();

      await vi.waitFor(async () => expect(await partials(server.dataDir)).toEqual([]), { timeout: 10_000, interval: 50 });
      const gone = await send(urls[0]!, KEY_A, "upload, finalize", 3, "de");
      expect(gone.status).toBe(404);
      expect((await gone.json()).error).toMatchObject({ code: 404, status: "NOT_FOUND", message: expect.stringMatching(/expired/) });
      const fresh = await start(server.base, KEY_A);
      expect(fresh.status).toBe(200);
      await fresh.arrayBuffer();
    } finally {
      await server.close();
    }
  });

  it("closing the server deletes the partial files of unfinished sessions", async () => {
    const server = await startUploadServer({});
    const dataDir = server.dataDir;
    const res = await start(server.base, KEY_A);
    await (await send(res.headers.get("x-goog-upload-url")!, KEY_A, "upload", 0, "abc")).arrayBuffer();
    expect(await partials(dataDir)).toHaveLength(1);
    await server.app.close();
    expect(await partials(dataDir)).toEqual([]);
    await server.close();
  });

  it("refuses limits that are not positive integers", async () => {
    await expect(startUploadServer({ maxPerCaller: 0 })).rejects.toThrow(/maxPerCaller must be a positive integer/);
  });
});

describe("OpenAI multipart upload aborted by the client", () => {
  let server: UploadServer;
  beforeAll(async () => {
    server = await startUploadServer({}, []);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("leaves no .partial file and no open descriptor", async () => {
    // A normal upload first, so lazily opened descriptors (database, logs) are already counted.
    const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: "unused", maxRetries: 0 });
    await client.files.create({ file: await toFile(Buffer.from("{}\n"), "warm.jsonl"), purpose: "batch" });
    const before = hasProcFds ? await settledFds() : 0;
    const boundary = "----openbatch-abort";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    await abortMidBody(
      (cb) =>
        request(`${server.base}/v1/files`, { method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(10_000_000) } }, cb),
      head + "y".repeat(200_000),
      async () => expect(await partialBytes(server.dataDir)).toBeGreaterThan(0),
    );
    await vi.waitFor(async () => {
      expect(await partials(server.dataDir)).toEqual([]);
      if (hasProcFds) expect(openFds()).toBeLessThanOrEqual(before);
    }, { timeout: 10_000 });
    // The server still serves, and only the warm-up file was recorded.
    const list = await client.files.list();
    expect(list.data.map((f) => f.filename)).toEqual(["warm.jsonl"]);
  });
});

/**
 * Sends the start of a request body that announces more, waits until `ready` (the server has written some of it to
 * disk), then destroys the connection mid-body.
 */
async function abortMidBody(open: (cb: () => void) => ClientRequest, prefix: string, ready: () => Promise<void>): Promise<void> {
  const req = open(() => undefined);
  req.on("error", () => undefined);
  await new Promise<void>((resolve) => req.write(prefix, () => resolve()));
  await vi.waitFor(ready, { timeout: 10_000, interval: 20 });
  req.destroy();
}

/** Total size of the `.partial` files, bytes. */
async function partialBytes(dataDir: string): Promise<number> {
  let n = 0;
  for (const name of await partials(dataDir)) n += (await stat(join(dataDir, "files", name)).catch(() => ({ size: 0 }))).size;
  return n;
}
