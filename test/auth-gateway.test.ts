import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyVault } from "../src/engine/key-vault.js";
import { FakeUpstream, type UpstreamCall } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

/*
 * Auth (OpenBatch API keys, per-key isolation), gateway routing (seed 002: x-openbatch-provider / x-portkey-provider
 * with the caller's own upstream key in Authorization) and the at-rest handling of that key (sealed in SQLite,
 * erased when the batch ends, never written in plaintext).
 */

const KEY_A = "key-a";
const KEY_B = "key-b";
const USER_KEY = "sk-user-provider-key";
const CHAT = "/v1/chat/completions" as const;

// The vault falls back to <dataDir>/secret.key only when OPENBATCH_SECRET is unset; these tests need the file.
const savedSecret = process.env.OPENBATCH_SECRET;
beforeAll(() => {
  delete process.env.OPENBATCH_SECRET;
});
afterAll(() => {
  if (savedSecret !== undefined) process.env.OPENBATCH_SECRET = savedSecret;
});

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** The rejection of an SDK call, as an OpenAI APIError (fails the test when the call succeeds). */
async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Asserts an HTTP answer is `status` with exactly OpenAI's error envelope `{error:{message,type,param,code}}`. */
async function expectOpenAIError(res: Response, status: number, expected: { param?: string | null; code?: string | null } = {}) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type") ?? "").toMatch(/application\/json/);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof body.error.message).toBe("string");
  expect((body.error.message as string).length).toBeGreaterThan(0);
  expect(typeof body.error.type).toBe("string");
  expect(body.error.param === null || typeof body.error.param === "string").toBe(true);
  expect(body.error.code === null || typeof body.error.code === "string").toBe(true);
  if ("param" in expected) expect(body.error.param).toBe(expected.param);
  if ("code" in expected) expect(body.error.code).toBe(expected.code);
  return body.error;
}

/** Polls until `cond` holds (fails after a generous deadline; asserts nothing about time). */
async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every id an SDK list yields (all pages). */
async function ids(list: AsyncIterable<{ id: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of list) out.push(x.id);
  return out;
}

/** Unique custom keys for one test's request lines (FakeUpstream records each call under messages[0].content). */
function keysFor(tag: string, n: number): string[] {
  const id = randomUUID().slice(0, 8);
  return Array.from({ length: n }, (_, i) => `${tag}-${id}-${i}`);
}

/** Calls an upstream received for the given request keys. */
function callsFor(upstream: FakeUpstream, keys: readonly string[]): UpstreamCall[] {
  const set = new Set(keys);
  return upstream.calls.filter((c) => set.has(c.key));
}

/**
 * Holds the fake upstream's answers to calls whose key starts with `prefix` until `release()` — so a batch is
 * deterministically still running while the test looks at it, with no sleeps.
 */
function holdCalls(upstream: FakeUpstream, prefix: string): { release: () => void } {
  let release!: () => void;
  const open = new Promise<void>((r) => (release = r));
  const target = upstream as unknown as { apply: (fault: unknown, call: UpstreamCall, req: unknown, res: { destroyed: boolean }) => Promise<void> };
  const original = target.apply;
  target.apply = async function (this: unknown, fault, call, req, res) {
    if (call.key.startsWith(prefix)) {
      await open;
      if (res.destroyed) return; // the engine aborted the call (cancel, expiry)
    }
    return original.call(upstream, fault, call, req, res);
  };
  return { release };
}

/**
 * The provider_key column of a batch, read through a separate read-only connection; null when empty or erased (an
 * erased key leaves the tombstone "-erased-", no key material, so a retry knows the batch ran on the caller's key).
 */
function providerKeyColumn(dataDir: string, batchId: string): string | null {
  const db = new Database(join(dataDir, "openbatch.db"), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT provider_key FROM batches WHERE id = ?").get(batchId) as { provider_key: string | null } | undefined;
    expect(row, `batch ${batchId} has a row`).toBeDefined();
    return row!.provider_key === "-erased-" ? null : row!.provider_key;
  } finally {
    db.close();
  }
}

/** Whether a file's raw bytes contain `needle` (as UTF-8 or UTF-16LE, SQLite's text encodings). */
function bytesContain(file: string, needle: string): boolean {
  const bytes = readFileSync(file);
  return bytes.includes(Buffer.from(needle, "utf8")) || bytes.includes(Buffer.from(needle, "utf16le"));
}

/** Files under dir (recursive) whose raw bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && bytesContain(p, needle)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

/** The SQLite files of a data dir that exist now (main db, WAL, shared memory). */
function sqliteFiles(dataDir: string): string[] {
  return ["openbatch.db", "openbatch.db-wal", "openbatch.db-shm"].map((f) => join(dataDir, f)).filter((f) => existsSync(f));
}

// ---------------------------------------------------------------------------------------------------------------

describe("auth on (apiKeys: key-a, key-b)", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let base: string; // without /v1
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer({ ...upstreamConfig(upstream.url, { timeoutMs: 60_000 }), apiKeys: [KEY_A, KEY_B] });
    base = server.url.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it("answers 401 in OpenAI's error shape without a key", async () => {
    for (const [method, path] of [
      ["GET", "/v1/files"],
      ["GET", "/v1/batches"],
      ["GET", "/v1/batches/batch_whatever"],
      ["POST", "/v1/batches"],
    ] as const) {
      const res = await fetch(base + path, {
        method,
        ...(method === "POST" ? { headers: { "content-type": "application/json" }, body: JSON.stringify({ input_file_id: "file-x", endpoint: CHAT, completion_window: "24h" }) } : {}),
      });
      await expectOpenAIError(res, 401, { param: null });
    }
    // An empty bearer is no key either.
    await expectOpenAIError(await fetch(base + "/v1/files", { headers: { authorization: "Bearer " } }), 401);
    await expectOpenAIError(await fetch(base + "/v1/files", { headers: { authorization: "key-a" } }), 401); // not a Bearer
  });

  it("answers 401 in OpenAI's error shape for a wrong key", async () => {
    for (const wrong of ["key-c", "xkey-a", "key-ab", "KEY-A", "key-", "upstream-key"]) {
      const res = await fetch(base + "/v1/files", { headers: { authorization: `Bearer ${wrong}` } });
      await expectOpenAIError(res, 401, { param: null, code: "invalid_api_key" });
    }
    const err = await rejection(server.client("wrong-key").files.list());
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.code).toBe("invalid_api_key");
    expect(err.param).toBeNull();
    expect(typeof err.type).toBe("string");

    const err2 = await rejection(server.client("wrong-key").batches.create({ input_file_id: "file-x", endpoint: CHAT, completion_window: "24h" }));
    expect(err2.status).toBe(401);
    // A wrong x-api-key is refused too.
    await expectOpenAIError(await fetch(base + "/v1/files", { headers: { "x-api-key": "nope" } }), 401, { code: "invalid_api_key" });
  });

  it("serves /healthz without a key", async () => {
    const res = await fetch(base + "/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    const withQuery = await fetch(base + "/healthz?probe=1");
    expect(withQuery.status).toBe(200);
    const withBadKey = await fetch(base + "/healthz", { headers: { authorization: "Bearer wrong" } });
    expect(withBadKey.status).toBe(200);
  });

  it("accepts both configured keys through the SDK", async () => {
    await expect(server.client(KEY_A).files.list()).resolves.toBeDefined();
    await expect(server.client(KEY_B).batches.list()).resolves.toBeDefined();
  });

  it("keeps key A's files and batches invisible to key B, and visible to A", async () => {
    const a = server.client(KEY_A);
    const b = server.client(KEY_B);
    const keys = keysFor("iso", 3);
    const fileA = await uploadJsonl(a, chatLines(keys), "a.jsonl");
    const fileB = await uploadJsonl(b, chatLines(keysFor("iso-b", 1)), "b.jsonl");

    // Hold A's calls so the batch is surely still running when B tries to cancel it.
    const hold = holdCalls(upstream, keys[0]!.slice(0, -2));
    const batchA = await a.batches.create({ input_file_id: fileA.id, endpoint: CHAT, completion_window: "24h" });
    expect(batchA.status).toBe("in_progress");

    // Files: retrieve, list, content, delete.
    expect((await rejection(b.files.retrieve(fileA.id))).status).toBe(404);
    expect(await ids(b.files.list())).not.toContain(fileA.id);
    expect(await ids(b.files.list())).toContain(fileB.id);
    expect((await rejection(b.files.content(fileA.id))).status).toBe(404);
    const delErr = await rejection(b.files.delete(fileA.id));
    expect(delErr).toBeInstanceOf(OpenAI.NotFoundError);
    expect(delErr.status).toBe(404);
    // The raw error body is OpenAI-shaped too.
    await expectOpenAIError(await fetch(`${server.url}/files/${fileA.id}`, { headers: { authorization: `Bearer ${KEY_B}` } }), 404);
    await expectOpenAIError(await fetch(`${server.url}/files/${fileA.id}/content`, { headers: { authorization: `Bearer ${KEY_B}` } }), 404);

    // B cannot start a batch from A's file: it does not exist for B.
    const createErr = await rejection(b.batches.create({ input_file_id: fileA.id, endpoint: CHAT, completion_window: "24h" }));
    expect(createErr.status).toBe(400);
    expect(createErr.param).toBe("input_file_id");

    // Batches: retrieve, list, cancel.
    expect((await rejection(b.batches.retrieve(batchA.id))).status).toBe(404);
    expect(await ids(b.batches.list())).not.toContain(batchA.id);
    const cancelErr = await rejection(b.batches.cancel(batchA.id));
    expect(cancelErr).toBeInstanceOf(OpenAI.NotFoundError);
    expect(cancelErr.status).toBe(404);
    await expectOpenAIError(await fetch(`${server.url}/batches/${batchA.id}`, { headers: { authorization: `Bearer ${KEY_B}` } }), 404);

    // B's failed cancel and delete changed nothing for A.
    expect((await a.batches.retrieve(batchA.id)).status).toBe("in_progress");
    expect((await a.files.retrieve(fileA.id)).id).toBe(fileA.id);

    // A sees its own objects, and none of B's.
    expect(await ids(a.files.list())).toContain(fileA.id);
    expect(await ids(a.files.list())).not.toContain(fileB.id);
    expect((await rejection(a.files.retrieve(fileB.id))).status).toBe(404);
    expect(await ids(a.batches.list())).toContain(batchA.id);
    expect(await (await a.files.content(fileA.id)).text()).toBe(chatLines(keys));

    hold.release();
    const done = await waitFor(a, batchA.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });

    // The output file belongs to A as well.
    expect(done.output_file_id).toBeTruthy();
    expect(await readJsonl(a, done.output_file_id)).toHaveLength(3);
    expect((await rejection(b.files.retrieve(done.output_file_id!))).status).toBe(404);
    expect((await rejection(b.files.content(done.output_file_id!))).status).toBe(404);
    expect(await ids(b.files.list())).not.toContain(done.output_file_id);
    expect((await rejection(b.batches.retrieve(batchA.id))).status).toBe(404);

    // Upstream got the configured provider key, never an OpenBatch key.
    const calls = callsFor(upstream, keys);
    expect(calls).toHaveLength(3);
    for (const c of calls) expect(c.authorization).toBe("Bearer upstream-key");

    // A may delete its own file; afterwards it is gone for A too.
    expect((await a.files.delete(fileA.id)).deleted).toBe(true);
    expect((await rejection(a.files.retrieve(fileA.id))).status).toBe(404);
  });

  it("authenticates with x-api-key (and x-goog-api-key) as the same owner as the Bearer key", async () => {
    const a = server.client(KEY_A);
    const file = await uploadJsonl(a, chatLines(keysFor("xapi", 1)));

    const viaXApiKey = await fetch(`${server.url}/files/${file.id}`, { headers: { "x-api-key": KEY_A } });
    expect(viaXApiKey.status).toBe(200);
    expect(((await viaXApiKey.json()) as { id: string }).id).toBe(file.id);

    const listB = await fetch(`${server.url}/files`, { headers: { "x-api-key": KEY_B } });
    expect(listB.status).toBe(200);
    expect(((await listB.json()) as { data: { id: string }[] }).data.map((f) => f.id)).not.toContain(file.id);
    await expectOpenAIError(await fetch(`${server.url}/files/${file.id}`, { headers: { "x-api-key": KEY_B } }), 404);

    // A batch created with x-api-key is A's.
    const created = await fetch(`${server.url}/batches`, {
      method: "POST",
      headers: { "x-api-key": KEY_A, "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }),
    });
    expect(created.status).toBe(200);
    const batch = (await created.json()) as { id: string };
    expect((await a.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect((await rejection(server.client(KEY_B).batches.retrieve(batch.id))).status).toBe(404);

    // x-goog-api-key is how the Gemini client sends its key: it marks a Gemini caller, served the Gemini API (the
    // same owner's files, as Gemini File objects).
    const viaGoog = await fetch(`${server.url}/files/${file.id}`, { headers: { "x-goog-api-key": KEY_A } });
    expect(viaGoog.status).toBe(200);
    expect(((await viaGoog.json()) as { name: string }).name).toBe(`files/${file.id}`);
    expect((await fetch(`${server.url}/files/${file.id}`, { headers: { "x-goog-api-key": KEY_B } })).status).toBe(404);
    await waitFor(a, batch.id);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("auth off", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url));
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it("accepts any token and shows everything to everyone", async () => {
    const one = server.client("token-one");
    const two = server.client("token-two");
    const keys = keysFor("open", 2);
    const file = await uploadJsonl(one, chatLines(keys));
    const batch = await one.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" });

    expect((await two.files.retrieve(file.id)).id).toBe(file.id);
    expect(await ids(two.files.list())).toContain(file.id);
    expect(await (await two.files.content(file.id)).text()).toBe(chatLines(keys));
    expect((await two.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect(await ids(two.batches.list())).toContain(batch.id);

    // No Authorization header at all works as well.
    const bare = await fetch(`${server.url}/batches/${batch.id}`);
    expect(bare.status).toBe(200);
    const bareFiles = await fetch(`${server.url}/files`);
    expect(bareFiles.status).toBe(200);

    const done = await waitFor(two, batch.id);
    expect(done.status).toBe("completed");
    expect(await readJsonl(server.client("token-three"), done.output_file_id)).toHaveLength(2);
    for (const c of callsFor(upstream, keys)) expect(c.authorization).toBe("Bearer upstream-key");

    // Another token may cancel and delete, too.
    const file2 = await uploadJsonl(one, chatLines(keysFor("open2", 1)));
    expect((await two.files.delete(file2.id)).deleted).toBe(true);
    expect((await rejection(one.files.retrieve(file2.id))).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("gateway routing (seed 002), auth off", () => {
  let upA: FakeUpstream; // provider "up"
  let upB: FakeUpstream; // provider "other", where config routes every model
  let server: TestServer;
  beforeAll(async () => {
    upA = await new FakeUpstream().start();
    upB = await new FakeUpstream().start();
    server = await startServer({
      providers: {
        up: { type: "openai-compatible", baseURL: upA.url, apiKey: "upstream-key", maxConcurrency: 8, timeoutMs: 60_000 },
        other: { type: "openai-compatible", baseURL: upB.url, apiKey: "other-key", maxConcurrency: 8, timeoutMs: 60_000 },
      },
      models: { "*": "other" },
    });
  });
  afterAll(async () => {
    try {
      await server?.close();
    } finally {
      await upA?.stop();
      await upB?.stop();
    }
  });

  async function runGateway(headers: Record<string, string>, n = 4) {
    const client = server.client();
    const keys = keysFor("gw", n);
    const file = await uploadJsonl(client, chatLines(keys));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }, { headers });
    const done = await waitFor(client, created.id);
    return { client, keys, created, done };
  }

  it("without a provider header, follows the config's model routes and the provider's own key", async () => {
    const { keys, done } = await runGateway({}, 3);
    expect(done.status).toBe("completed");
    expect(callsFor(upA, keys)).toHaveLength(0);
    const calls = callsFor(upB, keys);
    expect(calls).toHaveLength(3);
    for (const c of calls) expect(c.authorization).toBe("Bearer other-key");
  });

  it("x-openbatch-provider overrides the model route and sends the caller's Bearer key upstream for every item", async () => {
    const { client, keys, created, done } = await runGateway({ "x-openbatch-provider": "up", Authorization: `Bearer ${USER_KEY}` }, 5);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 5, completed: 5, failed: 0 });
    expect(callsFor(upB, keys)).toHaveLength(0);
    const calls = callsFor(upA, keys);
    expect(calls.map((c) => c.key).sort()).toEqual([...keys].sort());
    for (const c of calls) expect(c.authorization).toBe(`Bearer ${USER_KEY}`);
    const out = await readJsonl(client, done.output_file_id);
    expect(out).toHaveLength(5);
    for (const line of out) expect(line.response.status_code).toBe(200);
    // The key is never echoed back in the batch object.
    expect(JSON.stringify(created)).not.toContain(USER_KEY);
    expect(JSON.stringify(done)).not.toContain(USER_KEY);
  });

  it("x-portkey-provider works the same way", async () => {
    const { keys, done } = await runGateway({ "x-portkey-provider": "up", Authorization: `Bearer ${USER_KEY}` }, 3);
    expect(done.status).toBe("completed");
    expect(callsFor(upB, keys)).toHaveLength(0);
    const calls = callsFor(upA, keys);
    expect(calls).toHaveLength(3);
    for (const c of calls) expect(c.authorization).toBe(`Bearer ${USER_KEY}`);
  });

  it("uses the caller's key also when the header names the provider the route would pick", async () => {
    const { keys, done } = await runGateway({ "x-openbatch-provider": "other", Authorization: `Bearer ${USER_KEY}` }, 2);
    expect(done.status).toBe("completed");
    const calls = callsFor(upB, keys);
    expect(calls).toHaveLength(2);
    for (const c of calls) expect(c.authorization).toBe(`Bearer ${USER_KEY}`);
  });

  it("keeps each batch's own key when several gateway batches run at once", async () => {
    const client = server.client();
    const runs = await Promise.all(
      ["sk-first-user", "sk-second-user", "sk-third-user"].map(async (userKey) => {
        const keys = keysFor(userKey, 4);
        const file = await uploadJsonl(client, chatLines(keys));
        const b = await client.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }, { headers: { "x-openbatch-provider": "up", Authorization: `Bearer ${userKey}` } });
        return { userKey, keys, id: b.id };
      }),
    );
    for (const r of runs) expect((await waitFor(client, r.id)).status).toBe("completed");
    for (const r of runs) {
      const calls = callsFor(upA, r.keys);
      expect(calls).toHaveLength(4);
      for (const c of calls) expect(c.authorization).toBe(`Bearer ${r.userKey}`);
    }
  });

  it("a provider header without Authorization uses the provider's configured key", async () => {
    const client = server.client();
    const keys = keysFor("nokey", 2);
    const file = await uploadJsonl(client, chatLines(keys));
    const res = await fetch(`${server.url}/batches`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-openbatch-provider": "up" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }),
    });
    expect(res.status).toBe(200);
    const batch = (await res.json()) as { id: string };
    expect(providerKeyColumn(server.dataDir, batch.id)).toBeNull();
    expect((await waitFor(client, batch.id)).status).toBe("completed");
    expect(callsFor(upB, keys)).toHaveLength(0);
    const calls = callsFor(upA, keys);
    expect(calls).toHaveLength(2);
    for (const c of calls) expect(c.authorization).toBe("Bearer upstream-key");
  });

  it("an unknown provider name is a 400 with param x-openbatch-provider, and creates no batch", async () => {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(keysFor("unknown", 1)));
    const before = await ids(client.batches.list());
    for (const header of ["x-openbatch-provider", "x-portkey-provider"]) {
      const err = await rejection(
        client.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }, { headers: { [header]: "no-such-provider", Authorization: `Bearer ${USER_KEY}` } }),
      );
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.param).toBe("x-openbatch-provider");
      expect(err.type).toBe("invalid_request_error");
    }
    const raw = await fetch(`${server.url}/batches`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-openbatch-provider": "no-such-provider", authorization: `Bearer ${USER_KEY}` },
      body: JSON.stringify({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }),
    });
    await expectOpenAIError(raw, 400, { param: "x-openbatch-provider" });
    expect(await ids(client.batches.list())).toEqual(before);
  });

  it("names inherited from Object.prototype are unknown providers too (400, no batch)", async () => {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(keysFor("proto", 1)));
    const before = await ids(client.batches.list());
    for (const name of ["constructor", "toString", "hasOwnProperty", "__proto__"]) {
      const res = await fetch(`${server.url}/batches`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-openbatch-provider": name, authorization: `Bearer ${USER_KEY}` },
        body: JSON.stringify({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }),
      });
      const text = await res.text();
      expect(res.status, `x-openbatch-provider: ${name} → ${text}`).toBe(400);
      expect(JSON.parse(text).error.param).toBe("x-openbatch-provider");
    }
    expect(await ids(client.batches.list())).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("gateway routing with auth on", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer({ ...upstreamConfig(upstream.url, { timeoutMs: 60_000 }), apiKeys: [KEY_A, KEY_B] });
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it("takes the OpenBatch key from x-openbatch-api-key and the provider key from Authorization", async () => {
    const a = server.client(KEY_A);
    const keys = keysFor("gwauth", 3);
    const file = await uploadJsonl(a, chatLines(keys));
    const created = await a.batches.create(
      { input_file_id: file.id, endpoint: CHAT, completion_window: "24h" },
      { headers: { "x-openbatch-provider": "up", "x-openbatch-api-key": KEY_A, Authorization: `Bearer ${USER_KEY}` } },
    );
    const done = await waitFor(a, created.id);
    expect(done.status).toBe("completed");
    const calls = callsFor(upstream, keys);
    expect(calls).toHaveLength(3);
    for (const c of calls) expect(c.authorization).toBe(`Bearer ${USER_KEY}`);

    // The batch is A's.
    expect(await ids(a.batches.list())).toContain(created.id);
    expect((await rejection(server.client(KEY_B).batches.retrieve(created.id))).status).toBe(404);
    expect(await ids(server.client(KEY_B).batches.list())).not.toContain(created.id);
  });

  it("x-portkey-provider with x-openbatch-api-key works as well", async () => {
    const b = server.client(KEY_B);
    const keys = keysFor("gwauth-pk", 2);
    const file = await uploadJsonl(b, chatLines(keys));
    const created = await b.batches.create(
      { input_file_id: file.id, endpoint: CHAT, completion_window: "24h" },
      { headers: { "x-portkey-provider": "up", "x-openbatch-api-key": KEY_B, Authorization: `Bearer ${USER_KEY}` } },
    );
    expect((await waitFor(b, created.id)).status).toBe("completed");
    for (const c of callsFor(upstream, keys)) expect(c.authorization).toBe(`Bearer ${USER_KEY}`);
    expect(callsFor(upstream, keys)).toHaveLength(2);
    expect((await rejection(server.client(KEY_A).batches.retrieve(created.id))).status).toBe(404);
  });

  it("with a provider header, a missing or wrong x-openbatch-api-key is a 401 (Authorization is the provider key)", async () => {
    const a = server.client(KEY_A);
    const file = await uploadJsonl(a, chatLines(keysFor("gwauth-miss", 1)));
    const before = await ids(a.batches.list());
    const body = JSON.stringify({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" });

    // Missing, even though Authorization carries a valid OpenBatch key: with a provider header it is the provider key.
    await expectOpenAIError(
      await fetch(`${server.url}/batches`, { method: "POST", headers: { "content-type": "application/json", "x-openbatch-provider": "up", authorization: `Bearer ${KEY_A}` }, body }),
      401,
    );
    await expectOpenAIError(
      await fetch(`${server.url}/batches`, { method: "POST", headers: { "content-type": "application/json", "x-openbatch-provider": "up", authorization: `Bearer ${USER_KEY}` }, body }),
      401,
    );
    // Wrong.
    await expectOpenAIError(
      await fetch(`${server.url}/batches`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-openbatch-provider": "up", "x-openbatch-api-key": "key-z", authorization: `Bearer ${USER_KEY}` },
        body,
      }),
      401,
      { code: "invalid_api_key" },
    );
    // Through the SDK.
    const err = await rejection(
      a.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }, { headers: { "x-openbatch-provider": "up", Authorization: `Bearer ${USER_KEY}` } }),
    );
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(await ids(a.batches.list())).toEqual(before);
  });

  it("an unknown provider is still a 400 once authenticated", async () => {
    const a = server.client(KEY_A);
    const file = await uploadJsonl(a, chatLines(keysFor("gwauth-unknown", 1)));
    const err = await rejection(
      a.batches.create(
        { input_file_id: file.id, endpoint: CHAT, completion_window: "24h" },
        { headers: { "x-openbatch-provider": "nope", "x-openbatch-api-key": KEY_A, Authorization: `Bearer ${USER_KEY}` } },
      ),
    );
    expect(err.status).toBe(400);
    expect(err.param).toBe("x-openbatch-provider");
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("provider key at rest", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url, { timeoutMs: 60_000 }));
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  /** Starts a gateway batch whose upstream calls are held; returns once the first call has reached the upstream. */
  async function startHeldBatch(userKey: string, n: number, window = "24h") {
    const client = server.client();
    const tag = "rest-" + randomUUID().slice(0, 8);
    const keys = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
    const hold = holdCalls(upstream, tag);
    const file = await uploadJsonl(client, chatLines(keys));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: window as "24h" }, { headers: { "x-openbatch-provider": "up", Authorization: `Bearer ${userKey}` } });
    await until(() => callsFor(upstream, keys).length > 0, "the first upstream call");
    return { client, keys, batch, hold };
  }

  it("writes the server secret to <dataDir>/secret.key (32 bytes hex, owner-only)", () => {
    const file = join(server.dataDir, "secret.key");
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, "utf8").trim()).toMatch(/^[0-9a-f]{64}$/i);
    if (process.platform !== "win32") expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("stores the key sealed while the batch runs, erases it when it completes, and never writes the plaintext", async () => {
    const userKey = `${USER_KEY}-${randomUUID()}`;
    const { client, keys, batch, hold } = await startHeldBatch(userKey, 3);

    // Running: the column holds ciphertext, not the key.
    expect((await client.batches.retrieve(batch.id)).status).toBe("in_progress");
    const sealed = providerKeyColumn(server.dataDir, batch.id);
    expect(sealed).not.toBeNull();
    expect(sealed).not.toContain(userKey);
    expect(sealed).not.toContain(USER_KEY);
    expect(sealed).not.toContain(Buffer.from(userKey).toString("base64"));
    // …and it is real encryption under the server secret: it opens with the vault of this data dir.
    const vault = await KeyVault.open(server.dataDir);
    expect(vault.open(sealed!)).toBe(userKey);

    // The plaintext is nowhere in the SQLite files (main, WAL, shm), nor anywhere in the data dir.
    expect(sqliteFiles(server.dataDir).length).toBeGreaterThan(0);
    for (const f of sqliteFiles(server.dataDir)) expect(bytesContain(f, userKey), f).toBe(false);
    expect(filesContaining(server.dataDir, userKey)).toEqual([]);
    // Nor in any API answer.
    expect(JSON.stringify(batch)).not.toContain(userKey);
    expect(JSON.stringify(await client.batches.retrieve(batch.id))).not.toContain(userKey);

    hold.release();
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("completed");
    for (const c of callsFor(upstream, keys)) expect(c.authorization).toBe(`Bearer ${userKey}`);
    expect(callsFor(upstream, keys)).toHaveLength(3);

    // Ended: the column is erased.
    expect(providerKeyColumn(server.dataDir, batch.id)).toBeNull();
    for (const f of sqliteFiles(server.dataDir)) expect(bytesContain(f, userKey), f).toBe(false);
    expect(filesContaining(server.dataDir, userKey)).toEqual([]);
  });

  it("erases the key when the batch is cancelled", async () => {
    const userKey = `${USER_KEY}-${randomUUID()}`;
    const { client, batch, hold } = await startHeldBatch(userKey, 3);
    expect(providerKeyColumn(server.dataDir, batch.id)).not.toBeNull();
    await client.batches.cancel(batch.id);
    const done = await waitFor(client, batch.id);
    hold.release();
    expect(done.status).toBe("cancelled");
    expect(providerKeyColumn(server.dataDir, batch.id)).toBeNull();
    expect(filesContaining(server.dataDir, userKey)).toEqual([]);
  });

  it("erases the key when the batch expires", async () => {
    const userKey = `${USER_KEY}-${randomUUID()}`;
    const { client, batch, hold } = await startHeldBatch(userKey, 2, "1s");
    const done = await waitFor(client, batch.id);
    hold.release();
    expect(done.status).toBe("expired");
    expect(providerKeyColumn(server.dataDir, batch.id)).toBeNull();
    expect(filesContaining(server.dataDir, userKey)).toEqual([]);
  });

  it("never keeps the key of a batch that fails validation", async () => {
    const userKey = `${USER_KEY}-${randomUUID()}`;
    const client = server.client();
    const file = await uploadJsonl(client, "this is not json\n");
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: CHAT, completion_window: "24h" }, { headers: { "x-openbatch-provider": "up", Authorization: `Bearer ${userKey}` } });
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("failed");
    expect(providerKeyColumn(server.dataDir, batch.id)).toBeNull();
    expect(filesContaining(server.dataDir, userKey)).toEqual([]);
  });
});
