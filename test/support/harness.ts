import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import OpenAI, { APIError, toFile } from "openai";
import { ApiKeyAuth } from "../../src/api/auth.js";
import { buildServer } from "../../src/api/server.js";
import { startWeaviateGrpc } from "../../src/api/weaviate-grpc/server.js";
import { parseConfig, type Config } from "../../src/core/config.js";
import { Engine } from "../../src/engine/engine.js";

/** A running OpenBatch (engine + HTTP server) on a fresh data dir, for tests. */
export interface TestServer {
  engine: Engine;
  app: FastifyInstance;
  /** Base URL including `/v1`. */
  url: string;
  dataDir: string;
  /** Port of the Weaviate gRPC API, when started (option `grpcPort`). */
  grpcPort?: number;
  client(apiKey?: string): OpenAI;
  close(): Promise<void>;
}

/**
 * Starts an in-process server. `config` is a raw config object (defaults filled in); test retry delays are short.
 * `grpcPort` also starts the Weaviate gRPC API on that port (0: a free one); absent: no gRPC.
 * `databaseUrl` (a `postgres://` URL) runs the engine and the collections on PostgreSQL; the data dir then holds only
 * caches and saved vector indexes.
 */
export async function startServer(
  config: Record<string, unknown>,
  opts: { dataDir?: string; cacheDir?: string; autoSchema?: boolean; grpcPort?: number; databaseUrl?: string } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "openbatch-test-")));
  const parsed: Config = parseConfig({ ...config, retry: { baseDelayMs: 20, maxDelayMs: 200, ...(config.retry as object | undefined) } });
  const engine = await Engine.open({ dataDir, config: parsed, pollMs: 50, cacheDir: opts.cacheDir, databaseUrl: opts.databaseUrl });
  await engine.start();
  const app = await buildServer({ engine, apiKeys: parsed.apiKeys, adminKeys: parsed.adminKeys, collectionGrants: parsed.collections.grants, maxFileBytes: parsed.limits.maxFileBytes, dataDir, databaseUrl: opts.databaseUrl, autoSchema: opts.autoSchema });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  const url = `${address}/v1`;
  const grpc = opts.grpcPort === undefined ? null : await startWeaviateGrpc({ collections: app.collections, port: opts.grpcPort, host: "127.0.0.1", auth: new ApiKeyAuth(parsed.apiKeys) });
  return {
    engine,
    app,
    url,
    dataDir,
    grpcPort: grpc?.port,
    client: (apiKey = "unused") => new OpenAI({ baseURL: url, apiKey, maxRetries: 0 }),
    async close() {
      await grpc?.close();
      await app.close();
      await engine.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A word-vector cache shared by every test run on this machine, so the one-time conversion happens once. */
export const SHARED_CACHE_DIR = join(tmpdir(), "openbatch-test-cache");

/** A provider config pointing at a fake upstream, routing every model to it. */
export function upstreamConfig(baseURL: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { providers: { up: { type: "openai-compatible", baseURL, apiKey: "upstream-key", maxConcurrency: 8, timeoutMs: 2000, ...extra } }, models: { "*": "up" } };
}

/** JSONL text of chat requests, one per key. */
export function chatLines(keys: string[], model = "fake-model"): string {
  return keys.map((k, i) => JSON.stringify({ custom_id: `req-${i}`, method: "POST", url: "/v1/chat/completions", body: { model, messages: [{ role: "user", content: k }], max_tokens: 16 } })).join("\n") + "\n";
}

/** Uploads JSONL text as a batch input file. */
export async function uploadJsonl(client: OpenAI, text: string, name = "input.jsonl") {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: "batch" });
}

/** Polls a batch until it reaches a terminal status (or `until` holds). */
export async function waitFor(client: OpenAI, id: string, until: (b: OpenAI.Batches.Batch) => boolean = (b) => ["completed", "failed", "expired", "cancelled"].includes(b.status), timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (until(b)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} stuck in ${b.status}: ${JSON.stringify(b.request_counts)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Awaits a promise that must reject with an SDK APIError, and returns the error. */
export async function apiError(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw new Error(`expected an APIError, got ${String(err)}`);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Downloads a file's JSONL and parses each line. */
export async function readJsonl(client: OpenAI, fileId: string | null | undefined): Promise<any[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
