import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { generativeParameters, type WeaviateClient } from "weaviate-client";
// The client's own generated codecs (its package exports only "."): raw calls are encoded exactly as it encodes them.
import { BatchReferencesReply, BatchReferencesRequest, BatchStreamReply, BatchStreamRequest } from "../node_modules/weaviate-client/dist/node/esm/proto/v1/batch.js";
import { startWeaviateGrpc } from "../src/api/weaviate-grpc/server.js";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { postgresReachable } from "./support/postgres.js";
import { connectWeaviate, startServerPair, weaviateCall, type ServerPair } from "./support/weaviate.js";

/*
 * Weaviate's gRPC BatchReferences and server-side batching (BatchStream), through the official weaviate-client 3.14 as
 * a user writes it (`collection.data.ingest`, `client.batch.stream()`, `withTenant`), and raw gRPC for the wire shapes
 * and hostile input. `/v1/meta` reports 1.36.0, the first version the client streams to.
 */

// weaviate-client 3.14 declares Node >= 22 and reads BatchStream acks with Set.prototype.difference (ES2025, Node 22).
// These tests run on Node 20: give it the standard method, as Node 22 has it, so the client runs as on its own platform.
if (!("difference" in Set.prototype)) {
  Object.defineProperty(Set.prototype, "difference", {
    value: function difference<T>(this: Set<T>, other: { has(v: T): boolean }): Set<T> {
      const out = new Set<T>();
      for (const v of this) if (!other.has(v)) out.add(v);
      return out;
    },
    writable: true,
    configurable: true,
  });
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

type Reply = ReturnType<typeof BatchStreamReply.decode>;

/** A raw BatchStream call: `write` encodes with the client's codec, `done` resolves with every reply and the final status. */
function rawStream(port: number, metadata = new grpc.Metadata()) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    "/weaviate.v1.Weaviate/BatchStream",
    (b: Buffer) => b,
    (b: Buffer) => BatchStreamReply.decode(b),
    metadata,
  );
  const replies: Reply[] = [];
  call.on("data", (r: Reply) => replies.push(r));
  const done = new Promise<{ replies: Reply[]; status: grpc.StatusObject }>((resolve) =>
    call.on("status", (status: grpc.StatusObject) => {
      client.close();
      resolve({ replies, status });
    }),
  );
  call.on("error", () => undefined); // the status carries it
  const encode = (m: Parameters<typeof BatchStreamRequest.create>[0]) => Buffer.from(BatchStreamRequest.encode(BatchStreamRequest.create(m)).finish());
  return { call, replies, done, write: (m: Parameters<typeof BatchStreamRequest.create>[0]) => call.write(encode(m)), writeRaw: (b: Buffer) => call.write(b) };
}

const data = (objects: object[], references: object[] = []) => ({ data: { objects: { values: objects }, references: { values: references } } });
const results = (replies: Reply[]) => ({
  errors: replies.flatMap((r) => r.results?.errors ?? []),
  successes: replies.flatMap((r) => r.results?.successes ?? []),
});

describe("gRPC batching through weaviate-client 3.14 (BatchStream, BatchReferences)", () => {
  let server: TestServer;
  let client: WeaviateClient;

  beforeAll(async () => {
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    client = await connectWeaviate(server);
    await client.collections.create({
      name: "Author",
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "name", dataType: "text" }, { name: "born", dataType: "int" }],
    });
    await client.collections.create({
      name: "Book",
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "title", dataType: "text" }],
      references: [{ name: "writtenBy", targetCollection: "Author" }],
    });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("reports Weaviate 1.36.0, so the client streams", async () => {
    expect((await client.getWeaviateVersion()).show()).toBe("1.36.0");
    expect((await weaviateCall(server, "GET", "/v1/meta")).body.version).toBe("1.36.0");
  });

  it("ingest(): several thousand objects over the stream, each answered, a bad one failing alone with its uuid", async () => {
    const authors = client.collections.get("Author");
    const objs = Array.from({ length: 2_500 }, (_, i) => ({ id: uuid(i + 1), properties: { name: `author ${i}`, born: i === 1_234 ? ("long ago" as unknown as number) : 1900 + (i % 100) } }));
    const res = await authors.data.ingest(objs);
    expect(Object.keys(res.uuids)).toHaveLength(2_499);
    expect(res.hasErrors).toBe(true);
    expect(Object.keys(res.errors)).toEqual(["1234"]);
    expect(res.errors[1234]!.object.id).toBe(uuid(1_235));
    expect(res.errors[1234]!.message).toBe("invalid integer property 'born' on class 'Author': requires an integer, the given value is 'long ago'");
    expect(res.uuids[0]).toBe(uuid(1));
    expect(res.allResponses).toHaveLength(2_500);
    expect((await authors.aggregate.overAll()).totalCount).toBe(2_499);
    expect((await authors.query.fetchObjectById(uuid(2_500)))?.properties).toEqual({ name: "author 2499", born: 1900 + (2_499 % 100) });
    expect(await authors.query.fetchObjectById(uuid(1_235))).toBeNull();
  });

  it("a producer slower than the stream (a full message sent before its next object) still finishes", async () => {
    // The 3.14 client's addObject waits while the in-flight count it read on entry is at least the batch size; entered
    // right after a full message left, it ends only when the server raises the batch size.
    const stream = await client.batch.stream();
    for (let i = 0; i < 2_100; i++) {
      await stream.addObject({ collection: "Author", id: uuid(10_000 + i), properties: { name: "slow", born: i } });
      await new Promise((r) => setImmediate(r));
    }
    await stream.stop();
    expect(Object.keys(stream.uuids())).toHaveLength(2_100);
    expect(stream.hasErrors()).toBe(false);
  });

  it("client.batch.stream(): objects and references in one stream; references resolve, a bad one fails by its beacon", async () => {
    const stream = await client.batch.stream();
    const book = await stream.addObject({ collection: "Book", id: uuid(9_001), properties: { title: "Streams" } });
    await stream.addReference({ fromObjectCollection: "Book", fromObjectUuid: book, fromPropertyName: "writtenBy", toObjectCollection: "Author", toObjectUuid: uuid(1) });
    await stream.addReference({ fromObjectCollection: "Book", fromObjectUuid: book, fromPropertyName: "noSuchProp", toObjectUuid: uuid(2) });
    await stream.stop();
    expect(stream.objErrors()).toEqual({});
    expect(Object.values(stream.uuids())).toEqual([uuid(9_001)]);
    expect(Object.values(stream.beacons())).toEqual([`weaviate://localhost/Book/${uuid(9_001)}/writtenBy`]);
    const refErrors = Object.values(stream.refErrors());
    expect(refErrors).toHaveLength(1);
    expect(refErrors[0]!.message).toBe("property noSuchProp does not exist for class Book");
    // The client hands back the reference it was given (its d.ts types it as the REST shape).
    expect((refErrors[0]!.reference as unknown as { fromPropertyName: string }).fromPropertyName).toBe("noSuchProp");

    const got = await weaviateCall(server, "GET", `/v1/objects/Book/${uuid(9_001)}`);
    expect(got.body.properties.writtenBy).toEqual([{ beacon: `weaviate://localhost/Author/${uuid(1)}`, href: `/v1/objects/Author/${uuid(1)}` }]);
    const gql = await weaviateCall(server, "POST", "/v1/graphql", { query: `{ Get { Book(where: {path: ["id"], operator: Equal, valueText: "${uuid(9_001)}"}) { title writtenBy { ... on Author { name } } } } }` });
    expect(gql.body.data.Get.Book).toEqual([{ title: "Streams", writtenBy: [{ name: "author 0" }] }]);
  });

  it("withTenant(...).data.ingest(): objects land in that tenant only; without a tenant each object fails with Weaviate's message", async () => {
    await client.collections.create({
      name: "Diary",
      multiTenancy: weaviate.configure.multiTenancy({ enabled: true }),
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "text", dataType: "text" }],
    });
    const diary = client.collections.get("Diary");
    await diary.tenants.create([{ name: "alice" }, { name: "bob" }]);
    const res = await diary.withTenant("alice").data.ingest([{ properties: { text: "dear diary" } }, { properties: { text: "again" } }]);
    expect(res.hasErrors).toBe(false);
    expect(Object.keys(res.uuids)).toHaveLength(2);
    expect((await diary.withTenant("alice").query.fetchObjects()).objects.map((o) => o.properties.text).sort()).toEqual(["again", "dear diary"]);
    expect((await diary.withTenant("bob").query.fetchObjects()).objects).toHaveLength(0);

    const untenanted = await diary.data.ingest([{ properties: { text: "nobody's" } }]);
    expect(untenanted.errors[0]!.message).toMatch(/multi-tenancy enabled, but request was without tenant/);
    const unknown = await diary.withTenant("zed").data.ingest([{ properties: { text: "x" } }]);
    expect(unknown.errors[0]!.message).toBe('tenant not found: "zed"');
  });

  it("data.referenceAddMany (REST /v1/batch/references in 3.14 at every version): added, an error at its index", async () => {
    const books = client.collections.get("Book");
    await books.data.insert({ id: uuid(9_002), properties: { title: "Many" } });
    const res = await books.data.referenceAddMany([
      { fromUuid: uuid(9_002), fromProperty: "writtenBy", to: [uuid(2), uuid(3)] },
      { fromUuid: uuid(9_999), fromProperty: "writtenBy", to: uuid(4) },
    ]);
    expect(Object.keys(res.errors)).toEqual(["2"]);
    expect(res.errors[2]!.message).toBe(`source object Book/${uuid(9_999)} not found`);
    const got = await weaviateCall(server, "GET", `/v1/objects/Book/${uuid(9_002)}`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${uuid(2)}`, `weaviate://localhost/Author/${uuid(3)}`]);
  });

  it("raw BatchReferences: failures by index, the rest stored; an empty request answers no errors", async () => {
    const raw = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const unary = (req: Parameters<typeof BatchReferencesRequest.create>[0]) =>
      new Promise<{ err: grpc.ServiceError | null; reply?: ReturnType<typeof BatchReferencesReply.decode> }>((resolve) =>
        raw.makeUnaryRequest(
          "/weaviate.v1.Weaviate/BatchReferences",
          (r: typeof req) => Buffer.from(BatchReferencesRequest.encode(BatchReferencesRequest.create(r)).finish()),
          (b: Buffer) => BatchReferencesReply.decode(b),
          req,
          (err, reply) => resolve({ err, reply }),
        ),
      );
    await client.collections.get("Book").data.insert({ id: uuid(9_003), properties: { title: "Raw" } });
    const { err, reply } = await unary({
      references: [
        { name: "writtenBy", fromCollection: "Book", fromUuid: uuid(9_003), toCollection: "Author", toUuid: uuid(5) },
        { name: "writtenBy", fromCollection: "Book", fromUuid: uuid(9_003), toCollection: "Nowhere", toUuid: uuid(6) },
        { name: "writtenBy", fromCollection: "Book", fromUuid: uuid(9_003), toUuid: uuid(7) },
      ],
    });
    expect(err).toBeNull();
    expect(reply!.errors).toEqual([{ index: 1, error: 'target class "Nowhere" not found in schema' }]);
    const got = await weaviateCall(server, "GET", `/v1/objects/Book/${uuid(9_003)}`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${uuid(5)}`, `weaviate://localhost/Author/${uuid(7)}`]);
    expect((await unary({ references: [] })).reply!.errors).toEqual([]);
    const garbage = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest("/weaviate.v1.Weaviate/BatchReferences", (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x10, 0x41]), (e) => resolve(e)),
    );
    expect(garbage?.code).toBe(grpc.status.INVALID_ARGUMENT);
    raw.close();
  });

  it("raw BatchStream: backoff and started, then acks and results per message, then OK", async () => {
    const s = rawStream(server.grpcPort!);
    s.write({ start: {} });
    s.write(data([{ collection: "Author", uuid: uuid(7_001), properties: { nonRefProperties: { name: "raw" } } }]));
    s.write(data([], [{ name: "writtenBy", fromCollection: "Book", fromUuid: uuid(9_003), toCollection: "Author", toUuid: uuid(7_001) }]));
    s.write({ stop: {} });
    s.call.end();
    const { replies, status } = await s.done;
    expect(status.code).toBe(grpc.status.OK);
    expect(replies.slice(0, 2)).toEqual([{ backoff: { batchSize: 1_000 } }, { started: {} }]);
    const acks = replies.filter((r) => r.acks).map((r) => r.acks);
    expect(acks).toEqual([
      { uuids: [uuid(7_001)], beacons: [] },
      { uuids: [], beacons: [`weaviate://localhost/Book/${uuid(9_003)}/writtenBy`] },
    ]);
    expect(results(replies)).toEqual({ errors: [], successes: [{ uuid: uuid(7_001) }, { beacon: `weaviate://localhost/Book/${uuid(9_003)}/writtenBy` }] });
    expect((await weaviateCall(server, "GET", `/v1/objects/Book/${uuid(9_003)}`)).body.properties.writtenBy).toHaveLength(3);
  });

  it("a message that fills the batch size raises it by one (the client's addObject wait ends only on a larger size)", async () => {
    const s = rawStream(server.grpcPort!);
    s.write({ start: {} });
    s.write(data(Array.from({ length: 1_000 }, (_, i) => ({ collection: "Author", uuid: uuid(20_000 + i), properties: { nonRefProperties: { name: "full" } } }))));
    s.write({ stop: {} });
    s.call.end();
    const { replies, status } = await s.done;
    expect(status.code).toBe(grpc.status.OK);
    expect(replies.filter((r) => r.backoff).map((r) => r.backoff!.batchSize)).toEqual([1_000, 1_001]);
    expect(results(replies).successes).toHaveLength(1_000);
  });

  describe("hostile or broken streams get a clean status, and what was accepted is still imported and answered", () => {
    const statusOf = async (writes: (s: ReturnType<typeof rawStream>) => void) => {
      const s = rawStream(server.grpcPort!);
      writes(s);
      s.call.end();
      return s.done;
    };

    it("data before start", async () => {
      const { status } = await statusOf((s) => s.write(data([{ collection: "Author", uuid: uuid(30_001) }])));
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toBe("BatchStream: the first message must be start, not data");
    });

    it("a second start, an empty message, a bad consistency level", async () => {
      expect((await statusOf((s) => (s.write({ start: {} }), s.write({ start: {} })))).status.details).toBe("BatchStream: start was already sent on this stream");
      const empty = await statusOf((s) => (s.write({ start: {} }), s.writeRaw(Buffer.alloc(0))));
      expect(empty.status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(empty.status.details).toBe("BatchStream: each message must set exactly one of start, data, stop (this one sets none)");
      const level = await statusOf((s) => s.writeRaw(Buffer.from([0x0a, 0x02, 0x08, 0x09])));
      expect(level.status.details).toBe("BatchStream: start.consistency_level 9 is not a ConsistencyLevel (0-3)");
    });

    it("bytes that are no protobuf, after a data message: the data is imported and answered first", async () => {
      const { replies, status } = await statusOf((s) => {
        s.write({ start: {} });
        s.write(data([{ collection: "Author", uuid: uuid(30_002), properties: { nonRefProperties: { name: "before garbage" } } }]));
        s.writeRaw(Buffer.from([0x0a, 0x10, 0x41]));
      });
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toMatch(/^The BatchStream request is not a valid protobuf message \(.+\)\.$/);
      expect(results(replies).successes).toEqual([{ uuid: uuid(30_002) }]);
      expect((await weaviateCall(server, "GET", `/v1/objects/Author/${uuid(30_002)}`)).status).toBe(200);
    });

    it("data after stop: refused, what came before it answered", async () => {
      const s = rawStream(server.grpcPort!);
      s.write({ start: {} });
      s.write(data([{ collection: "Author", uuid: uuid(30_004), properties: { nonRefProperties: { name: "before stop" } } }]));
      s.write({ stop: {} });
      s.write(data([{ collection: "Author", uuid: uuid(30_005), properties: { nonRefProperties: { name: "after stop" } } }]));
      s.call.end();
      const { replies, status } = await s.done;
      expect(results(replies).successes).toEqual([{ uuid: uuid(30_004) }]);
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toBe("BatchStream: data after stop");
      expect((await weaviateCall(server, "GET", `/v1/objects/Author/${uuid(30_005)}`)).status).toBe(404);
    });

    it("a message over 16 MiB: RESOURCE_EXHAUSTED naming the limit", async () => {
      const big = "x".repeat(17 * 1024 * 1024);
      const { status } = await statusOf((s) => (s.write({ start: {} }), s.write(data([{ collection: "Author", uuid: uuid(30_003), properties: { nonRefProperties: { name: big } } }]))));
      expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(status.details).toMatch(/larger than the 16777216 bytes accepted/);
      expect((await weaviateCall(server, "GET", `/v1/objects/Author/${uuid(30_003)}`)).status).toBe(404);
    });

    it("stop without a half-close: the call still ends, OK, with everything answered", async () => {
      const s = rawStream(server.grpcPort!);
      s.write({ start: {} });
      s.write(data([{ collection: "Author", uuid: uuid(30_006), properties: { nonRefProperties: { name: "no half-close" } } }]));
      s.write({ stop: {} });
      const { replies, status } = await s.done;
      expect(status.code).toBe(grpc.status.OK);
      expect(results(replies).successes).toEqual([{ uuid: uuid(30_006) }]);
    });

    it("a client that goes away after sending: what it sent is imported all the same", async () => {
      const s = rawStream(server.grpcPort!);
      s.write({ start: {} });
      s.write(data(Array.from({ length: 50 }, (_, i) => ({ collection: "Author", uuid: uuid(40_000 + i), properties: { nonRefProperties: { name: "orphan" } } }))));
      // Cancel once the server has acknowledged the message (it is then accepted).
      await new Promise<void>((resolve) => {
        const check = () => (s.replies.some((r) => r.acks) ? resolve() : setTimeout(check, 5));
        check();
      });
      s.call.cancel();
      expect((await s.done).status.code).toBe(grpc.status.CANCELLED);
      const authors = client.collections.get("Author");
      for (let i = 0; i < 200 && (await authors.query.fetchObjectById(uuid(40_049))) === null; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await authors.query.fetchObjectById(uuid(40_049))).not.toBeNull();
    });
  });

  it("a server that stops: shutting_down, then the results of what it accepted, then OK", async () => {
    const extra = await startWeaviateGrpc({ collections: server.app.collections, port: 0, host: "127.0.0.1" });
    const s = rawStream(extra.port);
    s.write({ start: {} });
    s.write(data([{ collection: "Author", uuid: uuid(50_001), properties: { nonRefProperties: { name: "at shutdown" } } }]));
    await new Promise<void>((resolve) => {
      const check = () => (s.replies.some((r) => r.acks) ? resolve() : setTimeout(check, 5));
      check();
    });
    const closing = extra.close();
    // The client half-closes when told the server is shutting down.
    await new Promise<void>((resolve) => {
      const check = () => (s.replies.some((r) => r.shuttingDown) ? resolve() : setTimeout(check, 5));
      check();
    });
    s.call.end();
    const { replies, status } = await s.done;
    await closing;
    expect(status.code).toBe(grpc.status.OK);
    expect(results(replies).successes).toEqual([{ uuid: uuid(50_001) }]);
    expect((await weaviateCall(server, "GET", `/v1/objects/Author/${uuid(50_001)}`)).status).toBe(200);
  });

  it("what 1.30+ lets the client send that we do not serve is refused loudly: generate with a runtime config", async () => {
    const authors = client.collections.get("Author");
    await expect(authors.generate.fetchObjects({ singlePrompt: "hi", config: generativeParameters.openAI({ model: "gpt-4o" }) })).rejects.toThrow(/generative search \(generate\)/);
  });
});

describe("gRPC batching with API keys", () => {
  const OWNER = "owner-key";
  const OTHER = "other-key";
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ apiKeys: [OWNER, OTHER] }, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    const res = await fetch(server.url.replace(/\/v1$/, "") + "/v1/schema", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${OWNER}` },
      body: JSON.stringify({ class: "Secret", vectorizer: "none", properties: [{ name: "text", dataType: ["text"] }] }),
    });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await server?.close();
  });

  const keyed = (header: string, value: string) => {
    const m = new grpc.Metadata();
    m.set(header, value);
    return m;
  };

  it("no key: UNAUTHENTICATED before anything is read", async () => {
    const s = rawStream(server.grpcPort!);
    s.write({ start: {} });
    s.call.end();
    expect((await s.done).status.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("the owner's key (x-api-key or Bearer) imports; another key's objects fail one by one with Weaviate's 403 message", async () => {
    for (const [md, n] of [[keyed("x-api-key", OWNER), 1], [keyed("authorization", `Bearer ${OWNER}`), 2]] as const) {
      const s = rawStream(server.grpcPort!, md);
      s.write({ start: {} });
      s.write(data([{ collection: "Secret", uuid: uuid(n), properties: { nonRefProperties: { text: "mine" } } }]));
      s.write({ stop: {} });
      s.call.end();
      const { replies, status } = await s.done;
      expect(status.code).toBe(grpc.status.OK);
      expect(results(replies)).toEqual({ errors: [], successes: [{ uuid: uuid(n) }] });
    }
    const s = rawStream(server.grpcPort!, keyed("authorization", `Bearer ${OTHER}`));
    s.write({ start: {} });
    s.write(data([{ collection: "Secret", uuid: uuid(3), properties: { nonRefProperties: { text: "theirs" } } }]));
    s.write({ stop: {} });
    s.call.end();
    const { replies, status } = await s.done;
    expect(status.code).toBe(grpc.status.OK);
    const { errors } = results(replies);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.uuid).toBe(uuid(3));
    expect(errors[0]!.error).toMatch(/insufficient permissions/);
  });
});

describe.skipIf(!(await postgresReachable()))("gRPC batching on two API servers sharing PostgreSQL", () => {
  let pair: ServerPair;
  beforeAll(async () => {
    pair = await startServerPair();
  });
  afterAll(async () => {
    await pair?.close();
  });

  it("a stream into one server writes the collection another created; the other reads objects and references", async () => {
    await pair.cb.collections.create({ name: "Person", vectorizers: weaviate.configure.vectorizer.none(), properties: [{ name: "name", dataType: "text" }], references: [{ name: "knows", targetCollection: "Person" }] });
    const stream = await pair.ca.batch.stream();
    await stream.addObject({ collection: "Person", id: uuid(1), properties: { name: "ada" } });
    await stream.addObject({ collection: "Person", id: uuid(2), properties: { name: "bob" } });
    await stream.addReference({ fromObjectCollection: "Person", fromObjectUuid: uuid(1), fromPropertyName: "knows", toObjectCollection: "Person", toObjectUuid: uuid(2) });
    await stream.stop();
    expect([stream.hasErrors(), Object.keys(stream.uuids()).length, Object.keys(stream.beacons()).length]).toEqual([false, 2, 1]);
    const got = await weaviateCall(pair.b, "GET", `/v1/objects/Person/${uuid(1)}`);
    expect(got.body.properties).toEqual({ name: "ada", knows: [{ beacon: `weaviate://localhost/Person/${uuid(2)}`, href: `/v1/objects/Person/${uuid(2)}` }] });
    // No second class was made by auto-schema on the streaming server.
    expect((await pair.cb.collections.listAll()).map((c) => c.name)).toEqual(["Person"]);
  });
});
