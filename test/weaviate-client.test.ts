import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { cosineDistance } from "./support/vectors.js";

/** A JSON call to the server's root (`/v1/...` paths). */
async function call(server: TestServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(server.url.replace(/\/v1$/, "") + path, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : null };
}

/** Deterministic pseudo-random numbers, exactly representable as float32. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return Math.fround(s / 0x7fffffff - 0.5);
  };
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

const connect = (server: TestServer, apiKey?: string) =>
  weaviate.connectToLocal({
    host: "127.0.0.1",
    port: Number(new URL(server.url).port),
    grpcPort: server.grpcPort!,
    authCredentials: apiKey ? new weaviate.ApiKey(apiKey) : undefined,
  });

describe("the official weaviate-client (v3) over REST + gRPC", () => {
  let server: TestServer;
  let client: WeaviateClient;
  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    client = await connect(server);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("connects (meta, gRPC health, ready) and reports live and ready", async () => {
    expect(server.grpcPort).toBeGreaterThan(0);
    expect(await client.isLive()).toBe(true);
    expect(await client.isReady()).toBe(true);
  });

  it("insertMany imports over gRPC; nearVector finds the brute-force nearest; a wrong type fails that object only", async () => {
    await client.collections.create({
      name: "Article",
      vectorizers: weaviate.configure.vectors.selfProvided({ vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ distanceMetric: "cosine" }) }),
      properties: [
        { name: "title", dataType: "text" },
        { name: "rank", dataType: "int" },
        { name: "tags", dataType: "text[]" },
        { name: "score", dataType: "number" },
      ],
    });
    const next = rng(7);
    const vectors = Array.from({ length: 100 }, () => Array.from({ length: 16 }, next));
    const articles = client.collections.use("Article");
    const inserted = await articles.data.insertMany(
      vectors.map((v, i) => ({ id: uuid(i), properties: { title: `article ${i}`, rank: i, tags: ["t", `n${i % 3}`], score: i / 4 }, vectors: v })),
    );
    expect(inserted.hasErrors).toBe(false);
    expect(Object.keys(inserted.uuids)).toHaveLength(100);
    expect(inserted.uuids[3]).toBe(uuid(3));

    const query = Array.from({ length: 16 }, next);
    const expected = vectors
      .map((v, i) => ({ id: uuid(i), d: cosineDistance(query, v) }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 5);
    const r = await articles.query.nearVector(query, { limit: 5, returnMetadata: ["distance"] });
    expect(r.objects.map((o) => o.uuid)).toEqual(expected.map((e) => e.id));
    r.objects.forEach((o, k) => expect(o.metadata?.distance).toBeCloseTo(expected[k]!.d, 4));
    const first = r.objects[0]!;
    const n = Number.parseInt(first.uuid.slice(-12), 16);
    expect(first.properties).toEqual({ title: `article ${n}`, rank: n, tags: ["t", `n${n % 3}`], score: n / 4 });

    // fetchObjectById is a Search with an id filter; the vector comes back as bytes.
    const one = await articles.query.fetchObjectById(uuid(42), { includeVector: true });
    expect(one?.uuid).toBe(uuid(42));
    expect(one?.properties).toMatchObject({ title: "article 42", rank: 42 });
    expect(one?.vectors.default).toEqual(vectors[42]);
    expect(await articles.query.fetchObjectById(uuid(4242))).toBeNull();

    // Items fail one by one, with Weaviate's messages; the others are stored.
    const mixed = await articles.data.insertMany([
      { id: uuid(500), properties: { title: "fine" }, vectors: vectors[0]! },
      { id: uuid(501), properties: { title: 42 as unknown as string }, vectors: vectors[1]! },
      { id: uuid(502), properties: { title: "short vector" }, vectors: [1, 2, 3] },
    ]);
    expect(mixed.hasErrors).toBe(true);
    expect(Object.keys(mixed.errors).map(Number)).toEqual([1, 2]);
    expect(mixed.errors[1]!.message).toBe("invalid text property 'title' on class 'Article': not a string, but float64");
    expect(mixed.errors[2]!.message).toMatch(/vector dimensions do not match the index dimensions/);
    expect(mixed.uuids[0]).toBe(uuid(500));
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(500)}`)).status).toBe(200);
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(501)}`)).status).toBe(404);

    // Filters and property selection.
    const filtered = await articles.query.fetchObjects({ filters: articles.filter.byProperty("rank").lessThan(3), returnProperties: ["title"], limit: 10 });
    expect(filtered.objects.map((o) => o.properties).sort((a, b) => String(a.title).localeCompare(String(b.title)))).toEqual([
      { title: "article 0" },
      { title: "article 1" },
      { title: "article 2" },
    ]);

    // deleteMany is a BatchDelete.
    const deleted = await articles.data.deleteMany(articles.filter.byProperty("rank").greaterOrEqual(90));
    expect(deleted).toMatchObject({ matches: 10, successful: 10, failed: 0 });
    expect(await articles.query.fetchObjectById(uuid(95))).toBeNull();
  });

  it("nearText embeds the concepts with the collection's vectorizer", async () => {
    // text2vec-ollama with a model a provider serves (the built-in local/glove-100d): no Ollama is called.
    await client.collections.create({
      name: "Sentence",
      vectorizers: weaviate.configure.vectors.text2VecOllama({ apiEndpoint: "http://127.0.0.1:9", model: "local/glove-100d" }),
      properties: [
        { name: "text", dataType: "text" },
        { name: "topic", dataType: "text" },
      ],
    });
    const sentences = client.collections.use("Sentence");
    const texts = [
      ["The cell is the basic unit of all living organisms and the study of it is biology", "science"],
      ["The stock market fell sharply after the bank raised interest rates", "finance"],
      ["The team scored a late goal to win the football championship", "sport"],
      ["Genes and proteins control how plants and animals grow", "science"],
    ];
    const inserted = await sentences.data.insertMany(texts.map(([text, topic]) => ({ text: text!, topic: topic! })));
    expect(inserted.hasErrors).toBe(false);
    const r = await sentences.query.nearText("biology", { limit: 2, returnMetadata: ["distance"] });
    expect(r.objects.map((o) => o.properties.topic)).toEqual(["science", "science"]);
    expect(r.objects[0]!.metadata!.distance!).toBeLessThanOrEqual(r.objects[1]!.metadata!.distance!);
  });

  it("a query on a missing collection is an error", async () => {
    await expect(client.collections.use("Nope").query.fetchObjects({ limit: 1 })).rejects.toThrow(/not present in schema/);
  });
});

describe("weaviate-client with auth on", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ apiKeys: ["secret-key"] }, { grpcPort: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("sends the key as a Bearer token over gRPC; health needs no key, data calls without a valid one are UNAUTHENTICATED", async () => {
    const client = await connect(server, "secret-key");
    try {
      const items = client.collections.use("Thing");
      const r = await items.data.insertMany([{ properties: { name: "a" }, vectors: [1, 0] }]);
      expect(r.hasErrors).toBe(false);
      const found = await items.query.nearVector([1, 0], { limit: 1 });
      expect(found.objects[0]!.properties).toEqual({ name: "a" });
    } finally {
      await client.close();
    }
    // A raw gRPC client: health needs no key, data calls do.
    const def = loadSync(["weaviate.proto", "health.proto"].map((f) => fileURLToPath(new URL(`../src/api/weaviate-grpc/${f}`, import.meta.url))), { longs: Number, enums: String, defaults: false });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const target = `127.0.0.1:${server.grpcPort}`;
    const health = new pkg.grpc.health.v1.Health(target, grpc.credentials.createInsecure());
    const raw = new pkg.weaviate.v1.Weaviate(target, grpc.credentials.createInsecure());
    const unary = (c: any, method: string, req: unknown, md = new grpc.Metadata()) =>
      new Promise<any>((resolve, reject) => c[method](req, md, (err: Error | null, reply: unknown) => (err ? reject(err) : resolve(reply))));
    try {
      expect(await unary(health, "Check", { service: "" })).toEqual({ status: "SERVING" });
      await expect(unary(raw, "Search", { collection: "Thing", limit: 1 })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      const wrong = new grpc.Metadata();
      wrong.set("authorization", "Bearer nope");
      await expect(unary(raw, "Search", { collection: "Thing", limit: 1 }, wrong)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: "Incorrect API key provided." });
      const right = new grpc.Metadata();
      right.set("authorization", "Bearer secret-key");
      const reply = await unary(raw, "Search", { collection: "Thing", limit: 1, properties: { returnAllNonrefProperties: true } }, right);
      expect(reply.results[0].properties.nonRefProps.fields.name).toEqual({ textValue: "a" });
    } finally {
      health.close();
      raw.close();
    }
  });
});
