import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { reconfigure, type Collection, type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";
import { postgresReachable } from "./support/postgres.js";
import { connectWeaviate, startServerPair, weaviateCall, type ServerPair } from "./support/weaviate.js";

/*
 * The Weaviate routes and schema behaviour of issue 12's last part, through the official weaviate-client 3.14 (default
 * options) and raw HTTP: `PUT /v1/schema/{class}` (`collection.config.update`: what takes effect, what is refused with
 * Weaviate's message, what survives a restart, concurrent updates), `POST /v1/objects/validate`, shard status
 * (`config.getShards` / `updateShards`, READONLY refusing writes durably), `GET /v1/objects` without a class, and
 * auto-schema adding nested fields to existing object properties over REST, batch and gRPC.
 */

let dataDir: string;
let server: TestServer;
let client: WeaviateClient;
const call = (method: string, path: string, body?: unknown) => weaviateCall(server, method, path, body);

/** Starts (or restarts) the server on the test's data dir, with gRPC, and connects the client. */
async function start(): Promise<void> {
  server = await startServer({}, { dataDir, grpcPort: 0 });
  client = await connectWeaviate(server);
}
async function stop(): Promise<void> {
  await client.close();
  await server.close();
}
async function restart(): Promise<void> {
  await stop();
  await start();
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "openbatch-routes-"));
  await start();
});
afterAll(async () => {
  await stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** A deterministic pseudo-random generator (mulberry32), so vectors and queries are the same every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("PUT /v1/schema/{class} through collection.config.update", () => {
  it("changes description, property descriptions, bm25 and ef; config.get() shows them, before and after a restart", async () => {
    await client.collections.create({
      name: "Updated",
      description: "before",
      properties: [
        { name: "title", dataType: "text" },
        { name: "owner", dataType: "object", nestedProperties: [{ name: "name", dataType: "text" }] },
      ],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    const col = client.collections.get("Updated");
    await col.config.update({
      description: "after",
      propertyDescriptions: { title: "The title" },
      invertedIndex: reconfigure.invertedIndex({ bm25b: 0.5, bm25k1: 1.5, cleanupIntervalSeconds: 30, stopwordsAdditions: ["foo"] }),
      replication: reconfigure.replication({ deletionStrategy: "DeleteOnConflict" }),
      vectorizers: reconfigure.vectors.update({ vectorIndexConfig: reconfigure.vectorIndex.hnsw({ ef: 77, dynamicEfMin: 50, flatSearchCutoff: 1000, vectorCacheMaxObjects: 5000 }) }),
    });
    const check = async () => {
      const cfg = await client.collections.get("Updated").config.get();
      expect(cfg.description).toBe("after");
      expect(cfg.properties.find((p) => p.name === "title")!.description).toBe("The title");
      expect(cfg.invertedIndex.bm25).toEqual({ b: 0.5, k1: 1.5 });
      expect(cfg.invertedIndex.cleanupIntervalSeconds).toBe(30);
      expect(cfg.invertedIndex.stopwords?.additions).toEqual(["foo"]);
      expect(cfg.replication.deletionStrategy).toBe("DeleteOnConflict");
      const index = cfg.vectorizers.default!.indexConfig as { ef: number; dynamicEfMin: number; flatSearchCutoff: number; vectorCacheMaxObjects: number; efConstruction: number };
      expect(index).toMatchObject({ ef: 77, dynamicEfMin: 50, flatSearchCutoff: 1000, vectorCacheMaxObjects: 5000, efConstruction: 128 });
    };
    await check();
    await restart();
    await check();
  });

  it("bm25 k1/b take effect at once and after a restart: with b = 0 a document's length no longer counts", async () => {
    const col = await client.collections.create({ name: "Scored", properties: [{ name: "text", dataType: "text" }], vectorizers: weaviate.configure.vectors.selfProvided() });
    await col.data.insertMany([{ properties: { text: "apple" } }, { properties: { text: "apple banana cherry date elder fig grape" } }]);
    const scores = async () => {
      const r = await client.collections.get("Scored").query.bm25("apple", { returnMetadata: ["score"] });
      return r.objects.map((o) => [o.properties.text, o.metadata!.score!] as const).sort((a, b) => String(a[0]).length - String(b[0]).length);
    };
    const before = await scores();
    expect(before[0]![1]).toBeGreaterThan(before[1]![1]); // b = 0.75: the short one ranks higher
    await col.config.update({ invertedIndex: reconfigure.invertedIndex({ bm25b: 0, bm25k1: 1.2 }) });
    const after = await scores();
    expect(after[0]![1]).toBeCloseTo(after[1]![1], 6);
    await col.config.update({ invertedIndex: reconfigure.invertedIndex({ bm25b: 1, bm25k1: 3 }) });
    const strong = await scores();
    expect(strong[0]![1] / strong[1]![1]).toBeGreaterThan(before[0]![1] / before[1]![1]);
    await restart();
    expect(await scores()).toEqual(strong);
  });

  it("ef changes the search: a greedy ef finds fewer true nearest neighbours than a wide one, and the wide one survives a restart", async () => {
    const dims = 16;
    const rnd = random(7);
    const vec = () => Array.from({ length: dims }, () => rnd() * 2 - 1);
    const col = await client.collections.create({
      name: "Recall",
      vectorizers: weaviate.configure.vectors.selfProvided({ vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ ef: 1, efConstruction: 4, maxConnections: 2, distanceMetric: "l2-squared" }) }),
    });
    const { queries, nearest } = await recallSet(col, vec);
    const recall = async () => {
      let hit = 0;
      for (const [i, q] of queries.entries()) {
        const r = await client.collections.get("Recall").query.nearVector(q, { limit: 1 });
        if (r.objects[0]?.uuid === nearest[i]) hit++;
      }
      return hit;
    };
    const greedy = await recall();
    await col.config.update({ vectorizers: reconfigure.vectors.update({ vectorIndexConfig: reconfigure.vectorIndex.hnsw({ ef: 1500 }) }) });
    const wide = await recall();
    // Measured: 1 of 40 with ef 1 on this poorly linked graph, 30 of 40 with ef 1500.
    expect(wide).toBeGreaterThan(greedy + 15);
    await restart();
    expect(await recall()).toBe(wide);
  });
});

describe("PUT /v1/schema/{class}: what Weaviate refuses, with its messages (raw HTTP and the client)", () => {
  /** The class JSON as GET returns it, changed by `edit`, sent back with PUT. */
  const putEdited = async (cls: string, edit: (c: any) => void) => {
    const { body } = await call("GET", `/v1/schema/${cls}`);
    edit(body);
    return call("PUT", `/v1/schema/${cls}`, body);
  };

  beforeAll(async () => {
    await client.collections.create({
      name: "Frozen",
      properties: [{ name: "title", dataType: "text" }],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    const legacy = await call("POST", "/v1/schema", { class: "Legacy", vectorizer: "none", vectorIndexConfig: { distance: "cosine" }, properties: [{ name: "n", dataType: ["int"] }] });
    expect(legacy.status).toBe(200);
  });

  it("accepts the class JSON sent back unchanged, and answers the class", async () => {
    const { body } = await call("GET", "/v1/schema/Frozen");
    const r = await call("PUT", "/v1/schema/Frozen", body);
    expect(r.status).toBe(200);
    expect(r.body).toEqual(body);
  });

  it.each([
    ["class name", (c: any) => (c.class = "Other"), 'class name is immutable: attempted change from "Frozen" to "Other"'],
    ["efConstruction", (c: any) => (c.vectorConfig.default.vectorIndexConfig.efConstruction = 64), 'vector "default": validate vector index config: efConstruction is immutable: attempted change from "128" to "64"'],
    ["maxConnections", (c: any) => (c.vectorConfig.default.vectorIndexConfig.maxConnections = 8), 'vector "default": validate vector index config: maxConnections is immutable: attempted change from "32" to "8"'],
    ["distance", (c: any) => (c.vectorConfig.default.vectorIndexConfig.distance = "dot"), 'vector "default": validate vector index config: distance is immutable: attempted change from "cosine" to "dot"'],
    ["the vector index type", (c: any) => (c.vectorConfig.default.vectorIndexType = "flat"), 'vector index type of vector "default" is immutable: attempted change from "hnsw" to "flat"'],
    ["the vectorizer", (c: any) => (c.vectorConfig.default.vectorizer = { "text2vec-openbatch": {} }), 'vectorizer of vector "default" is immutable: attempted change from "none" to "text2vec-openbatch"'],
    ["a named vector removed", (c: any) => (c.vectorConfig = { other: c.vectorConfig.default }), 'missing config for vector "default"'],
    ["a property's data type", (c: any) => (c.properties[0].dataType = ["int"]), 'property "title": property fields other than description cannot be updated through updating the class. Use the add property feature (e.g. "POST /v1/schema/{className}/properties") to add additional properties'],
    ["a property's tokenization", (c: any) => (c.properties[0].tokenization = "field"), 'property "title": property fields other than description'],
    ["a property added", (c: any) => c.properties.push({ name: "extra", dataType: ["text"] }), "property fields other than description cannot be updated through updating the class"],
    ["multi-tenancy enabled", (c: any) => (c.multiTenancyConfig.enabled = true), "enabling multi-tenancy for an existing class is not supported"],
    ["IndexPropertyLength", (c: any) => (c.invertedIndexConfig.indexPropertyLength = true), "inverted index config: IndexPropertyLength cannot be changed when updating a schema"],
    ["virtual shards", (c: any) => (c.shardingConfig.virtualPerPhysical = 64), 'validate sharding config: virtual shards per physical is immutable: attempted change from "128" to "64"'],
    ["a replication factor of 2", (c: any) => (c.replicationConfig.factor = 2), "replicationConfig.factor: OpenBatch is a single node, so the replication factor can only be 1 (got 2)"],
    ["an unknown field", (c: any) => (c.objectTtlConfig = { enabled: true }), "class \"Frozen\": field 'objectTtlConfig' is not supported by OpenBatch"],
  ])("refuses %s (422) and leaves the class as it was", async (_what, edit, message) => {
    const before = (await call("GET", "/v1/schema/Frozen")).body;
    const r = await putEdited("Frozen", edit);
    expect(r.status).toBe(422);
    expect(r.body.error[0].message).toContain(message);
    expect((await call("GET", "/v1/schema/Frozen")).body).toEqual(before);
  });

  it("refuses vectorizer and index type changes of a legacy (single-vector) class in Weaviate's words", async () => {
    let r = await putEdited("Legacy", (c) => (c.vectorizer = "text2vec-openbatch"));
    expect(r.body.error[0].message).toBe('vectorizer is immutable: attempted change from "none" to "text2vec-openbatch"');
    r = await putEdited("Legacy", (c) => (c.vectorIndexType = "flat"));
    expect(r.body.error[0].message).toBe('vector index type is immutable: attempted change from "hnsw" to "flat"');
    r = await putEdited("Legacy", (c) => (c.vectorIndexConfig.cleanupIntervalSeconds = 5));
    expect(r.body.error[0].message).toBe('validate vector index config: cleanupIntervalSeconds is immutable: attempted change from "300" to "5"');
    r = await putEdited("Legacy", (c) => (c.vectorIndexConfig.ef = 64));
    expect(r.status).toBe(200);
    expect(r.body.vectorIndexConfig.ef).toBe(64);
  });

  it("keeps the blocks a partial body leaves out; 404 without a body for an unknown class", async () => {
    const r = await call("PUT", "/v1/schema/Legacy", { class: "Legacy", description: "only this" });
    expect(r.status).toBe(200);
    expect(r.body.description).toBe("only this");
    expect(r.body.properties.map((p: any) => p.name)).toEqual(["n"]);
    expect(r.body.vectorIndexConfig.ef).toBe(64);
    const missing = await call("PUT", "/v1/schema/Nowhere", { class: "Nowhere" });
    expect(missing).toEqual({ status: 404, body: null });
  });

  it("surfaces the refusals through collection.config.update", async () => {
    const col = client.collections.get("Frozen");
    await expect(col.config.update({ replication: reconfigure.replication({ factor: 3 }) })).rejects.toThrow(/replication factor can only be 1/);
    await expect(col.config.update({ multiTenancy: reconfigure.multiTenancy({ autoTenantCreation: true }) })).rejects.toThrow(/automatic tenant creation and activation are not supported by OpenBatch/);
  });

  it("concurrent updates: the last one wins whole, never a mix of two", async () => {
    const { body } = await call("GET", "/v1/schema/Frozen");
    const bodies = Array.from({ length: 8 }, (_, i) => ({ ...structuredClone(body), description: `d${i}`, invertedIndexConfig: { ...body.invertedIndexConfig, bm25: { b: 0.75, k1: 1 + i / 10 } } }));
    const results = await Promise.all(bodies.map((b) => call("PUT", "/v1/schema/Frozen", b)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const final = (await call("GET", "/v1/schema/Frozen")).body;
    const i = Number(final.description.slice(1));
    expect(final.invertedIndexConfig.bm25.k1).toBeCloseTo(1 + i / 10, 9);
    expect(final).toEqual(results[i]!.body);
  });
});

describe("POST /v1/objects/validate", () => {
  beforeAll(async () => {
    await client.collections.create({
      name: "Checked",
      properties: [
        { name: "title", dataType: "text" },
        { name: "count", dataType: "int" },
      ],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
  });

  it("answers 200 with no body for a valid object and stores nothing", async () => {
    const r = await call("POST", "/v1/objects/validate", { class: "Checked", properties: { title: "ok", count: 3 }, vectors: { default: [1, 2] } });
    expect(r).toEqual({ status: 200, body: null });
    expect((await client.collections.get("Checked").aggregate.overAll()).totalCount).toBe(0);
  });

  it("answers 422 'invalid object: ' + the insert's message", async () => {
    const bad = { class: "Checked", properties: { title: "x", count: "many" } };
    const insert = await call("POST", "/v1/objects", bad);
    expect(insert.status).toBe(422);
    const r = await call("POST", "/v1/objects/validate", bad);
    expect(r.status).toBe(422);
    expect(r.body.error[0].message).toBe(`invalid object: ${insert.body.error[0].message}`);
    expect(r.body.error[0].message).toBe("invalid object: invalid integer property 'count' on class 'Checked': requires an integer, the given value is 'many'");
  });

  it("does not create what auto-schema would: unknown classes and properties are invalid", async () => {
    let r = await call("POST", "/v1/objects/validate", { class: "Checked", properties: { unknown: 1 } });
    expect(r.body.error[0].message).toBe("invalid object: no such prop with name 'unknown' found in class 'Checked' in the schema. Check your schema files for which properties in this class are available");
    r = await call("POST", "/v1/objects/validate", { class: "NotThere", properties: {} });
    expect(r.body.error[0].message).toBe("invalid object: class 'NotThere' not present in schema");
    r = await call("POST", "/v1/objects/validate", { class: "Checked", id: "nope" });
    expect(r.body.error[0].message).toBe('invalid object: id in body must be of type uuid: "nope"');
    r = await call("POST", "/v1/objects/validate", { class: "Checked", vectors: { other: [1] } });
    expect(r.body.error[0].message).toContain('vector "other" is not a vector of this class');
    expect((await call("GET", "/v1/schema/NotThere")).status).toBe(404);
    expect((await call("GET", "/v1/schema/Checked")).body.properties.map((p: any) => p.name)).toEqual(["title", "count"]);
  });
});

describe("shard status: config.getShards / updateShards, READONLY refusing writes durably", () => {
  it("lists one READY shard; READONLY refuses inserts, batches, deletes and references, until READY again, across a restart", async () => {
    const col = await client.collections.create({
      name: "Sharded",
      properties: [{ name: "title", dataType: "text" }],
      references: [{ name: "related", targetCollection: "Sharded" }],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    const id = await col.data.insert({ properties: { title: "kept" }, vectors: [1, 0] });
    expect(await col.config.getShards()).toEqual([{ name: "shard0", status: "READY", vectorQueueSize: 0 }]);
    expect(await col.config.updateShards("READONLY")).toEqual([{ name: "shard0", status: "READONLY", vectorQueueSize: 0 }]);
    const refused = async () => {
      const c = client.collections.get("Sharded");
      await expect(c.data.insert({ properties: { title: "new" }, vectors: [0, 1] })).rejects.toThrow(/store is read-only/);
      const many = await c.data.insertMany([{ properties: { title: "a" }, vectors: [0, 1] }]);
      expect(Object.values(many.errors)[0]!.message).toBe("shard shard0 of class Sharded: store is read-only");
      await expect(c.data.deleteById(id)).rejects.toThrow(/store is read-only/);
      const del = await call("DELETE", `/v1/objects/Sharded/${id}`);
      expect(del.status).toBe(422);
      await expect(c.data.referenceAdd({ fromUuid: id, fromProperty: "related", to: id })).rejects.toThrow(/store is read-only/);
      const refs = await call("POST", "/v1/batch/references", [{ from: `weaviate://localhost/Sharded/${id}/related`, to: `weaviate://localhost/Sharded/${id}` }]);
      expect(refs.body[0].result.errors.error[0].message).toBe("shard shard0 of class Sharded: store is read-only");
      // Reads go on.
      expect((await c.query.fetchObjectById(id))?.properties.title).toBe("kept");
    };
    await refused();
    await restart();
    expect(await client.collections.get("Sharded").config.getShards()).toEqual([{ name: "shard0", status: "READONLY", vectorQueueSize: 0 }]);
    await refused();
    await client.collections.get("Sharded").config.updateShards("READY");
    await client.collections.get("Sharded").data.insert({ properties: { title: "new" }, vectors: [0, 1] });
    expect((await client.collections.get("Sharded").aggregate.overAll()).totalCount).toBe(2);
  });

  it("a multi-tenant class has one shard per active tenant; READONLY on one tenant leaves the others writable", async () => {
    const col = await client.collections.create({ name: "Tenanted", multiTenancy: weaviate.configure.multiTenancy({ enabled: true }), properties: [{ name: "title", dataType: "text" }], vectorizers: weaviate.configure.vectors.selfProvided() });
    await col.tenants.create([{ name: "alpha" }, { name: "beta" }, { name: "gamma", activityStatus: "INACTIVE" }]);
    const names = (await col.config.getShards()).map((s) => s.name).sort();
    expect(names).toEqual(["alpha", "beta"]);
    expect(await col.withTenant("beta").config.getShards()).toEqual([{ name: "beta", status: "READY", vectorQueueSize: 0 }]);
    await col.config.updateShards("READONLY", "alpha");
    await expect(col.withTenant("alpha").data.insert({ properties: { title: "a" }, vectors: [1] })).rejects.toThrow(/shard alpha of class Tenanted: store is read-only/);
    await col.withTenant("beta").data.insert({ properties: { title: "b" }, vectors: [1] });
    expect((await call("GET", "/v1/schema/Tenanted/shards?tenant=alpha")).body).toEqual([{ name: "alpha", status: "READONLY", vectorQueueSize: 0 }]);
  });

  it("answers bad statuses, unknown shards and tenants on plain classes in Weaviate's shape", async () => {
    let r = await call("PUT", "/v1/schema/Sharded/shards/shard0", { status: "BROKEN" });
    expect(r).toEqual({ status: 422, body: { error: [{ message: "invalid storage status" }] } });
    r = await call("PUT", "/v1/schema/Sharded/shards/shard0", { status: "INDEXING" });
    expect(r.body.error[0].message).toBe("shard status INDEXING cannot be set in OpenBatch: give READY or READONLY");
    r = await call("PUT", "/v1/schema/Sharded/shards/other", { status: "READY" });
    expect(r).toEqual({ status: 404, body: { error: [{ message: "shard other does not exist locally" }] } });
    r = await call("GET", "/v1/schema/Sharded/shards?tenant=x");
    expect(r.body.error[0].message).toBe("class Sharded has multi-tenancy disabled, but request was with tenant");
    r = await call("GET", "/v1/schema/Nowhere/shards");
    expect(r).toEqual({ status: 404, body: { error: [{ message: "class 'Nowhere' not present in schema" }] } });
    r = await call("PUT", "/v1/schema/Tenanted/shards/gamma", { status: "READONLY" });
    expect(r.body.error[0].message).toBe('tenant not active: "gamma"');
  });
});

describe("GET /v1/objects without a class", () => {
  const ids: Record<string, string[]> = { ListA: [], ListB: [] };
  beforeAll(async () => {
    for (const name of ["ListA", "ListB"]) {
      const col = await client.collections.create({ name, properties: [{ name: "n", dataType: "int" }], vectorizers: weaviate.configure.vectors.selfProvided() });
      for (const n of [3, 1, 2]) ids[name]!.push(await col.data.insert({ properties: { n }, vectors: [n, 1] }));
    }
  });

  /** The listing's objects of the two test classes (other tests' classes come first or after). */
  const listed = async (query: string) => {
    const r = await call("GET", `/v1/objects?${query}`);
    expect(r.status).toBe(200);
    expect(r.body.totalResults).toBe(r.body.objects.length);
    return r.body.objects as { class: string; id: string; properties: { n: number }; vector?: number[]; vectors?: Record<string, number[]> }[];
  };

  it("lists every readable class, class by class in creation order, each in insertion order; limit and offset run across them", async () => {
    const all = (await listed("limit=10000")).filter((o) => o.class === "ListA" || o.class === "ListB");
    expect(all.map((o) => o.id)).toEqual([...ids.ListA!, ...ids.ListB!]);
    const everything = await listed("limit=10000");
    const start = everything.findIndex((o) => o.id === ids.ListA![1]);
    const page = await listed(`limit=3&offset=${start}`);
    expect(page.map((o) => o.id)).toEqual([ids.ListA![1], ids.ListA![2], ids.ListB![0]]);
    const withVectors = await listed(`limit=1&offset=${start}&include=vector`);
    expect(withVectors[0]!.vectors).toEqual({ default: [1, 1] });
  });

  it("with a class: offset, sort/order, the cursor; refuses what Weaviate refuses and what OpenBatch does not serve", async () => {
    expect((await listed("class=ListA&sort=n&order=desc")).map((o) => o.properties.n)).toEqual([3, 2, 1]);
    expect((await listed("class=ListA&offset=1&limit=1")).map((o) => o.id)).toEqual([ids.ListA![1]]);
    expect((await listed(`class=ListA&after=${ids.ListA![0]}`)).map((o) => o.id)).toEqual(ids.ListA!.slice(1));
    const refused: [string, string][] = [
      [`after=${ids.ListA![0]}`, "list objects: after parameter not allowed, cursor must be specific to one class, set class query param"],
      [`class=ListA&after=${ids.ListA![0]}&offset=1`, "offset cannot be set with after and limit parameters"],
      [`class=ListA&after=${ids.ListA![0]}&sort=n`, "sort cannot be set with after and limit parameters"],
      ["sort=n", "sort without class is not supported by OpenBatch: give class=<Class> to sort a listing"],
      ["include=classification", "include=classification is not supported by OpenBatch (it serves include=vector)"],
      ["include=bogus", "unrecognized property 'bogus' in ?include list"],
      ["limit=9000&offset=2000", "query maximum results exceeded"],
      ["offset=-1", "offset must be an integer >= 0"],
    ];
    for (const [query, message] of refused) expect(await call("GET", `/v1/objects?${query}`), query).toEqual({ status: 422, body: { error: [{ message }] } });
    expect((await call("GET", `/v1/objects/ListA/${ids.ListA![0]}?include=bogus`)).status).toBe(422);
  });
});

describe("auto-schema adds nested fields to existing object properties", () => {
  const nestedOf = async (cls: string, prop: string) => {
    const def = (await call("GET", `/v1/schema/${cls}`)).body;
    return def.properties.find((p: any) => p.name === prop).nestedProperties as { name: string; dataType: string[]; nestedProperties?: unknown[] }[];
  };

  it("over REST, single objects and batches: new fields at any depth, typed as at creation, visible in the class JSON", async () => {
    await client.collections.create({
      name: "Nested",
      properties: [
        { name: "owner", dataType: "object", nestedProperties: [{ name: "name", dataType: "text" }] },
        { name: "tags", dataType: "object[]", nestedProperties: [{ name: "label", dataType: "text" }] },
      ],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    const one = await call("POST", "/v1/objects", { class: "Nested", properties: { owner: { name: "Ann", age: 41, address: { city: "Oslo" } } } });
    expect(one.status).toBe(200);
    const owner = await nestedOf("Nested", "owner");
    expect(owner.map((n) => [n.name, n.dataType[0]])).toEqual([["name", "text"], ["age", "number"], ["address", "object"]]);
    expect(owner[2]!.nestedProperties).toEqual([expect.objectContaining({ name: "city", dataType: ["text"] })]);
    const batch = await call("POST", "/v1/batch/objects", {
      objects: [
        { class: "Nested", properties: { tags: [{ label: "a", score: 1.5 }], owner: { address: { zip: "0150" } } } },
        { class: "Nested", properties: { tags: [{ label: "b", seen: true, when: "2024-01-02T03:04:05Z" }] } },
      ],
    });
    expect(batch.body.map((r: any) => r.result.errors ?? null)).toEqual([null, null]);
    expect((await nestedOf("Nested", "tags")).map((n) => [n.name, n.dataType[0]])).toEqual([["label", "text"], ["score", "number"], ["seen", "boolean"], ["when", "date"]]);
    expect((await nestedOf("Nested", "owner"))[2]!.nestedProperties!.map((n: any) => n.name)).toEqual(["city", "zip"]);
    const stored = await call("GET", `/v1/objects/Nested/${one.body.id}`);
    expect(stored.body.properties.owner).toEqual({ name: "Ann", age: 41, address: { city: "Oslo" } });
  });

  it("over gRPC BatchObjects (the client's data.insert / insertMany), and survives a restart", async () => {
    const col = client.collections.get("Nested");
    await col.data.insert({ properties: { owner: { name: "Bo", email: "bo@example.com" } } });
    const many = await col.data.insertMany([{ properties: { tags: [{ label: "c", rank: 2 }] } }]);
    expect(many.hasErrors).toBe(false);
    await restart();
    const cfg = await client.collections.get("Nested").config.get();
    const owner = cfg.properties.find((p) => p.name === "owner")!;
    expect(owner.nestedProperties!.map((n) => n.name)).toEqual(["name", "age", "address", "email"]);
    expect((await nestedOf("Nested", "tags")).map((n) => n.name)).toContain("rank");
  });

  it("through a tenant of a multi-tenant class, into the class; a type conflict is still refused with Weaviate's message", async () => {
    const col = await client.collections.create({
      name: "NestedMT",
      multiTenancy: weaviate.configure.multiTenancy({ enabled: true }),
      properties: [{ name: "meta", dataType: "object", nestedProperties: [{ name: "a", dataType: "int" }] }],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    await col.tenants.create([{ name: "t1" }]);
    await col.withTenant("t1").data.insert({ properties: { meta: { a: 1, b: "x" } } });
    expect((await nestedOf("NestedMT", "meta")).map((n) => n.name)).toEqual(["a", "b"]);
    const bad = await call("POST", "/v1/objects", { class: "NestedMT", tenant: "t1", properties: { meta: { a: "not a number" } } });
    expect(bad.body.error[0].message).toBe("invalid object property 'meta' on class 'NestedMT': nested property 'a': requires an integer, the given value is 'not a number'");
  });
});

describe.skipIf(!(await postgresReachable()))("on PostgreSQL: two API servers on one database", () => {
  let pair: ServerPair;
  beforeAll(async () => {
    pair = await startServerPair();
  });
  afterAll(async () => {
    await pair?.close();
  });

  it("a class update, a READONLY shard and new nested fields made through one server hold on the other", async () => {
    const col = await pair.ca.collections.create({
      name: "Shared",
      properties: [
        { name: "text", dataType: "text" },
        { name: "meta", dataType: "object", nestedProperties: [{ name: "a", dataType: "text" }] },
      ],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    await col.data.insertMany([{ properties: { text: "apple" } }, { properties: { text: "apple banana cherry date elder fig grape" } }]);
    await col.config.update({ description: "shared", invertedIndex: reconfigure.invertedIndex({ bm25b: 0, bm25k1: 1.2 }) });
    const onB = pair.cb.collections.get("Shared");
    expect((await onB.config.get()).description).toBe("shared");
    const scores = (await onB.query.bm25("apple", { returnMetadata: ["score"] })).objects.map((o) => o.metadata!.score!);
    expect(scores[0]).toBeCloseTo(scores[1]!, 6);

    await pair.ca.collections.get("Shared").data.insert({ properties: { meta: { a: "x", b: 2 } } });
    expect((await onB.config.get()).properties.find((p) => p.name === "meta")!.nestedProperties!.map((n) => n.name)).toEqual(["a", "b"]);

    await col.config.updateShards("READONLY");
    expect(await onB.config.getShards()).toEqual([{ name: "shard0", status: "READONLY", vectorQueueSize: 0 }]);
    await expect(onB.data.insert({ properties: { text: "new" } })).rejects.toThrow(/store is read-only/);
    await col.config.updateShards("READY");
    await onB.data.insert({ properties: { text: "new" } });
  });

  it("an ef changed through one server is the ef the other server's open index searches with", async () => {
    const rnd = random(11);
    const vec = () => Array.from({ length: 16 }, () => rnd() * 2 - 1);
    const col = await pair.ca.collections.create({
      name: "SharedRecall",
      vectorizers: weaviate.configure.vectors.selfProvided({ vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ ef: 1, efConstruction: 4, maxConnections: 2, distanceMetric: "l2-squared" }) }),
    });
    const { queries, nearest } = await recallSet(col, vec);
    const recallOnB = async () => {
      let hit = 0;
      for (const [i, q] of queries.entries()) if ((await pair.cb.collections.get("SharedRecall").query.nearVector(q, { limit: 1 })).objects[0]?.uuid === nearest[i]) hit++;
      return hit;
    };
    const greedy = await recallOnB(); // B builds its index of the class with ef 1
    await col.config.update({ vectorizers: reconfigure.vectors.update({ vectorIndexConfig: reconfigure.vectorIndex.hnsw({ ef: 1500 }) }) });
    // B reads the new definition from the change sequence before its next search (before: only after a restart).
    expect(await recallOnB()).toBeGreaterThan(greedy + 15);
  });
});

/** Squared l2 distance. */
const dist = (a: number[], b: number[]) => a.reduce((s, x, j) => s + (x - b[j]!) ** 2, 0);

/**
 * Inserts 1,500 vectors from `vec` into `col` and draws 40 queries: each query's exact nearest object (l2-squared),
 * for recall@1 checks of the collection's HNSW index.
 */
async function recallSet(col: Collection<undefined, string, any>, vec: () => number[]) {
  const points = Array.from({ length: 1500 }, () => vec());
  const ids: string[] = [];
  for (let i = 0; i < points.length; i += 500) {
    const r = await col.data.insertMany(points.slice(i, i + 500).map((v) => ({ properties: {}, vectors: v })));
    expect(r.hasErrors).toBe(false);
    for (let k = 0; k < 500; k++) ids.push(r.uuids[k]!);
  }
  const queries = Array.from({ length: 40 }, () => vec());
  const nearest = queries.map((q) => ids[points.reduce((best, p, i) => (dist(p, q) < dist(points[best]!, q) ? i : best), 0)]);
  return { queries, nearest };
}

describe("with API keys on: the new routes are checked like the others", () => {
  let keyed: TestServer;
  const as = async (key: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(keyed.url.replace(/\/v1$/, "") + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  beforeAll(async () => {
    keyed = await startServer({ apiKeys: ["key-owner", "key-other"] });
    expect((await as("key-owner", "POST", "/v1/schema", { class: "Owned", properties: [{ name: "t", dataType: ["text"] }] })).status).toBe(200);
    expect((await as("key-owner", "POST", "/v1/objects", { class: "Owned", properties: { t: "x" } })).status).toBe(200);
  });
  afterAll(async () => {
    await keyed?.close();
  });

  it("another key may not update the class or its shards, validate against it, or see its objects in the listing", async () => {
    const def = (await as("key-owner", "GET", "/v1/schema/Owned")).body;
    expect((await as("key-other", "PUT", "/v1/schema/Owned", { ...def, description: "mine now" })).status).toBe(403);
    expect((await as("key-other", "PUT", "/v1/schema/Owned/shards/shard0", { status: "READONLY" })).status).toBe(403);
    expect((await as("key-other", "GET", "/v1/schema/Owned/shards")).status).toBe(403);
    expect((await as("key-other", "POST", "/v1/objects/validate", { class: "Owned", properties: { t: "y" } })).status).toBe(403);
    expect((await as("key-other", "GET", "/v1/objects")).body.objects).toEqual([]);
    expect((await as("key-owner", "GET", "/v1/objects")).body.objects.map((o: any) => o.class)).toEqual(["Owned"]);
    expect((await as("key-owner", "PUT", "/v1/schema/Owned", { ...def, description: "still mine" })).body.description).toBe("still mine");
  });
});
