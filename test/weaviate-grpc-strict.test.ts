import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
// The client's own generated codecs (its package exports only "."): raw calls are encoded exactly as it encodes them.
import { AggregateReply, AggregateRequest } from "../node_modules/weaviate-client/dist/node/esm/proto/v1/aggregate.js";
import { SearchReply, SearchRequest } from "../node_modules/weaviate-client/dist/node/esm/proto/v1/search_get.js";
import { startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate } from "./support/weaviate.js";
import { cosineDistance as cosine } from "./support/vectors.js";

/*
 * Issue 12, "nothing silently ignored", over Weaviate's gRPC Search and Aggregate: inputs that used to be dropped or
 * overridden are now served as Weaviate serves them, or refused with Weaviate's message (INVALID_ARGUMENT), or refused
 * as not implemented (UNIMPLEMENTED naming the option). Through weaviate-client 3.14 where the client sends the input,
 * raw gRPC with the client's codecs where only a hand-built request can.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const N = 12;
const vectorOf = (i: number) => [Math.cos(i * 0.4), Math.sin(i * 0.4), 0.5];
const bytes = (v: number[]) => Buffer.from(new Float32Array(v).buffer);

type Answer<T> = { err: grpc.ServiceError | null; reply?: T };

describe("Weaviate gRPC: conflicting or unserved inputs are served as Weaviate does or refused, never dropped", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let raw: grpc.Client;

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await connectWeaviate(server);
    raw = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    await client.collections.create({
      name: "Doc",
      vectorizers: weaviate.configure.vectors.selfProvided({ vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ distanceMetric: "cosine" }) }),
      properties: [
        { name: "title", dataType: "text" },
        { name: "rank", dataType: "int" },
        { name: "pic", dataType: "blob" },
      ],
    });
    const docs = client.collections.use("Doc");
    const r = await docs.data.insertMany(
      Array.from({ length: N }, (_, i) => ({ id: uuid(i), properties: { title: `doc ${i} cell`, rank: i, pic: Buffer.from(`img${i}`).toString("base64") }, vectors: vectorOf(i) })),
    );
    expect(r.hasErrors).toBe(false);
  });
  afterAll(async () => {
    raw?.close();
    await client?.close();
    await server?.close();
  });

  function unary<T>(method: string, encode: (m: any) => Buffer, decode: (b: Buffer) => T, msg: object): Promise<Answer<T>> {
    return new Promise((resolve) => raw.makeUnaryRequest(`/weaviate.v1.Weaviate/${method}`, encode, decode, msg, { deadline: Date.now() + 10_000 }, (err, reply) => resolve({ err, reply })));
  }
  const searchRaw = (m: object) =>
    unary("Search", (x) => Buffer.from(SearchRequest.encode(SearchRequest.fromPartial(x)).finish()), (b) => SearchReply.decode(b), {
      collection: "Doc",
      uses123Api: true,
      uses125Api: true,
      uses127Api: true,
      metadata: { uuid: true },
      ...m,
    });
  const aggregateRaw = (m: object) =>
    unary("Aggregate", (x) => Buffer.from(AggregateRequest.encode(AggregateRequest.fromPartial(x)).finish()), (b) => AggregateReply.decode(b), { collection: "Doc", objectsCount: true, ...m });
  const refused = (a: Answer<unknown>, code: grpc.status, message: string | RegExp) => {
    expect(a.err?.code, a.err ? a.err.details : "answered OK").toBe(code);
    if (typeof message === "string") expect(a.err!.details).toBe(message);
    else expect(a.err!.details).toMatch(message);
  };
  const nearest = (q: number[]) => Array.from({ length: N }, (_, i) => i).sort((a, b) => cosine(q, vectorOf(a)) - cosine(q, vectorOf(b)));

  describe("groupBy (S1-2)", () => {
    it("limit is the number of nearest objects grouped, as in Weaviate; without one, its default 10", async () => {
      const docs = client.collections.use("Doc");
      const q = [1, 0, 0.5];
      // Group names are ranks: the client's groups object lists integer-like keys in numeric order, so compare sets.
      const names = (r: { groups: Record<string, unknown> }) => Object.keys(r.groups).sort();
      const two = await docs.query.nearVector(q, { limit: 2, groupBy: { property: "rank", numberOfGroups: N, objectsPerGroup: 1 } });
      expect(names(two)).toEqual(nearest(q).slice(0, 2).map(String).sort());
      const ten = await docs.query.nearVector(q, { limit: 10, groupBy: { property: "rank", numberOfGroups: N, objectsPerGroup: 1 } });
      expect(names(ten)).toEqual(nearest(q).slice(0, 10).map(String).sort());
      // No limit: Weaviate's default 10 nearest are grouped (GraphQL groupBy alike), not every object.
      const byDefault = await docs.query.nearVector(q, { groupBy: { property: "rank", numberOfGroups: N, objectsPerGroup: 1 } });
      expect(names(byDefault)).toEqual(nearest(q).slice(0, 10).map(String).sort());
    });

    it("offset is refused, as GraphQL refuses it", async () => {
      const docs = client.collections.use("Doc");
      await expect(docs.query.nearVector([1, 0, 0.5], { offset: 3, groupBy: { property: "rank", numberOfGroups: 5, objectsPerGroup: 1 } })).rejects.toThrow(/groupBy cannot be combined with offset/);
      refused(await searchRaw({ nearVector: { vectorBytes: bytes([1, 0, 0.5]) }, offset: 3, groupBy: { path: ["rank"], numberOfGroups: 5, objectsPerGroup: 1 } }), grpc.status.INVALID_ARGUMENT, "groupBy cannot be combined with offset");
    });
  });

  describe("several search operators in one Search (S1-3): Weaviate's messages", () => {
    const nv = { vectorBytes: bytes([1, 0, 0.5]) };
    it("two or three of nearVector, nearObject, nearText", async () => {
      refused(await searchRaw({ nearVector: nv, nearText: { query: ["x"] } }), grpc.status.INVALID_ARGUMENT, "found both 'nearText' and 'nearVector' parameters which are conflicting, choose one instead");
      refused(await searchRaw({ nearVector: nv, nearObject: { id: uuid(4) } }), grpc.status.INVALID_ARGUMENT, "found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead");
      refused(await searchRaw({ nearText: { query: ["x"] }, nearObject: { id: uuid(4) } }), grpc.status.INVALID_ARGUMENT, "found both 'nearText' and 'nearObject' parameters which are conflicting, choose one instead");
      refused(await searchRaw({ nearVector: nv, nearText: { query: ["x"] }, nearObject: { id: uuid(4) } }), grpc.status.INVALID_ARGUMENT, "found 'nearText' and 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead");
    });
    it("bm25 or hybrid with another operator", async () => {
      refused(await searchRaw({ bm25Search: { query: "cell" }, nearObject: { id: uuid(4) } }), grpc.status.INVALID_ARGUMENT, "conflict: both near<Media> and keyword-based (bm25) arguments present, choose one");
      refused(await searchRaw({ hybridSearch: { query: "cell", alpha: 0.5 }, nearVector: nv }), grpc.status.INVALID_ARGUMENT, "found more than one search operator (nearVector, hybrid): use one");
      refused(await searchRaw({ hybridSearch: { query: "cell", alpha: 0.5 }, bm25Search: { query: "cell" } }), grpc.status.INVALID_ARGUMENT, "found more than one search operator (hybrid, bm25): use one");
    });
    it("Aggregate answers the same", async () => {
      refused(await aggregateRaw({ objectLimit: 3, nearVector: nv, nearObject: { id: uuid(4) } }), grpc.status.INVALID_ARGUMENT, "found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead");
    });
  });

  describe("the cursor (after) (S1-4, S3-7): Weaviate's ValidateCursor", () => {
    it("with a search", async () => {
      const msg = "cursor api: invalid 'after' parameter: other params cannot be set with after and limit parameters";
      refused(await searchRaw({ nearVector: { vectorBytes: bytes([1, 0, 0.5]) }, after: uuid(2) }), grpc.status.INVALID_ARGUMENT, msg);
      refused(await searchRaw({ nearObject: { id: uuid(1) }, after: uuid(2) }), grpc.status.INVALID_ARGUMENT, msg);
      refused(await searchRaw({ bm25Search: { query: "cell" }, after: uuid(2) }), grpc.status.INVALID_ARGUMENT, msg);
    });
    it("that is not a uuid: Weaviate's ValidateCursor message, with uuid.Parse's reason", async () => {
      const docs = client.collections.use("Doc");
      await expect(docs.query.fetchObjects({ after: "abc", limit: 2 })).rejects.toThrow(/cursor api: invalid 'after' parameter: after parameter 'abc' is not a valid uuid: invalid UUID length: 3/);
      refused(await searchRaw({ after: "zzzzzzzz-0000-4000-8000-000000000000", limit: 2 }), grpc.status.INVALID_ARGUMENT, "cursor api: invalid 'after' parameter: after parameter 'zzzzzzzz-0000-4000-8000-000000000000' is not a valid uuid: invalid UUID format");
      // uuid.Parse's other forms name the same object: upper case, braces, urn:uuid:, 32 hex digits.
      for (const after of [uuid(0).toUpperCase(), `{${uuid(0)}}`, `urn:uuid:${uuid(0)}`, uuid(0).replace(/-/g, "")]) {
        const page = await searchRaw({ after, limit: 2 });
        expect(page.err, after).toBeNull();
        expect(page.reply!.results.map((r) => r.metadata!.id)).toEqual([uuid(1), uuid(2)]);
      }
    });
    it("with offset, through the client", async () => {
      const docs = client.collections.use("Doc");
      await expect(docs.query.fetchObjects({ after: uuid(0), offset: 2 } as never)).rejects.toThrow(/cursor api: invalid 'after' parameter: offset cannot be set with after and limit parameters/);
      // The cursor alone still pages.
      const page = await docs.query.fetchObjects({ after: uuid(0), limit: 2 });
      expect(page.objects.map((o) => o.uuid)).toEqual([uuid(1), uuid(2)]);
    });
  });

  describe("distance and certainty together (S1-5): Weaviate's messages", () => {
    it("Search nearVector / nearObject / nearText, through the client", async () => {
      const docs = client.collections.use("Doc");
      await expect(docs.query.nearVector([1, 0, 0.5], { distance: 2, certainty: 0.99 })).rejects.toThrow(/near_vector: cannot provide distance and certainty/);
      await expect(docs.query.nearObject(uuid(1), { distance: 2, certainty: 0.99 })).rejects.toThrow(/near_object: cannot provide distance and certainty/);
      await expect(docs.query.nearText("cell", { distance: 2, certainty: 0.99 })).rejects.toThrow(/nearText cannot provide both distance and certainty/);
      // Either alone is served.
      expect((await docs.query.nearVector([1, 0, 0.5], { distance: 2 })).objects.length).toBe(10);
    });
    it("Aggregate nearVector", async () => {
      refused(await aggregateRaw({ objectLimit: 3, nearVector: { vectorBytes: bytes([1, 0, 0.5]), distance: 2, certainty: 0.99 } }), grpc.status.INVALID_ARGUMENT, "near_vector: cannot provide distance and certainty");
    });
  });

  describe("conflicting vectors in one message (S1-7)", () => {
    it("hybrid: a vector and a nearVector sub-search", async () => {
      refused(await searchRaw({ hybridSearch: { query: "cell", alpha: 1, vectorBytes: bytes([1, 0, 0.5]), nearVector: { vectorBytes: bytes([0, 1, 0.5]) } } }), grpc.status.INVALID_ARGUMENT, "cannot combine nearVector and vector in hybrid search");
    });
    it("nearVector: vector_bytes and vector that differ, or a vector and a vector per target", async () => {
      refused(await searchRaw({ nearVector: { vectorBytes: bytes([1, 0, 0.5]), vector: [0, 1, 0.5] } }), grpc.status.INVALID_ARGUMENT, /nearVector: .*vector_bytes.*vector.* different/);
      const same = await searchRaw({ nearVector: { vectorBytes: bytes([1, 0, 0.5]), vector: [1, 0, 0.5] }, limit: 1 });
      expect(same.err).toBeNull();
      expect(same.reply!.results[0]!.metadata!.id).toBe(uuid(nearest([1, 0, 0.5])[0]!));
      refused(await searchRaw({ nearVector: { vectorBytes: bytes([1, 0, 0.5]), vectorPerTarget: { default: bytes([0, 1, 0.5]) } } }), grpc.status.INVALID_ARGUMENT, "near_vector: either vector or VectorPerTarget must be provided, not both");
    });
    it("Aggregate: a vector given for one target while `targets` names another", async () => {
      const a = await aggregateRaw({ objectLimit: 2, nearVector: { targets: { targetVectors: ["a"] }, vectorForTargets: [{ name: "default", vectorBytes: bytes([1, 0, 0.5]) }] } });
      refused(a, grpc.status.INVALID_ARGUMENT, "near_vector: vector for target a is required. All target vectors: [a] all vectors for targets [default]");
    });
  });

  describe("returnMetadata queryProfile (S2-1): UNIMPLEMENTED, naming it", () => {
    it("through the client, alone and with 'all'", async () => {
      const docs = client.collections.use("Doc");
      await expect(docs.query.fetchObjects({ limit: 1, returnMetadata: ["queryProfile"] as never })).rejects.toThrow(/query profiling \(returnMetadata queryProfile\) is not supported by OpenBatch/);
      await expect(docs.query.fetchObjects({ limit: 1, returnMetadata: ["all", "queryProfile"] as never })).rejects.toThrow(/queryProfile/);
      expect((await docs.query.fetchObjects({ limit: 1, returnMetadata: "all" })).objects).toHaveLength(1);
    });
    it("as the status code, and in a reference's metadata", async () => {
      refused(await searchRaw({ limit: 1, metadata: { uuid: true, queryProfile: true } }), grpc.status.UNIMPLEMENTED, /queryProfile/);
      refused(await searchRaw({ limit: 1, properties: { refProperties: [{ referenceProperty: "anything", metadata: { uuid: true, queryProfile: true } }] } }), grpc.status.UNIMPLEMENTED, /queryProfile/);
    });
  });

  describe("listOfVectors (S3-8) in Aggregate: UNIMPLEMENTED, naming it", () => {
    // Search serves it (several query vectors for one target: multi-target-args.ts); Aggregate does not.
    it("Aggregate, through the client", async () => {
      const docs = client.collections.use("Doc");
      const list = weaviate.query.nearVector.listOfVectors([1, 0, 0.5], [0, 1, 0.5]);
      await expect(docs.aggregate.nearVector({ default: list } as never, { targetVector: "default", objectLimit: 2 })).rejects.toThrow(/aggregate nearVector: several query vectors for one target \(listOfVectors\) are not supported by OpenBatch/);
    });
    it("as the status code", async () => {
      const header = Buffer.alloc(2);
      header.writeUInt16LE(3);
      const listBytes = Buffer.concat([header, bytes([1, 0, 0.5]), bytes([0, 1, 0.5])]);
      const a = await aggregateRaw({ objectLimit: 2, nearVector: { targets: { targetVectors: ["default"] }, vectorForTargets: [{ name: "default", vectors: [{ type: 1, vectorBytes: listBytes }] }] } });
      refused(a, grpc.status.UNIMPLEMENTED, /listOfVectors/);
    });
  });

  describe("returnProperties naming a property the class lacks: left out, as Weaviate's reply leaves it", () => {
    // Weaviate's extractPropertiesRequest takes the names as given and prepare_reply.go skips a name the object lacks.
    it("through the client and raw", async () => {
      const docs = client.collections.use("Doc");
      const got = await docs.query.fetchObjects({ limit: 1, returnProperties: ["title", "nope" as never] });
      expect(got.objects[0]!.properties).toEqual({ title: "doc 0 cell" });
      const r = await searchRaw({ limit: 1, properties: { nonRefProperties: ["nope", "rank"] } });
      expect(r.err).toBeNull();
      expect(Object.keys(r.reply!.results[0]!.properties!.nonRefProps?.fields ?? {})).toEqual(["rank"]);
    });
  });

  describe("blob properties (S3-10): left out unless named, as Weaviate does", () => {
    it("fetchObjects and nearVector without returnProperties leave blobs out; naming one returns it", async () => {
      const docs = client.collections.use("Doc");
      const plain = await docs.query.fetchObjects({ limit: 1 });
      expect(Object.keys(plain.objects[0]!.properties).sort()).toEqual(["rank", "title"]);
      const near = await docs.query.nearVector([1, 0, 0.5], { limit: 1 });
      expect(Object.keys(near.objects[0]!.properties).sort()).toEqual(["rank", "title"]);
      const named = await docs.query.fetchObjects({ limit: 1, returnProperties: ["title", "pic"] });
      expect(named.objects[0]!.properties).toEqual({ title: "doc 0 cell", pic: Buffer.from("img0").toString("base64") });
    });
  });
});
