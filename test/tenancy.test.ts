import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { parseConfig } from "../src/core/config.js";
import { SqliteCollectionStore } from "../src/store/sqlite/collection-store.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { startServer, upstreamConfig, type TestServer } from "./support/harness.js";

/*
 * Tenancy with API keys on (issue 10, finding 12): collections belong to the key that created them, grants and admin
 * keys reach others', /metrics is an admin key's, and seed-001 / gateway batches do not outlive or lose their keys.
 */

const KEY_A = "tenant-a-key";
const KEY_B = "tenant-b-key";
const ADMIN = "ops-admin-key";
const USER_UPSTREAM_KEY = "sk-user-upstream";

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

/** A JSON call to the server root with a key. */
async function call(server: TestServer, key: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(server.url.replace(/\/v1$/, "") + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** What the client raises for Weaviate's REST 403 (the class is not exported; its name is set). */
const DENIED = { name: "WeaviateInsufficientPermissionsError", message: expect.stringMatching(/forbidden: this API key has insufficient permissions/) };
/** What the client's query and deleteMany raise for gRPC PERMISSION_DENIED (wrapped in their own error types). */
const GRPC_DENIED = { message: expect.stringMatching(/PERMISSION_DENIED: forbidden: this API key has insufficient permissions/) };

/** Collection names the client's `listAll` (`GET /v1/schema`) gives a key. */
const schemaNames = async (client: WeaviateClient) => (await client.collections.listAll()).map((c) => c.name).sort();

const connect = (server: TestServer, apiKey: string) =>
  weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort!, authCredentials: new weaviate.ApiKey(apiKey) });

/** Weaviate's error body with a 403 message naming the collection. */
const forbiddenBody = (cls: string) => ({ error: [{ message: expect.stringMatching(new RegExp(`^forbidden: .*Collection: ${cls}\\b`)) }] });

describe("collections belong to the key that created them (REST, GraphQL, gRPC through weaviate-client)", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let dataDir: string;
  let a: WeaviateClient;
  let b: WeaviateClient;
  let admin: WeaviateClient;
  const config = () => ({
    ...upstreamConfig(upstream.url),
    apiKeys: [KEY_A, KEY_B],
    adminKeys: [ADMIN],
    // B may read A's "Shared…" collections, nothing more.
    collections: { grants: [{ key: KEY_B, collections: ["Shared*"], actions: ["read"] }] },
  });

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-tenancy-"));
    server = await startServer(config(), { dataDir, grpcPort: 0 });
    a = await connect(server, KEY_A);
    b = await connect(server, KEY_B);
    admin = await connect(server, ADMIN);
    for (const name of ["Private", "SharedDocs"]) {
      // As a user writes it: the client sends a named vector `default` (self-provided).
      await a.collections.create({ name, properties: [{ name: "title", dataType: "text" }, { name: "rank", dataType: "int" }], vectorizers: weaviate.configure.vectors.selfProvided() });
      const r = await a.collections.use(name).data.insertMany([1, 2, 3].map((n) => ({ id: uuid(name === "Private" ? n : 100 + n), properties: { title: `${name} ${n}`, rank: n }, vectors: [n, 1] })));
      expect(r.hasErrors).toBe(false);
    }
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), admin?.close()]);
    await server?.close();
    await upstream?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("B does not see A's collection in the schema, and cannot read, search, write or delete it over gRPC and REST", async () => {
    expect((await schemaNames(a))).toEqual(["Private", "SharedDocs"]);
    // Listing leaves out what B may not see; the granted one stays.
    expect((await schemaNames(b))).toEqual(["SharedDocs"]);

    const priv = b.collections.use("Private");
    // gRPC Search / BatchDelete: PERMISSION_DENIED with Weaviate's message.
    await expect(priv.query.fetchObjects({ limit: 10 })).rejects.toMatchObject(GRPC_DENIED);
    await expect(priv.query.nearVector([1, 1], { limit: 1 })).rejects.toMatchObject(GRPC_DENIED);
    await expect(priv.data.deleteMany(priv.filter.byProperty("rank").greaterThan(0))).rejects.toMatchObject(GRPC_DENIED);
    // gRPC BatchObjects: each object fails alone.
    const ins = await priv.data.insertMany([{ id: uuid(9), properties: { title: "intruder", rank: 9 }, vectors: [9, 1] }]);
    expect(ins.hasErrors).toBe(true);
    expect(Object.values(ins.errors)[0]!.message).toMatch(/^forbidden: .*Collection: Private/);
    // REST schema: get, add a property, delete.
    await expect(b.collections.delete("Private")).rejects.toMatchObject(DENIED);
    await expect(priv.config.addProperty({ name: "extra", dataType: "text" })).rejects.toMatchObject(DENIED);
    expect(await call(server, KEY_B, "GET", "/v1/schema/Private")).toEqual({ status: 403, body: forbiddenBody("Private") });

    // REST objects and batch.
    expect(await call(server, KEY_B, "GET", `/v1/objects/Private/${uuid(1)}`)).toEqual({ status: 403, body: forbiddenBody("Private") });
    expect((await call(server, KEY_B, "GET", `/v1/objects/${uuid(1)}`)).status).toBe(404); // any-class lookup: only B's classes
    expect(await call(server, KEY_B, "GET", "/v1/objects?class=Private")).toEqual({ status: 403, body: forbiddenBody("Private") });
    expect(await call(server, KEY_B, "DELETE", `/v1/objects/Private/${uuid(1)}`)).toEqual({ status: 403, body: forbiddenBody("Private") });
    expect(await call(server, KEY_B, "PUT", `/v1/objects/Private/${uuid(1)}`, { properties: { title: "overwritten" } })).toEqual({ status: 403, body: forbiddenBody("Private") });
    const batch = await call(server, KEY_B, "POST", "/v1/batch/objects", { objects: [{ class: "Private", id: uuid(1), properties: { title: "overwritten" } }] });
    expect(batch.status).toBe(200);
    expect(batch.body[0].result).toEqual({ status: "FAILED", errors: forbiddenBody("Private") });
    expect(await call(server, KEY_B, "DELETE", "/v1/batch/objects", { match: { class: "Private", where: { path: ["rank"], operator: "GreaterThan", valueInt: 0 } } })).toEqual({
      status: 403,
      body: forbiddenBody("Private"),
    });
    const refs = await call(server, KEY_B, "POST", "/v1/batch/references", [{ from: `weaviate://localhost/Private/${uuid(1)}/title`, to: `weaviate://localhost/SharedDocs/${uuid(101)}` }]);
    expect(refs.body[0].result.errors.error[0].message).toMatch(/^forbidden: .*Collection: Private/);

    // GraphQL Get / Aggregate: Weaviate's 403 message as a GraphQL error, nothing returned.
    const get = await call(server, KEY_B, "POST", "/v1/graphql", { query: "{ Get { Private { title } } }" });
    expect(get.status).toBe(200);
    expect(get.body).not.toHaveProperty("data");
    expect(get.body.errors[0].message).toMatch(/^forbidden: .*Collection: Private/);
    const agg = await call(server, KEY_B, "POST", "/v1/graphql", { query: "{ Aggregate { Private { meta { count } } } }" });
    expect(agg.body.errors[0].message).toMatch(/^forbidden: /);
    // /v1/nodes counts only what B may see.
    const nodes = await call(server, KEY_B, "GET", "/v1/nodes?output=verbose");
    expect(nodes.body.nodes[0].shards.map((s: any) => s.class)).toEqual(["SharedDocs"]);

    // Nothing of A's changed, and A still reads it all.
    const mine = await a.collections.use("Private").query.fetchObjects({ limit: 10 });
    expect(mine.objects.map((o) => o.properties.title).sort()).toEqual(["Private 1", "Private 2", "Private 3"]);
    const aGet = await call(server, KEY_A, "POST", "/v1/graphql", { query: "{ Get { Private { title } } }" });
    expect(aGet.body.data.Get.Private).toHaveLength(3);
  });

  it("a read grant lets B read and search A's collection, but not write, delete or change it", async () => {
    const shared = b.collections.use("SharedDocs");
    const found = await shared.query.nearVector([3, 1], { limit: 1 });
    expect(found.objects[0]!.properties.title).toBe("SharedDocs 3");
    expect((await call(server, KEY_B, "GET", `/v1/objects/SharedDocs/${uuid(102)}`)).body.properties.title).toBe("SharedDocs 2");
    expect((await call(server, KEY_B, "POST", "/v1/graphql", { query: "{ Get { SharedDocs(limit: 10) { title } } }" })).body.data.Get.SharedDocs).toHaveLength(3);

    const ins = await shared.data.insertMany([{ properties: { title: "by B", rank: 7 }, vectors: [7, 1] }]);
    expect(ins.hasErrors).toBe(true);
    expect(Object.values(ins.errors)[0]!.message).toMatch(/^forbidden: .*update_data.*Collection: SharedDocs/);
    await expect(shared.data.deleteMany(shared.filter.byProperty("rank").greaterThan(0))).rejects.toMatchObject(GRPC_DENIED);
    await expect(b.collections.delete("SharedDocs")).rejects.toMatchObject(DENIED);
    expect((await call(server, KEY_B, "DELETE", `/v1/objects/SharedDocs/${uuid(102)}`)).status).toBe(403);
    expect(await a.collections.use("SharedDocs").length()).toBe(3);
  });

  it("auto-schema makes a class owned by the importing key; admin keys reach every collection", async () => {
    const own = await b.collections.use("BeeNotes").data.insertMany([{ properties: { note: "mine" }, vectors: [1, 0] }]);
    expect(own.hasErrors).toBe(false);
    expect((await schemaNames(b))).toEqual(["BeeNotes", "SharedDocs"]);
    expect((await schemaNames(a))).not.toContain("BeeNotes");
    await expect(a.collections.use("BeeNotes").query.fetchObjects()).rejects.toMatchObject(GRPC_DENIED);

    expect((await schemaNames(admin))).toEqual(["BeeNotes", "Private", "SharedDocs"]);
    expect((await admin.collections.use("Private").query.fetchObjects()).objects).toHaveLength(3);
  });

  it("owners survive a restart on the same data dir", async () => {
    await Promise.all([a.close(), b.close(), admin.close()]);
    await server.close();
    server = await startServer(config(), { dataDir, grpcPort: 0 });
    a = await connect(server, KEY_A);
    b = await connect(server, KEY_B);
    admin = await connect(server, ADMIN);
    expect((await schemaNames(b))).toEqual(["BeeNotes", "SharedDocs"]);
    await expect(b.collections.use("Private").query.fetchObjects()).rejects.toMatchObject(GRPC_DENIED);
    expect((await a.collections.use("Private").query.fetchObjects()).objects).toHaveLength(3);
  });

  it("/metrics needs an admin key when auth is on", async () => {
    const metrics = (key: string | null) => call(server, key, "GET", "/metrics");
    expect((await metrics(null)).status).toBe(401);
    const refused = await metrics(KEY_A);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: "admin_key_required", message: expect.stringContaining("adminKeys") });
    const served = await metrics(ADMIN);
    expect(served.status).toBe(200);
    expect(served.body).toContain("openbatch_");
  });
});

describe("seed-001 batches never started, and gateway retries", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer({ ...upstreamConfig(upstream.url), apiKeys: [KEY_A] });
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  /** Headers of a gateway call: the provider, the caller's upstream key, and its OpenBatch key. */
  const gateway = { "x-openbatch-provider": "up", authorization: `Bearer ${USER_UPSTREAM_KEY}`, "x-openbatch-api-key": KEY_A };

  it("a created batch that is never started expires after its window and its sealed key is erased; retrying it needs the key again", async () => {
    const created = await call(server, null, "POST", "/v1/batches", { name: "never-started", model: "fake-model", completion_window: "1s" }, gateway);
    expect(created.status).toBe(200);
    const id = created.body.id as string;
    const added = await call(server, KEY_A, "POST", `/v1/batches/${id}/requests`, { requests: [{ custom_id: "r1", body: { model: "fake-model", messages: [{ role: "user", content: "hello" }] } }] });
    expect(added.body).toMatchObject({ status: "pending", request_count: 1 });
    expect(await server.engine.store.getProviderKey(id)).toEqual(expect.any(String));

    // The dispatcher expires it once the window is over (no start call ever comes).
    const deadline = Date.now() + 20_000;
    let batch = await server.engine.getBatch(null, id);
    while (batch.status !== "expired" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      batch = await server.engine.getBatch(null, id);
    }
    expect(batch.status).toBe("expired");
    expect(batch.request_counts).toMatchObject({ total: 1, expired: 1, pending: 0 });
    expect(await server.engine.store.getProviderKey(id)).toBeNull();
    const shown = await call(server, KEY_A, "GET", `/v1/batches/${id}`);
    expect(shown.body).toMatchObject({ status: "failed", pending_count: 0, failed_count: 1 });
    expect(shown.body.completed_at).not.toBeNull();
    const results = await call(server, KEY_A, "GET", `/v1/batches/${id}/results`);
    expect(JSON.stringify(results.body.data[0])).toContain("batch_expired");
    expect(upstream.calls).toHaveLength(0);

    // It ran (would have run) on the caller's upstream key: a retry without it is refused, not run keyless.
    const keyless = await call(server, KEY_A, "POST", `/v1/batches/${id}/retry`);
    expect(keyless.status).toBe(400);
    expect(keyless.body.error).toMatchObject({ code: "gateway_key_required", param: "x-openbatch-provider", message: expect.stringContaining("upstream key") });
    // With the header and key again it runs, on that key.
    const retried = await call(server, null, "POST", `/v1/batches/${id}/retry`, undefined, gateway);
    expect(retried.status).toBe(200);
    const again = retried.body.id as string;
    const until = Date.now() + 20_000;
    while ((await server.engine.getBatch(null, again)).status !== "completed" && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect((await server.engine.getBatch(null, again)).request_counts).toMatchObject({ total: 1, completed: 1 });
    expect(upstream.calls.map((c) => c.authorization)).toEqual([`Bearer ${USER_UPSTREAM_KEY}`]);
  });

  it("a batch that never had a gateway key retries without one", async () => {
    const created = await call(server, KEY_A, "POST", "/v1/batches", { name: "routed", model: "fake-model", completion_window: "1s" });
    const id = created.body.id as string;
    await call(server, KEY_A, "POST", `/v1/batches/${id}/requests`, { requests: [{ custom_id: "r1", body: { model: "fake-model", messages: [{ role: "user", content: "hi" }] } }] });
    const deadline = Date.now() + 20_000;
    while ((await server.engine.getBatch(null, id)).status !== "expired" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await call(server, KEY_A, "POST", `/v1/batches/${id}/retry`)).status).toBe(200);
  });
});

describe("config and storage of tenancy", () => {
  it("refuses unknown keys and actions in collections.grants, and a grant for a key the server does not accept", async () => {
    expect(() => parseConfig({ apiKeys: ["k"], collections: { grants: [{ key: "k", collections: ["A*"], actions: ["read"], role: "x" }] } })).toThrow(/collections\.grants\.0: unknown key "role"/);
    expect(() => parseConfig({ apiKeys: ["k"], collections: { grant: [] } })).toThrow(/unknown key "grant" \(did you mean "grants"\?\)/);
    expect(() => parseConfig({ apiKeys: ["k"], collections: { grants: [{ key: "k", collections: ["A*"], actions: ["delete"] }] } })).toThrow(/unknown action "delete"/);
    expect(() => parseConfig({ adminkeys: ["k"] })).toThrow(/did you mean "adminKeys"/);
    // An admin key is an accepted key too.
    expect(parseConfig({ apiKeys: ["k"], adminKeys: ["env:ADMIN"] }, { ADMIN: "root" }).apiKeys).toEqual(["k", "root"]);
    await expect(startServer({ apiKeys: ["k"], collections: { grants: [{ key: "other", collections: ["A"], actions: ["read"] }] } })).rejects.toThrow(/collections\.grants\[0\]\.key is not one of apiKeys/);
  });

  it("a collections database from before owners opens, its classes without an owner", async () => {
    const dir = await mkdtemp(join(tmpdir(), "openbatch-collections-v0-"));
    try {
      const file = join(dir, "openbatch.db");
      const old = new Database(file);
      old.exec(`CREATE TABLE collection_classes (name TEXT PRIMARY KEY, definition TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)`);
      old.prepare(`INSERT INTO collection_classes (name, definition, created_at) VALUES ('Legacy', '{"class":"Legacy"}', 1)`).run();
      old.close();
      const store = new SqliteCollectionStore(file);
      expect((await store.listClasses()).map((c) => [c.name, c.owner])).toEqual([["Legacy", null]]);
      await store.putClass("Owned", { class: "Owned" }, "abc123");
      await store.putClass("Owned", { class: "Owned", description: "replaced" }, "someone-else");
      expect((await store.listClasses()).find((c) => c.name === "Owned")).toMatchObject({ owner: "abc123", definition: { description: "replaced" } });
      await store.close();
      // Opening again applies nothing twice.
      const again = new SqliteCollectionStore(file);
      expect((await again.listClasses()).map((c) => c.owner)).toEqual([null, "abc123"]);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
