import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";

const jeopardy = JSON.parse(readFileSync(new URL("../../shared/datasets/jeopardy/jeopardy_1k.json", import.meta.url), "utf8")) as {
  Category: string;
  Question: string;
  Answer: string;
}[];

/** A JSON call to the server's root (`/v1/...` paths). */
async function call(server: TestServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const root = server.url.replace(/\/v1$/, "");
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    (init.headers as Record<string, string>)["content-type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(root + path, init);
  const text = await res.text();
  return { status: res.status, text, body: text ? (JSON.parse(text) as any) : null };
}

const batch = (server: TestServer, objects: unknown[]) => call(server, "POST", "/v1/batch/objects", { objects });
const graphql = (server: TestServer, query: string) => call(server, "POST", "/v1/graphql", { query });
const errorsOf = (item: any): string[] => (item.result.errors?.error ?? []).map((e: any) => e.message);

/** Deterministic pseudo-random numbers, exactly representable as float32. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return Math.fround(s / 0x7fffffff);
  };
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("Weaviate REST: schema, batch import, references, delete, objects", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR });
  });
  afterAll(async () => {
    await server.close();
  });

  it("creates, lists, gets and deletes classes; a duplicate is 422 and a missing class 404 with no body", async () => {
    const created = await call(server, "POST", "/v1/schema", {
      class: "tmpClass",
      vectorIndexConfig: { distance: "l2-squared" },
      properties: [{ name: "Title", dataType: ["text"] }],
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ class: "TmpClass", vectorizer: "none", vectorIndexType: "hnsw", vectorIndexConfig: { distance: "l2-squared" } });
    expect(created.body.properties).toEqual([expect.objectContaining({ name: "title", dataType: ["text"], tokenization: "word" })]);
    expect((await call(server, "GET", "/v1/schema/TmpClass")).body.class).toBe("TmpClass");
    expect((await call(server, "GET", "/v1/schema")).body.classes.map((c: any) => c.class)).toContain("TmpClass");
    const dup = await call(server, "POST", "/v1/schema", { class: "TmpClass" });
    expect(dup.status).toBe(422);
    expect(dup.body).toEqual({ error: [{ message: 'class name "TmpClass" already exists' }] });
    const badVectorizer = await call(server, "POST", "/v1/schema", { class: "Other", vectorizer: "text2vec-nothing" });
    expect(badVectorizer.status).toBe(422);
    expect(badVectorizer.body.error[0].message).toBe('vectorizer: no module with name "text2vec-nothing" present');
    expect((await call(server, "DELETE", "/v1/schema/TmpClass")).status).toBe(200);
    const gone = await call(server, "GET", "/v1/schema/TmpClass");
    expect(gone.status).toBe(404);
    expect(gone.text).toBe("");
  });

  it("reports every per-object error with Weaviate's message, in one 200 with the successes", async () => {
    await call(server, "POST", "/v1/schema", {
      class: "Article",
      properties: [
        { name: "title", dataType: ["text"] },
        { name: "count", dataType: ["int"] },
        { name: "score", dataType: ["number"] },
        { name: "published", dataType: ["date"] },
        { name: "source", dataType: ["uuid"] },
        { name: "tags", dataType: ["text[]"] },
        { name: "draft", dataType: ["boolean"] },
      ],
    });
    const res = await batch(server, [
      { class: "Article", id: uuid(1), properties: { title: "ok", count: 3, published: "2024-05-01T10:00:00Z", source: uuid(99), tags: ["a", "b"] }, vector: [1, 0, 0, 0] },
      { class: "", properties: { title: "x" } },
      { class: "Article", properties: { title: 1.5 } },
      { class: "Article", properties: { count: 1.5 } },
      { class: "Article", properties: { published: "yesterday" } },
      { class: "Article", properties: { source: "abc" } },
      { class: "Article", id: uuid(2), properties: { title: "five dims" }, vector: [1, 2, 3, 4, 5] },
      { class: "Article", id: uuid(3), properties: { title: "also ok", draft: false }, vector: [0, 1, 0, 0] },
      { class: "Article", properties: { draft: "yes" } },
      { class: "Article", properties: { tags: "not an array" } },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(10);
    const messages = res.body.map(errorsOf);
    expect(res.body[0].result).toEqual({ status: "SUCCESS" });
    expect(res.body[7].result).toEqual({ status: "SUCCESS" });
    expect(messages[1]).toEqual(["object has an empty class"]);
    expect(messages[2]).toEqual(["invalid text property 'title' on class 'Article': not a string, but float64"]);
    expect(messages[3]).toEqual(["invalid integer property 'count' on class 'Article': requires an integer, the given value is '1.5'"]);
    expect(messages[4]).toEqual(["invalid date property 'published' on class 'Article': requires a string with a RFC3339 formatted date, but the given value is 'yesterday'"]);
    expect(messages[5]).toEqual(["invalid uuid property 'source' on class 'Article': requires a string of UUID format, but the given value is 'abc'"]);
    expect(messages[6]).toEqual(["new node has a vector with length 5. Existing nodes have vectors with length 4: vector dimensions do not match the index dimensions"]);
    expect(messages[8]).toEqual(["invalid boolean property 'draft' on class 'Article': not a bool, but string"]);
    expect(messages[9]).toEqual(["invalid text array property 'tags' on class 'Article': not a text array, but string"]);
    for (const i of [1, 2, 3, 4, 5, 6, 8, 9]) expect(res.body[i].result.status).toBe("FAILED");
    // Echoed objects: the success carries its id and times, the failures their input.
    expect(res.body[0]).toMatchObject({ class: "Article", id: uuid(1), properties: { title: "ok", count: 3 } });
    expect(typeof res.body[0].creationTimeUnix).toBe("number");
    expect(res.body[2]).toMatchObject({ class: "Article", properties: { title: 1.5 } });
    // Only the successes were stored.
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(1)}`)).status).toBe(200);
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(2)}`)).status).toBe(404);
    // A vector of the index's length (from an earlier batch) is checked against the index.
    const later = await batch(server, [{ class: "Article", properties: { title: "three" }, vector: [1, 2, 3] }]);
    expect(errorsOf(later.body[0])).toEqual(["new node has a vector with length 3. Existing nodes have vectors with length 4: vector dimensions do not match the index dimensions"]);
  });

  it("answers 422 for an empty list, 400 for malformed JSON, in Weaviate's error shape", async () => {
    const empty = await batch(server, []);
    expect(empty.status).toBe(422);
    expect(empty.body).toEqual({ error: [{ message: "invalid param 'objects': cannot be empty, need at least one object for batching" }] });
    const missing = await call(server, "POST", "/v1/batch/objects", {});
    expect(missing.status).toBe(422);
    const malformed = await call(server, "POST", "/v1/batch/objects", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error[0].message).toEqual(expect.any(String));
    const refsEmpty = await call(server, "POST", "/v1/batch/references", []);
    expect(refsEmpty.status).toBe(422);
    expect(refsEmpty.body).toEqual({ error: [{ message: "invalid params: length cannot be 0, need at least one reference for batching" }] });
  });

  it("auto-schema creates unknown classes and properties with inferred types", async () => {
    const res = await batch(server, [
      { class: "autoThing", id: uuid(10), properties: { name: "a", size: 3, ok: true, when: "2020-01-01T00:00:00Z", other: uuid(5), labels: ["x", "y"] } },
      { class: "AutoThing", id: uuid(11), properties: { name: 7 } },
    ]);
    expect(res.body[0].result).toEqual({ status: "SUCCESS" });
    expect(errorsOf(res.body[1])).toEqual(["invalid text property 'name' on class 'AutoThing': not a string, but float64"]);
    const schema = (await call(server, "GET", "/v1/schema/AutoThing")).body;
    const types = Object.fromEntries(schema.properties.map((p: any) => [p.name, p.dataType[0]]));
    expect(types).toEqual({ name: "text", size: "number", ok: "boolean", when: "date", other: "uuid", labels: "text[]" });
  });

  it("is idempotent per uuid: a re-import replaces the object, and within a batch the last one wins", async () => {
    const first = await batch(server, [{ class: "Article", id: uuid(20), properties: { title: "v1" }, vector: [0, 0, 1, 0] }]);
    const created = first.body[0].creationTimeUnix;
    await new Promise((r) => setTimeout(r, 5));
    const again = await batch(server, [
      { class: "Article", id: uuid(20), properties: { title: "v2" }, vector: [0, 0, 1, 0] },
      { class: "Article", id: uuid(20).toUpperCase(), properties: { title: "v3" }, vector: [0, 0, 0, 1] },
    ]);
    expect(again.body.map((o: any) => o.result.status)).toEqual(["SUCCESS", "SUCCESS"]);
    const got = (await call(server, "GET", `/v1/objects/Article/${uuid(20)}?include=vector`)).body;
    expect(got.properties).toEqual({ title: "v3" });
    expect(got.vector).toEqual([0, 0, 0, 1]);
    expect(got.creationTimeUnix).toBe(created);
    expect(got.lastUpdateTimeUnix).toBeGreaterThan(created);
    const count = await graphql(server, `{ Aggregate { Article(where:{path:["id"], operator:Equal, valueText:"${uuid(20)}"}) { meta { count } } } }`);
    expect(count.body.data.Aggregate.Article[0].meta.count).toBe(1);
  });

  it("GET /v1/objects/{class}/{id} returns the object, its vector with include=vector, and 404 with no body", async () => {
    await batch(server, [{ class: "Article", id: uuid(30), properties: { title: "with vector", count: 2 }, vector: [0.5, 0.25, -1, 2] }]);
    const plain = await call(server, "GET", `/v1/objects/Article/${uuid(30)}`);
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({ class: "Article", id: uuid(30), properties: { title: "with vector", count: 2 } });
    expect(plain.body.vector).toBeUndefined();
    expect(typeof plain.body.creationTimeUnix).toBe("number");
    expect(typeof plain.body.lastUpdateTimeUnix).toBe("number");
    const withVector = await call(server, "GET", `/v1/objects/Article/${uuid(30)}?include=vector`);
    expect(withVector.body.vector).toEqual([0.5, 0.25, -1, 2]);
    const missing = await call(server, "GET", `/v1/objects/Article/${uuid(31)}`);
    expect(missing.status).toBe(404);
    expect(missing.text).toBe("");
    expect((await call(server, "GET", `/v1/objects/Nope/${uuid(30)}`)).status).toBe(404);
    expect((await call(server, "HEAD", `/v1/objects/Article/${uuid(30)}`)).status).toBe(204);
  });

  it("validates references: bad source class, bad property, good ones with and without the target class", async () => {
    await call(server, "POST", "/v1/schema", { class: "Author", properties: [{ name: "name", dataType: ["text"] }] });
    await call(server, "POST", "/v1/schema", {
      class: "Book",
      properties: [
        { name: "title", dataType: ["text"] },
        { name: "writtenBy", dataType: ["Author"] },
      ],
    });
    const a1 = uuid(101), a2 = uuid(102), b1 = uuid(201);
    await batch(server, [
      { class: "Author", id: a1, properties: { name: "Ann" } },
      { class: "Author", id: a2, properties: { name: "Bob" } },
      { class: "Book", id: b1, properties: { title: "Together" } },
    ]);
    const res = await call(server, "POST", "/v1/batch/references", [
      { from: `weaviate://localhost/Book/${b1}/writtenBy`, to: `weaviate://localhost/Author/${a1}` },
      { from: `weaviate://localhost/Book/${b1}/writtenBy`, to: `weaviate://localhost/${a2}` },
      { from: `weaviate://localhost/Nope/${b1}/writtenBy`, to: `weaviate://localhost/Author/${a1}` },
      { from: `weaviate://localhost/Book/${b1}/nope`, to: `weaviate://localhost/Author/${a1}` },
      { from: `weaviate://localhost/Book/${b1}/title`, to: `weaviate://localhost/Author/${a1}` },
      { from: `weaviate://localhost/Book/${b1}/writtenBy`, to: "weaviate://localhost/Author/not-a-uuid" },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(6);
    expect(res.body[0]).toEqual({ from: `weaviate://localhost/Book/${b1}/writtenBy`, to: `weaviate://localhost/Author/${a1}`, result: { status: "SUCCESS" } });
    expect(res.body[1].result).toEqual({ status: "SUCCESS" });
    expect(errorsOf(res.body[2])).toEqual(['source class "Nope" not found in schema']);
    expect(errorsOf(res.body[3])).toEqual(["property nope does not exist for class Book"]);
    expect(res.body[4].result.status).toBe("FAILED");
    expect(res.body[5].result.status).toBe("FAILED");
    const book = (await call(server, "GET", `/v1/objects/Book/${b1}`)).body;
    expect(book.properties.writtenBy).toEqual([
      { beacon: `weaviate://localhost/Author/${a1}`, href: `/v1/objects/Author/${a1}` },
      { beacon: `weaviate://localhost/Author/${a2}`, href: `/v1/objects/Author/${a2}` },
    ]);
    // References given inline in an object's properties (a beacon without its class is completed).
    const inline = await batch(server, [{ class: "Book", id: uuid(202), properties: { title: "Solo", writtenBy: [{ beacon: `weaviate://localhost/${a2}` }] } }]);
    expect(inline.body[0].result).toEqual({ status: "SUCCESS" });
    expect((await call(server, "GET", `/v1/objects/Book/${uuid(202)}`)).body.properties.writtenBy).toEqual([{ beacon: `weaviate://localhost/Author/${a2}`, href: `/v1/objects/Author/${a2}` }]);
  });

  it("deletes in batch by a where filter: dryRun, minimal and verbose", async () => {
    await batch(
      server,
      Array.from({ length: 6 }, (_, i) => ({ class: "Article", id: uuid(300 + i), properties: { title: i < 4 ? `doomed ${i}` : `kept ${i}`, count: i }, vector: [i, 1, 0, 0] })),
    );
    const where = { path: ["title"], operator: "Equal", valueText: "doomed" };
    const dry = await call(server, "DELETE", "/v1/batch/objects", { match: { class: "Article", where }, output: "verbose", dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ match: { class: "Article", where }, output: "verbose", dryRun: true, results: { matches: 4, limit: 10000, successful: 0, failed: 0 } });
    expect(dry.body.results.objects.map((o: any) => o.status)).toEqual(["DRYRUN", "DRYRUN", "DRYRUN", "DRYRUN"]);
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(300)}`)).status).toBe(200);

    const minimal = await call(server, "DELETE", "/v1/batch/objects", {
      match: { class: "Article", where: { operator: "And", operands: [where, { path: ["count"], operator: "LessThan", valueInt: 2 }] } },
      output: "minimal",
    });
    expect(minimal.body).toMatchObject({ output: "minimal", dryRun: false, results: { matches: 2, successful: 2, failed: 0 } });
    expect(minimal.body.results.objects).toBeUndefined();
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(300)}`)).status).toBe(404);

    const verbose = await call(server, "DELETE", "/v1/batch/objects", { match: { class: "Article", where }, output: "verbose" });
    expect(verbose.body.results).toMatchObject({ matches: 2, successful: 2, failed: 0 });
    expect(verbose.body.results.objects).toEqual([
      { id: uuid(302), status: "SUCCESS" },
      { id: uuid(303), status: "SUCCESS" },
    ]);
    expect((await call(server, "GET", `/v1/objects/Article/${uuid(304)}`)).status).toBe(200);
    // Deleted objects are gone from searches too.
    const near = await graphql(server, `{ Get { Article(nearVector:{vector:[2,1,0,0]}, limit:50) { title _additional { id } } } }`);
    const ids = near.body.data.Get.Article.map((o: any) => o._additional.id);
    expect(ids).not.toContain(uuid(302));
    expect(ids).toContain(uuid(304));
  });

  it("GET /v1/meta, /v1/.well-known/ready and live, /v1/nodes with batchStats", async () => {
    const meta = await call(server, "GET", "/v1/meta");
    expect(meta.body.version >= "1.27.0").toBe(true);
    expect(meta.body.modules["text2vec-openbatch"]).toBeTruthy();
    expect((await call(server, "GET", "/v1/.well-known/ready")).status).toBe(200);
    expect((await call(server, "GET", "/v1/.well-known/live")).status).toBe(200);
    const nodes = await call(server, "GET", "/v1/nodes?output=verbose");
    const node = nodes.body.nodes[0];
    expect(node.status).toBe("HEALTHY");
    expect(node.batchStats).toEqual({ queueLength: 0, ratePerSecond: expect.any(Number) });
    expect(node.stats.objectCount).toBeGreaterThan(0);
    expect(node.shards.find((s: any) => s.class === "Article").objectCount).toBeGreaterThan(0);
  });
});

describe("vector search", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR });
  });
  afterAll(async () => {
    await server.close();
  });

  const exact: Record<string, (a: number[], b: number[]) => number> = {
    cosine: (a, b) => {
      const dot = a.reduce((s, x, i) => s + x * b[i]!, 0);
      const na = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
      const nb = Math.sqrt(b.reduce((s, x) => s + x * x, 0));
      return 1 - dot / (na * nb);
    },
    dot: (a, b) => -a.reduce((s, x, i) => s + x * b[i]!, 0),
    "l2-squared": (a, b) => a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0),
    manhattan: (a, b) => a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0),
    hamming: (a, b) => a.reduce((s, x, i) => s + (x !== b[i] ? 1 : 0), 0),
  };

  for (const distance of Object.keys(exact)) {
    it(`nearVector equals brute-force exact search (${distance})`, async () => {
      const cls = `Vec${distance.replace(/[^a-z]/g, "")}`;
      expect((await call(server, "POST", "/v1/schema", { class: cls, vectorIndexConfig: { distance }, properties: [{ name: "n", dataType: ["int"] }] })).status).toBe(200);
      const rand = rng(distance.length * 7919);
      // Hamming compares coordinates for equality: draw them from a few values.
      const draw = distance === "hamming" ? () => Math.floor(rand() * 3) : () => Math.fround(rand() * 2 - 1);
      const vectors = Array.from({ length: 300 }, () => Array.from({ length: 8 }, draw));
      const res = await batch(server, vectors.map((vector, n) => ({ class: cls, id: uuid(n), properties: { n }, vector })));
      expect(res.body.every((o: any) => o.result.status === "SUCCESS")).toBe(true);
      for (let q = 0; q < 5; q++) {
        const query = Array.from({ length: 8 }, draw);
        const truth = vectors.map((v, n) => ({ n, d: exact[distance]!(query, v) })).sort((a, b) => a.d - b.d || a.n - b.n).slice(0, 10);
        const got = await graphql(server, `{ Get { ${cls}(nearVector:{vector:${JSON.stringify(query)}}, limit:10) { n _additional { id distance } } } }`);
        expect(got.body.errors).toBeUndefined();
        const hits = got.body.data.Get[cls] as { n: number; _additional: { id: string; distance: number } }[];
        expect(hits).toHaveLength(10);
        hits.forEach((h, i) => expect(h._additional.distance).toBeCloseTo(truth[i]!.d, 4));
        // Ties (frequent with hamming) may come in any order; otherwise the very same objects in the same order.
        if (distance !== "hamming") expect(hits.map((h) => h.n)).toEqual(truth.map((t) => t.n));
        hits.forEach((h) => expect(h._additional.id).toBe(uuid(h.n)));
      }
    });
  }

  it("filters with where (alone and with nearVector), limit, offset, distance and certainty", async () => {
    await call(server, "POST", "/v1/schema", {
      class: "Item",
      properties: [
        { name: "title", dataType: ["text"] },
        { name: "code", dataType: ["text"], tokenization: "field" },
        { name: "price", dataType: ["number"] },
        { name: "qty", dataType: ["int"] },
        { name: "active", dataType: ["boolean"] },
        { name: "added", dataType: ["date"] },
      ],
    });
    const items = Array.from({ length: 40 }, (_, i) => ({
      class: "Item",
      id: uuid(1000 + i),
      properties: {
        title: i % 2 === 0 ? `Red apple number ${i}` : `Green pear number ${i}`,
        code: `SKU-${i}`,
        price: i * 1.5,
        qty: i,
        active: i % 3 === 0,
        added: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
      },
      vector: [Math.cos(i / 20), Math.sin(i / 20), 0.1],
    }));
    await batch(server, items);
    const get = async (args: string, fields = "qty") => {
      const r = await graphql(server, `{ Get { Item(${args}) { ${fields} } } }`);
      expect(r.body.errors).toBeUndefined();
      return (r.body.data.Get.Item as any[]).map((o) => o.qty);
    };
    const range = (pred: (i: number) => boolean) => Array.from({ length: 40 }, (_, i) => i).filter(pred);
    expect(await get(`where:{path:["title"], operator:Equal, valueText:"apple"}, limit:100`)).toEqual(range((i) => i % 2 === 0));
    expect(await get(`where:{path:["title"], operator:NotEqual, valueText:"apple"}, limit:100`)).toEqual(range((i) => i % 2 === 1));
    expect(await get(`where:{path:["qty"], operator:GreaterThan, valueInt:35}, limit:100`)).toEqual([36, 37, 38, 39]);
    expect(await get(`where:{path:["qty"], operator:GreaterThanEqual, valueInt:38}, limit:100`)).toEqual([38, 39]);
    expect(await get(`where:{path:["price"], operator:LessThan, valueNumber:3}, limit:100`)).toEqual([0, 1]);
    expect(await get(`where:{path:["price"], operator:LessThanEqual, valueNumber:3}, limit:100`)).toEqual([0, 1, 2]);
    expect(await get(`where:{path:["active"], operator:Equal, valueBoolean:true}, limit:100`)).toEqual(range((i) => i % 3 === 0));
    expect(await get(`where:{path:["added"], operator:LessThan, valueDate:"2024-01-04T00:00:00Z"}, limit:100`)).toEqual([0, 1, 2]);
    expect(await get(`where:{path:["title"], operator:Like, valueText:"pea*"}, limit:3`)).toEqual([1, 3, 5]);
    expect(await get(`where:{path:["code"], operator:Like, valueText:"SKU-1?"}, limit:100`)).toEqual(range((i) => i >= 10 && i <= 19));
    expect(await get(`where:{path:["code"], operator:Equal, valueText:"SKU-1"}, limit:100`)).toEqual([1]);
    expect(
      await get(`where:{operator:Or, operands:[{path:["qty"], operator:Equal, valueInt:3}, {operator:And, operands:[{path:["qty"], operator:GreaterThan, valueInt:30}, {path:["active"], operator:Equal, valueBoolean:true}]}]}, limit:100`),
    ).toEqual([3, 33, 36, 39]);
    expect(await get(`limit:3, offset:2`)).toEqual([2, 3, 4]);
    // nearVector within a filter: exact over the matching objects.
    const near = await get(`nearVector:{vector:[1,0,0.1]}, where:{path:["title"], operator:Equal, valueText:"pear"}, limit:3`, "qty _additional { distance }");
    expect(near).toEqual([1, 3, 5]);
    const within = await get(`nearVector:{vector:[1,0,0.1], distance:0.01}, limit:100`);
    expect(within.length).toBeGreaterThan(0);
    expect(within.length).toBeLessThan(40);
    const certain = await get(`nearVector:{vector:[1,0,0.1], certainty:0.995}, limit:100`);
    expect(certain).toEqual(within);
    // Errors come in GraphQL's shape with status 200.
    const unknownProp = await graphql(server, `{ Get { Item(where:{path:["nope"], operator:Equal, valueText:"x"}) { qty } } }`);
    expect(unknownProp.status).toBe(200);
    expect(unknownProp.body.errors[0].message).toBe("no such prop with name 'nope' found in class 'Item' in the schema. Check your schema files for which properties in this class are available");
    const unknownClass = await graphql(server, `{ Get { Nope { qty } } }`);
    expect(unknownClass.body.errors[0].message).toBe('Cannot query field "Nope" on type "GetObjectsObj".');
    const unknownField = await graphql(server, `{ Get { Item { qty nope } } }`);
    expect(unknownField.body.errors[0].message).toBe('Cannot query field "nope" on type "Item".');
    const syntax = await graphql(server, `{ Get { Item( { qty } } }`);
    expect(syntax.body.errors[0].message).toMatch(/^Syntax Error/);
  });

  it("nearText embeds the concepts with the class's vectorizer (local/glove-100d)", async () => {
    await call(server, "POST", "/v1/schema", { class: "Sentence", vectorizer: "text2vec-openbatch", properties: [{ name: "text", dataType: ["text"] }, { name: "topic", dataType: ["text"] }] });
    const texts = [
      ["The cell is the basic unit of all living organisms and the study of it is biology", "science"],
      ["The stock market fell sharply after the bank raised interest rates", "finance"],
      ["The team scored a late goal to win the football championship", "sport"],
      ["Genes and proteins control how plants and animals grow", "science"],
    ];
    const res = await batch(server, texts.map(([text, topic], i) => ({ class: "Sentence", id: uuid(2000 + i), properties: { text, topic } })));
    expect(res.body.every((o: any) => o.result.status === "SUCCESS")).toBe(true);
    // Vectorized on import: 100 dimensions, unit length.
    const stored = (await call(server, "GET", `/v1/objects/Sentence/${uuid(2000)}?include=vector`)).body.vector as number[];
    expect(stored).toHaveLength(100);
    expect(Math.abs(Math.hypot(...stored) - 1)).toBeLessThan(1e-4);
    const r = await graphql(server, `{ Get { Sentence(nearText:{concepts:["biology"]}, limit:2) { text topic _additional { id distance certainty } } } }`);
    expect(r.body.errors).toBeUndefined();
    const hits = r.body.data.Get.Sentence;
    expect(hits).toHaveLength(2);
    expect(hits.map((h: any) => h.topic)).toEqual(["science", "science"]);
    expect(hits[0]._additional.distance).toBeLessThanOrEqual(hits[1]._additional.distance);
    expect(hits[0]._additional.certainty).toBeCloseTo(1 - hits[0]._additional.distance / 2, 6);
    const filtered = await graphql(server, `{ Get { Sentence(nearText:{concepts:["money"]}, where:{path:["topic"], operator:Equal, valueText:"sport"}, limit:5) { topic } } }`);
    expect(filtered.body.data.Get.Sentence).toEqual([{ topic: "sport" }]);
    // A class without a vectorizer has no nearText.
    const none = await graphql(server, `{ Get { Item(nearText:{concepts:["x"]}) { qty } } }`);
    expect(none.body.errors[0].message).toMatch(/has no vectorizer/);
    expect(none.body.data.Get.Item).toBeNull();
  });
});

describe("vectorizer failures and auto-schema off", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    upstream.plan = () => ({ kind: "status", status: 400, body: JSON.stringify({ error: { message: "model overloaded with nonsense" } }) });
    server = await startServer(
      { providers: { up: { type: "openai-compatible", baseURL: upstream.url, apiKey: "k", timeoutMs: 2000 } }, models: { "bad-embed": "up" } },
      { cacheDir: SHARED_CACHE_DIR, autoSchema: false },
    );
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("fails the objects the vectorizer fails, with the reason; objects that carry a vector are not re-vectorized", async () => {
    await call(server, "POST", "/v1/schema", { class: "Doc", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "bad-embed" } }, properties: [{ name: "body", dataType: ["text"] }] });
    await call(server, "POST", "/v1/schema", { class: "Lost", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "no/such-model" } }, properties: [{ name: "body", dataType: ["text"] }] });
    const before = upstream.calls.length;
    const res = await batch(server, [
      { class: "Doc", id: uuid(1), properties: { body: "needs a vector" } },
      { class: "Doc", id: uuid(2), properties: { body: "brought its own" }, vector: [1, 2, 3] },
      { class: "Lost", id: uuid(3), properties: { body: "nobody serves this model" } },
    ]);
    expect(res.status).toBe(200);
    expect(res.body[0].result.status).toBe("FAILED");
    const message = errorsOf(res.body[0])[0]!;
    expect(message).toMatch(/^text2vec-openbatch: Embedding with bad-embed failed: 400 /);
    expect(message).toContain("model overloaded with nonsense");
    expect(res.body[1].result).toEqual({ status: "SUCCESS" });
    expect(errorsOf(res.body[2])).toEqual(['text2vec-openbatch: No provider serves embedding model "no/such-model".']);
    // One embeddings call (for the first object only).
    expect(upstream.calls.slice(before).map((c) => c.body.input)).toEqual([["doc needs a vector"]]);
  });

  it("/v1/nodes batchStats: queueLength counts objects waiting on the vectorizer, ratePerSecond those done", async () => {
    await call(server, "POST", "/v1/schema", { class: "Slow", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "bad-embed" } }, properties: [{ name: "body", dataType: ["text"] }] });
    // The upstream holds the embeddings call a moment, then answers (one embedding, for the one object).
    upstream.plan = () => ({ kind: "delay", ms: 1500, then: { kind: "ok" } });
    let settled = false;
    const pending = batch(server, [{ class: "Slow", id: uuid(50), properties: { body: "waits" } }]).finally(() => (settled = true));
    const stats = async () => (await call(server, "GET", "/v1/nodes")).body.nodes[0].batchStats as { queueLength: number; ratePerSecond: number };
    let seen = 0;
    while (!settled && (seen = (await stats()).queueLength) === 0) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toBe(1);
    const res = await pending;
    expect(res.body[0].result).toEqual({ status: "SUCCESS" });
    const after = await stats();
    expect(after.queueLength).toBe(0);
    expect(after.ratePerSecond).toBeGreaterThan(0);
  });

  it("with auto-schema off, unknown classes and properties fail with Weaviate's messages", async () => {
    const res = await batch(server, [
      { class: "Nope", properties: { a: "b" } },
      { class: "Doc", properties: { body: "x", extra: "y" }, vector: [1, 2, 3] },
    ]);
    expect(errorsOf(res.body[0])).toEqual(["class 'Nope' not present in schema"]);
    expect(errorsOf(res.body[1])).toEqual([
      "no such prop with name 'extra' found in class 'Doc' in the schema. Check your schema files for which properties in this class are available",
    ]);
    expect((await call(server, "GET", "/v1/schema/Nope")).status).toBe(404);
  });
});

describe("auth", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ apiKeys: ["secret-key"] });
  });
  afterAll(async () => {
    await server.close();
  });

  it("needs the key for data, not for the readiness probes; errors in Weaviate's shape", async () => {
    expect((await call(server, "GET", "/v1/.well-known/ready")).status).toBe(200);
    const denied = await call(server, "GET", "/v1/schema");
    expect(denied.status).toBe(401);
    expect(denied.body.error[0].message).toEqual(expect.any(String));
    expect((await call(server, "GET", "/v1/schema", undefined, { authorization: "Bearer secret-key" })).status).toBe(200);
  });
});

describe("persistence", () => {
  it("keeps classes, objects and the vector index across a restart on the same data dir, and rebuilds a lost index", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "openbatch-collections-"));
    try {
      let server = await startServer({}, { dataDir, cacheDir: SHARED_CACHE_DIR });
      await call(server, "POST", "/v1/schema", { class: "Kept", vectorIndexConfig: { distance: "l2-squared" }, properties: [{ name: "n", dataType: ["int"] }] });
      const rand = rng(3);
      const vectors = Array.from({ length: 500 }, () => Array.from({ length: 16 }, () => Math.fround(rand() * 2 - 1)));
      for (let i = 0; i < vectors.length; i += 100) {
        await batch(server, vectors.slice(i, i + 100).map((vector, k) => ({ class: "Kept", id: uuid(i + k), properties: { n: i + k }, vector })));
      }
      const query = `{ Get { Kept(nearVector:{vector:${JSON.stringify(vectors[42])}}, limit:5) { n _additional { id distance } } } }`;
      const before = (await graphql(server, query)).body.data.Get.Kept;
      expect(before[0]).toEqual({ n: 42, _additional: { id: uuid(42), distance: 0 } });
      await server.close();
      expect(existsSync(join(dataDir, "vector-index", "Kept.hnsw"))).toBe(true);

      server = await startServer({}, { dataDir, cacheDir: SHARED_CACHE_DIR });
      expect((await call(server, "GET", "/v1/schema/Kept")).body.class).toBe("Kept");
      expect((await graphql(server, query)).body.data.Get.Kept).toEqual(before);
      expect((await call(server, "GET", `/v1/objects/Kept/${uuid(7)}?include=vector`)).body.vector).toEqual(vectors[7]);
      // Writes after the restart land in the loaded index.
      await batch(server, [{ class: "Kept", id: uuid(999), properties: { n: 999 }, vector: vectors[42]!.map((x) => x + 0.001) }]);
      expect((await graphql(server, query)).body.data.Get.Kept.map((h: any) => h.n).slice(0, 2)).toEqual([42, 999]);
      await server.close();

      // Without the saved index, it is rebuilt from the stored vectors.
      await rm(join(dataDir, "vector-index"), { recursive: true, force: true });
      server = await startServer({}, { dataDir, cacheDir: SHARED_CACHE_DIR });
      expect((await graphql(server, query)).body.data.Get.Kept.map((h: any) => h.n).slice(0, 2)).toEqual([42, 999]);
      await server.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("seed 004 on real data: Jeopardy questions with the local vectorizer", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR });
  });
  afterAll(async () => {
    await server.close();
  });

  it("creates Question, imports 1,000 questions in batches of 200, and nearText 'biology' returns 2 questions with distances", async () => {
    const created = await call(server, "POST", "/v1/schema", { class: "Question", vectorizer: "text2vec-openbatch", moduleConfig: { "text2vec-openbatch": { model: "local/glove-100d" } } });
    expect(created.status).toBe(200);
    for (let i = 0; i < jeopardy.length; i += 200) {
      const objects = jeopardy.slice(i, i + 200).map((d) => ({ class: "Question", properties: { question: d.Question, answer: d.Answer, category: d.Category } }));
      const res = await batch(server, objects);
      expect(res.status).toBe(200);
      expect(res.body.filter((o: any) => o.result.status !== "SUCCESS")).toEqual([]);
    }
    const count = await graphql(server, `{ Aggregate { Question { meta { count } } } }`);
    expect(count.body.data.Aggregate.Question[0].meta.count).toBe(1000);
    const r = await graphql(server, `{ Get { Question(nearText:{concepts:["biology"]}, limit:2) { question answer category _additional { id distance } } } }`);
    expect(r.body.errors).toBeUndefined();
    const hits = r.body.data.Get.Question as { question: string; answer: string; category: string; _additional: { id: string; distance: number } }[];
    expect(hits).toHaveLength(2);
    for (const h of hits) {
      expect(typeof h.question).toBe("string");
      expect(h._additional.distance).toBeGreaterThanOrEqual(0);
      expect(h._additional.distance).toBeLessThan(1);
    }
    expect(hits[0]!._additional.distance).toBeLessThanOrEqual(hits[1]!._additional.distance);
  });
});
