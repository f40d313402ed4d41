import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";

/*
 * Code written for Weaviate runs unchanged: the official weaviate-client (v3) with its default options, named vectors
 * (the client always sends `vectorConfig`), vectorizer modules by their Weaviate names (text2vec-ollama against an
 * Ollama-compatible fake), class JSON as Weaviate returns it, and loud answers for what OpenBatch does not serve.
 */

const call = weaviateCall;
const connect = connectWeaviate;

/** Topic words of the fake embedder: a text's vector counts the words of each topic (plus one, so none is zero). */
const TOPICS = [
  ["biology", "cell", "cells", "gene", "genes", "dna", "organism", "animal", "animals", "plant", "plants", "species", "evolution"],
  ["money", "bank", "stock", "market", "price", "dollar", "trade"],
  ["football", "goal", "team", "match", "ball", "player", "championship"],
  ["planet", "star", "moon", "orbit", "space", "sun"],
];
const embedText = (text: string) => {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  return TOPICS.map((t) => words.filter((w) => t.includes(w)).length + 0.01);
};

/** An Ollama-compatible `/api/embed` of our own: `{model, input}` → `{model, embeddings}`; it records the calls. */
async function fakeOllama(): Promise<LocalHttpServer & { calls: { model: string; input: string[] }[] }> {
  const calls: { model: string; input: string[] }[] = [];
  const srv = await listenLocal((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/api/embed") {
        res.writeHead(404).end();
        return;
      }
      const { model, input } = JSON.parse(body) as { model: string; input: string | string[] };
      const texts = typeof input === "string" ? [input] : input;
      calls.push({ model, input: texts });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model, embeddings: texts.map(embedText) }));
    });
  });
  return Object.assign(srv, { calls });
}

const JEOPARDY = [
  { Category: "SCIENCE", Question: "This organ removes excess glucose from the blood & stores it as glycogen", Answer: "Liver" },
  { Category: "ANIMALS", Question: "It's the only living mammal in the order Proboscidea", Answer: "Elephant" },
  { Category: "ANIMALS", Question: "The gavial looks very much like a crocodile except for this bodily feature", Answer: "the nose or snout" },
  { Category: "ANIMALS", Question: "Weighing around a ton, the eland is the largest species of this animal in Africa", Answer: "Antelope" },
  { Category: "ANIMALS", Question: "Heaviest of all poisonous snakes is this North American rattlesnake", Answer: "the diamondback rattler" },
  { Category: "SCIENCE", Question: "2000 news: the Gunnison sage grouse isn't just another northern sage grouse, but a new one of this classification", Answer: "species" },
  { Category: "SCIENCE", Question: "A metal that is ductile can be pulled into this while cold & under pressure", Answer: "wire" },
  { Category: "SCIENCE", Question: "In 1953 Watson & Crick built a model of the molecular structure of this, the gene-carrying substance", Answer: "DNA" },
  { Category: "SCIENCE", Question: "Changes in the tropospheric layer of this are what gives us weather", Answer: "the atmosphere" },
  { Category: "SCIENCE", Question: "In 70-degree air, a plane traveling at about 1,130 feet per second breaks it", Answer: "Sound barrier" },
];

describe("Weaviate drop-in: the official weaviate-client with its defaults", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let ollama: Awaited<ReturnType<typeof fakeOllama>>;
  beforeAll(async () => {
    ollama = await fakeOllama();
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    client = await connect(server);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await ollama?.stop();
  });

  it("runs seed 004's flow: create with text2VecOllama, batch import, nearText 'biology'; then config.get, listAll, export, exists, delete", async () => {
    // Seed 004, translated to TypeScript as its users write it.
    const questions = await client.collections.create({
      name: "Question",
      vectorizers: weaviate.configure.vectors.text2VecOllama({ apiEndpoint: ollama.origin, model: "nomic-embed-text" }),
    });
    const inserted = await questions.data.insertMany(JEOPARDY.map((d) => ({ answer: d.Answer, question: d.Question, category: d.Category })));
    expect(inserted.hasErrors).toBe(false);
    expect(ollama.calls.length).toBeGreaterThan(0);
    expect(ollama.calls.every((c) => c.model === "nomic-embed-text")).toBe(true);
    // Weaviate's text: the class name, then the text properties in name order.
    expect(ollama.calls[0]!.input[0]).toMatch(/^question /);

    const response = await questions.query.nearText("biology", { limit: 2 });
    expect(response.objects).toHaveLength(2);
    // The fake embeds by topic words: both hits hold a biology word (in any text property).
    for (const o of response.objects) expect(embedText(Object.values(o.properties).join(" "))[0]).toBeGreaterThan(1);
    expect(ollama.calls.at(-1)!.input).toEqual(["biology"]);

    // The class JSON holds every field the client reads.
    const config = await questions.config.get();
    expect(config.name).toBe("Question");
    expect(config.vectorizers.default!.vectorizer.name).toBe("text2vec-ollama");
    expect(config.vectorizers.default!.vectorizer.config).toMatchObject({ apiEndpoint: ollama.origin, model: "nomic-embed-text" });
    expect(config.vectorizers.default!.indexType).toBe("hnsw");
    expect(config.vectorizers.default!.indexConfig).toMatchObject({ distance: "cosine", efConstruction: 128, maxConnections: 32, cleanupIntervalSeconds: 300, flatSearchCutoff: 40000, skip: false });
    expect(config.properties.map((p) => p.name).sort()).toEqual(["answer", "category", "question"]);
    expect(config.invertedIndex.bm25).toEqual({ b: 0.75, k1: 1.2 });
    expect(config.multiTenancy.enabled).toBe(false);
    expect(config.replication.factor).toBe(1);
    expect(config.sharding.actualCount).toBe(1);

    const all = await client.collections.listAll();
    expect(all.map((c) => c.name)).toContain("Question");
    const exported = await client.collections.export("Question");
    expect(exported.vectorizers.default!.vectorizer.name).toBe("text2vec-ollama");
    expect(await client.collections.exists("Question")).toBe(true);
    await client.collections.delete("Question");
    expect(await client.collections.exists("Question")).toBe(false);
  });

  it("named vectors: two per collection (self-provided, hnsw and flat), each searched by targetVector and returned by name", async () => {
    const docs = await client.collections.create({
      name: "Doc",
      properties: [{ name: "title", dataType: "text" }],
      vectorizers: [
        weaviate.configure.vectors.selfProvided({ name: "title" }),
        weaviate.configure.vectors.selfProvided({ name: "body", vectorIndexConfig: weaviate.configure.vectorIndex.flat({ distanceMetric: "dot" }) }),
      ],
    });
    const items = Array.from({ length: 6 }, (_, i) => ({
      id: `00000000-0000-4000-8000-00000000000${i}`,
      properties: { title: `doc ${i}` },
      vectors: { title: [1, i, 0], body: [i % 2, 1 - (i % 2), i / 10, 1] },
    }));
    const inserted = await docs.data.insertMany(items);
    expect(inserted.hasErrors).toBe(false);

    // title: cosine over 3 dims — [1, 5, 0] is nearest [1, 5, 0]; body: dot over 4 dims, a different order.
    const byTitle = await docs.query.nearVector([1, 5, 0], { targetVector: "title", limit: 1, returnMetadata: ["distance"] });
    expect(byTitle.objects[0]!.properties.title).toBe("doc 5");
    expect(byTitle.objects[0]!.metadata!.distance).toBeCloseTo(0, 5);
    const byBody = await docs.query.nearVector([0, 1, 1, 0], { targetVector: "body", limit: 2 });
    expect(byBody.objects.map((o) => o.properties.title)).toEqual(["doc 4", "doc 2"]);

    const one = await docs.query.fetchObjectById(items[3]!.id, { includeVector: true });
    expect(one!.vectors.title).toEqual([1, 3, 0]);
    expect(one!.vectors.body).toEqual([1, 0, Math.fround(0.3), 1]);

    // Without a target on a class with two vectors: Weaviate's loud error.
    await expect(docs.query.nearVector([1, 1, 0], { limit: 1 })).rejects.toThrow(/multiple vectors/);

    // REST: include=vector returns them by name.
    const rest = await call(server, "GET", `/v1/objects/Doc/${items[2]!.id}?include=vector`);
    expect(rest.body.vectors.title).toEqual([1, 2, 0]);
    expect(rest.body.vector).toBeUndefined();

    const config = await docs.config.get();
    expect(Object.keys(config.vectorizers).sort()).toEqual(["body", "title"]);
    expect(config.vectorizers.body!.indexType).toBe("flat");
    expect(config.vectorizers.body!.indexConfig).toMatchObject({ distance: "dot", vectorCacheMaxObjects: 1000000000000 });
  });

  it("legacy vector and vectors.default are one vector: both may be sent when equal; a difference is an error", async () => {
    await client.collections.create({ name: "Legacy", vectorizers: weaviate.configure.vectors.selfProvided() });
    const r = await call(server, "POST", "/v1/batch/objects", {
      objects: [
        { class: "Legacy", id: "00000000-0000-4000-8000-000000000001", vector: [1, 2], vectors: { default: [1, 2] } },
        { class: "Legacy", id: "00000000-0000-4000-8000-000000000002", vector: [1, 2], vectors: { default: [2, 1] } },
        { class: "Legacy", id: "00000000-0000-4000-8000-000000000003", vectors: { other: [2, 1] } },
      ],
    });
    expect(r.body.map((o: any) => o.result.status)).toEqual(["SUCCESS", "FAILED", "FAILED"]);
    expect(r.body[1].result.errors.error[0].message).toMatch(/vector and vectors.default differ/);
    expect(r.body[2].result.errors.error[0].message).toMatch(/"other" is not a vector of this class/);
    const legacy = client.collections.use("Legacy");
    const found = await legacy.query.nearVector([1, 2], { limit: 1, includeVector: true });
    expect(found.objects[0]!.vectors.default).toEqual([1, 2]);
  });

  it("a Python-v4-shaped vectorConfig body (Configure.Vectors.text2vec_ollama) is served; the class JSON has every index field", async () => {
    // What `client.collections.create(name="PyQuestion", vector_config=Configure.Vectors.text2vec_ollama(api_endpoint=…,
    // model="nomic-embed-text"))` sends (from the Python client's documentation of vector_config).
    const created = await call(server, "POST", "/v1/schema", {
      class: "PyQuestion",
      properties: [],
      vectorConfig: {
        default: {
          vectorizer: { "text2vec-ollama": { apiEndpoint: ollama.origin, model: "nomic-embed-text", vectorizeClassName: true } },
          vectorIndexType: "hnsw",
          vectorIndexConfig: {},
        },
      },
    });
    expect(created.status).toBe(200);
    const got = await call(server, "GET", "/v1/schema/PyQuestion");
    const vic = got.body.vectorConfig.default.vectorIndexConfig;
    for (const field of ["cleanupIntervalSeconds", "distance", "dynamicEfMin", "dynamicEfMax", "dynamicEfFactor", "ef", "efConstruction", "flatSearchCutoff", "maxConnections", "skip", "vectorCacheMaxObjects"]) {
      expect(vic, field).toHaveProperty(field);
    }
    expect(vic.pq).toMatchObject({ enabled: false, encoder: { type: "kmeans", distribution: "log-normal" } });
    expect(vic.bq).toEqual({ enabled: false });
    expect(vic.sq).toMatchObject({ enabled: false });
    expect(got.body.vectorizer).toBeUndefined();
    expect(got.body.invertedIndexConfig).toMatchObject({ bm25: { b: 0.75, k1: 1.2 }, stopwords: { preset: "en" } });
    const imported = await call(server, "POST", "/v1/batch/objects", { objects: [{ class: "PyQuestion", properties: { question: "cells and genes" } }] });
    expect(imported.body[0].result.status).toBe("SUCCESS");
  });

  it("/v1/meta lists the vectorizer modules served", async () => {
    const meta = await call(server, "GET", "/v1/meta");
    expect(Object.keys(meta.body.modules)).toEqual(expect.arrayContaining(["text2vec-openbatch", "text2vec-ollama", "text2vec-openai", "text2vec-transformers", "text2vec-huggingface"]));
  });

  it("answers what it does not serve loudly: compression, multi-tenancy, replication, unknown fields; nearImage over gRPC", async () => {
    const pq = await call(server, "POST", "/v1/schema", { class: "Pq", vectorIndexConfig: { pq: { enabled: true } } });
    expect(pq.status).toBe(422);
    expect(pq.body.error[0].message).toMatch(/vector compression \(PQ\) is not supported/);
    // Multi-tenancy is served (test/weaviate-tenants.test.ts); creating tenants implicitly on import is not.
    const mt = await call(server, "POST", "/v1/schema", { class: "Mt", multiTenancyConfig: { enabled: true, autoTenantCreation: true } });
    expect(mt.status).toBe(422);
    expect(mt.body.error[0].message).toMatch(/autoTenantCreation: automatic tenant creation and activation are not supported/);
    const rep = await call(server, "POST", "/v1/schema", { class: "Rep", replicationConfig: { factor: 3 } });
    expect(rep.body.error[0].message).toMatch(/replication factor can only be 1/);
    const unknown = await call(server, "POST", "/v1/schema", { class: "Unk", vectorIndexConfig: { efConstructionn: 10 } });
    expect(unknown.body.error[0].message).toMatch(/unknown field 'efConstructionn'/);
    const gen = await call(server, "POST", "/v1/schema", { class: "Gen", moduleConfig: { "generative-openai": {} } });
    expect(gen.body.error[0].message).toMatch(/generative-openai" is not served/);

    await client.collections.create({ name: "Quiet", properties: [{ name: "t", dataType: "text" }], vectorizers: weaviate.configure.vectors.selfProvided() });
    const quiet = client.collections.use("Quiet");
    await quiet.data.insert({ properties: { t: "x" }, vectors: [1, 0] });
    // groupBy is served (test/weaviate-search.test.ts); a property it cannot group by is refused.
    const grouped = await quiet.query.nearVector([1, 0], { groupBy: { property: "t", numberOfGroups: 1, objectsPerGroup: 1 } });
    expect(Object.keys(grouped.groups)).toEqual(["x"]);
    await expect(quiet.query.nearVector([1, 0], { groupBy: { property: "nope", numberOfGroups: 1, objectsPerGroup: 1 } })).rejects.toThrow(/no such prop with name 'nope'/);
    await expect(quiet.query.nearImage(Buffer.from("not really an image"))).rejects.toThrow(/nearImage is not supported by OpenBatch/);
  });
});

describe("Weaviate drop-in: a server config maps a module's model to any provider", () => {
  let server: TestServer;
  let client: WeaviateClient;
  beforeAll(async () => {
    server = await startServer({ collections: { vectorizerModels: { "text2vec-ollama": { "nomic-embed-text": "local/glove-100d" } } } }, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    client = await connect(server);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("seed 004's text2vec-ollama collection runs with no Ollama: nomic-embed-text is embedded by local/glove-100d", async () => {
    const questions = await client.collections.create({
      name: "Question",
      // Nothing listens here: the mapping must be used.
      vectorizers: weaviate.configure.vectors.text2VecOllama({ apiEndpoint: "http://127.0.0.1:9", model: "nomic-embed-text" }),
    });
    const inserted = await questions.data.insertMany(JEOPARDY.map((d) => ({ answer: d.Answer, question: d.Question, category: d.Category })));
    expect(inserted.hasErrors).toBe(false);
    const r = await questions.query.nearText("biology", { limit: 2 });
    expect(r.objects).toHaveLength(2);
  });

  it("an unmapped model with an endpoint that does not answer fails the objects with the reason", async () => {
    const other = await client.collections.create({ name: "Other", vectorizers: weaviate.configure.vectors.text2VecOllama({ apiEndpoint: "http://127.0.0.1:9", model: "mxbai-embed-large" }) });
    const inserted = await other.data.insertMany([{ text: "hello" }]);
    expect(inserted.hasErrors).toBe(true);
    expect(inserted.errors[0]!.message).toMatch(/text2vec-ollama/);
  }, 30_000);

  it("refuses unknown keys in collections.vectorizerModels", async () => {
    const { parseConfig } = await import("../src/core/config.js");
    expect(() => parseConfig({ collections: { vectorizerModels: { "text2vec-nope": {} } } })).toThrow();
  });
});

describe("Weaviate drop-in: single-object routes through the client and raw HTTP", () => {
  let server: TestServer;
  let client: WeaviateClient;
  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await connect(server);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("update (PATCH) merges, replace (PUT) replaces; references are added, replaced and deleted on one object", async () => {
    await client.collections.create({ name: "Author", properties: [{ name: "name", dataType: "text" }], vectorizers: weaviate.configure.vectors.selfProvided() });
    const books = await client.collections.create({
      name: "Book",
      properties: [
        { name: "title", dataType: "text" },
        { name: "year", dataType: "int" },
      ],
      references: [{ name: "writtenBy", targetCollection: "Author" }],
      vectorizers: weaviate.configure.vectors.selfProvided(),
    });
    const authors = client.collections.use("Author");
    const [a1, a2] = ["00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"];
    await authors.data.insertMany([
      { id: a1, properties: { name: "Ann" }, vectors: [1, 0] },
      { id: a2, properties: { name: "Bob" }, vectors: [0, 1] },
    ]);
    const id = await books.data.insert({ properties: { title: "First", year: 2001 }, vectors: [1, 1] });

    await books.data.update({ id, properties: { year: 2002 } });
    let got = await call(server, "GET", `/v1/objects/Book/${id}?include=vector`);
    expect(got.body.properties).toMatchObject({ title: "First", year: 2002 });
    // The client made a named vector `default`: REST shows it in `vectors`.
    expect(got.body.vectors.default).toEqual([1, 1]);
    await books.data.replace({ id, properties: { title: "Second" }, vectors: [2, 1] });
    got = await call(server, "GET", `/v1/objects/Book/${id}`);
    expect(got.body.properties).toEqual({ title: "Second" });

    await books.data.referenceAdd({ fromUuid: id, fromProperty: "writtenBy", to: a1 });
    await books.data.referenceAdd({ fromUuid: id, fromProperty: "writtenBy", to: a2 });
    got = await call(server, "GET", `/v1/objects/Book/${id}`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${a1}`, `weaviate://localhost/Author/${a2}`]);
    await books.data.referenceDelete({ fromUuid: id, fromProperty: "writtenBy", to: a1 });
    got = await call(server, "GET", `/v1/objects/Book/${id}`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${a2}`]);
    await books.data.referenceReplace({ fromUuid: id, fromProperty: "writtenBy", to: [a1] });
    got = await call(server, "GET", `/v1/objects/Book/${id}`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${a1}`]);
    // A reference to an object of a class the property does not target: Weaviate's 422.
    const bad = await call(server, "POST", `/v1/objects/Book/${id}/references/title`, { beacon: `weaviate://localhost/Author/${a1}` });
    expect(bad.status).toBe(422);
    expect(bad.body.error[0].message).toMatch(/not a cross-reference property/);

    // HEAD and DELETE by id alone.
    expect((await fetch(server.url + `/objects/${id}`, { method: "HEAD" })).status).toBe(204);
    expect((await call(server, "DELETE", `/v1/objects/${id}`)).status).toBe(204);
    expect((await fetch(server.url + `/objects/${id}`, { method: "HEAD" })).status).toBe(404);
  });

  it("unknown routes under Weaviate paths answer in Weaviate's error shape; /v1/cluster/statistics answers for one node", async () => {
    const unknown = await call(server, "GET", "/v1/cluster/nothing-here");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: [{ message: expect.stringContaining("Unknown route") }] });
    const stats = await call(server, "GET", "/v1/cluster/statistics");
    expect(stats.body).toMatchObject({ synchronized: true, statistics: [{ status: "HEALTHY", ready: true }] });
  });
});

describe("Weaviate drop-in: classes stored by an earlier OpenBatch", () => {
  it("are completed with Weaviate's defaults at start, so config.get() reads them", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { SqliteCollectionStore } = await import("../src/store/sqlite/collection-store.js");
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-old-class-"));
    // The class JSON OpenBatch stored before it rendered every index field.
    const store = new SqliteCollectionStore(join(dataDir, "openbatch.db"));
    await store.putClass(
      "Old",
      {
        class: "Old",
        vectorizer: "none",
        moduleConfig: {},
        vectorIndexType: "hnsw",
        vectorIndexConfig: { distance: "dot", ef: -1, efConstruction: 128, maxConnections: 32, dynamicEfMin: 100, dynamicEfMax: 500, dynamicEfFactor: 8 },
        properties: [{ name: "title", dataType: ["text"], tokenization: "word", indexFilterable: true, indexSearchable: true }],
        invertedIndexConfig: { bm25: { b: 0.75, k1: 1.2 }, cleanupIntervalSeconds: 60, stopwords: { preset: "en", additions: null, removals: null } },
        multiTenancyConfig: { enabled: false },
        replicationConfig: { factor: 1 },
        shardingConfig: { virtualPerPhysical: 128, desiredCount: 1, actualCount: 1, desiredVirtualCount: 128, actualVirtualCount: 128, key: "_id", strategy: "hash", function: "murmur3" },
      },
      null,
    );
    await store.close();
    const server = await startServer({}, { dataDir, grpcPort: 0 });
    const client = await connect(server);
    try {
      const config = await client.collections.use("Old").config.get();
      expect(config.vectorizers.default!.indexConfig).toMatchObject({ distance: "dot", cleanupIntervalSeconds: 300, flatSearchCutoff: 40000 });
    } finally {
      await client.close();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("Weaviate drop-in: named vectors across a restart", () => {
  it("keeps each named vector's index (saved or rebuilt) on the same data dir", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-named-restart-"));
    const items = Array.from({ length: 20 }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, properties: { n: i }, vectors: { a: [1, i, 0.5], b: [i % 3, 1, i] } }));
    const nearest = async (server: TestServer) => {
      const client = await connect(server);
      try {
        const c = client.collections.use("Twin");
        const a = await c.query.nearVector([1, 7, 0.5], { targetVector: "a", limit: 1 });
        const b = await c.query.nearVector([2, 1, 11], { targetVector: "b", limit: 1 });
        return [a.objects[0]!.uuid, b.objects[0]!.uuid];
      } finally {
        await client.close();
      }
    };
    let server = await startServer({}, { dataDir, grpcPort: 0 });
    let before: string[];
    try {
      const client = await connect(server);
      const twin = await client.collections.create({
        name: "Twin",
        properties: [{ name: "n", dataType: "int" }],
        vectorizers: [weaviate.configure.vectors.selfProvided({ name: "a" }), weaviate.configure.vectors.selfProvided({ name: "b", vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ distanceMetric: "l2-squared" }) })],
      });
      expect((await twin.data.insertMany(items)).hasErrors).toBe(false);
      await client.close();
      before = await nearest(server);
      expect(before).toEqual([items[7]!.id, items[11]!.id]);
    } finally {
      await server.close();
    }
    server = await startServer({}, { dataDir, grpcPort: 0 });
    try {
      expect(await nearest(server)).toEqual(before);
    } finally {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
