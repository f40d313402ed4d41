import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WeaviateClient } from "weaviate-client";
// The client's own generated codecs (its package exports only "."): raw calls are encoded exactly as it encodes them.
import { SearchReply, SearchRequest } from "../node_modules/weaviate-client/dist/node/esm/proto/v1/search_get.js";
import { AggregateReply, AggregateRequest } from "../node_modules/weaviate-client/dist/node/esm/proto/v1/aggregate.js";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";
import { cosineDistance } from "./support/vectors.js";

/*
 * Issues 12 / 14: nearText `moveTo` / `moveAwayFrom` (gRPC move_to / move_away), through weaviate-client 3.14 and raw
 * GraphQL, on a text2vec-ollama collection mapped to local/glove-100d. Each object's text is embedded alone, so the
 * stored vector of "chemistry" is the vector of the concept "chemistry": the expected query vectors are computed here
 * from the stored vectors with Weaviate's movement formulas (moveTo s·(1−f/2) + t·f/2, moveAwayFrom s + (f/2)·(s − t),
 * t the mean of the concepts' mean and each object's vector), and every returned distance is checked against them.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const TEXTS = ["biology", "chemistry", "finance", "football", "music", "ocean", "the bank raised interest rates", "the team scored a late goal", "cells divide and grow"];
const idOf = (text: string) => uuid(TEXTS.indexOf(text));

const mean = (vs: number[][]) => vs[0]!.map((_, i) => vs.reduce((s, v) => s + v[i]!, 0) / vs.length);
const moveTo = (s: number[], t: number[], f: number) => s.map((x, i) => x * (1 - f / 2) + t[i]! * (f / 2));
const moveAway = (s: number[], t: number[], f: number) => s.map((x, i) => x + (f / 2) * (x - t[i]!));

describe("nearText moveTo / moveAwayFrom", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let raw: grpc.Client;
  const vec = new Map<string, number[]>();
  const v = (text: string) => vec.get(idOf(text))!;
  const gql = async (query: string) => (await weaviateCall(server, "POST", "/v1/graphql", { query })).body;
  const gqlError = async (query: string) => {
    const r = await gql(query);
    expect(r.errors, JSON.stringify(r)).toBeDefined();
    return String(r.errors[0].message);
  };
  const searchRaw = (m: object) =>
    new Promise<{ err: grpc.ServiceError | null; reply?: SearchReply }>((resolve) =>
      raw.makeUnaryRequest(
        "/weaviate.v1.Weaviate/Search",
        (x: any) => Buffer.from(SearchRequest.encode(SearchRequest.fromPartial(x)).finish()),
        (b: Buffer) => SearchReply.decode(b),
        { collection: "Sentence", uses123Api: true, uses125Api: true, uses127Api: true, metadata: { uuid: true, distance: true }, ...m },
        { deadline: Date.now() + 10_000 },
        (err, reply) => resolve({ err, reply }),
      ),
    );
  /** Every returned object's distance is its distance to `query`, and they come nearest first. */
  const expectDistances = (got: { id: string; distance: number }[], query: number[]) => {
    expect(got).toHaveLength(TEXTS.length);
    const want = [...vec].map(([id, w]) => ({ id, d: cosineDistance(query, w) })).sort((a, b) => a.d - b.d);
    for (const g of got) expect(g.distance, g.id).toBeCloseTo(cosineDistance(query, vec.get(g.id)!), 4);
    expect(got.map((g) => g.id)).toEqual(want.map((w) => w.id));
  };
  const viaClient = (r: { objects: { uuid: string; metadata?: { distance?: number } }[] }) => r.objects.map((o) => ({ id: o.uuid, distance: o.metadata!.distance! }));
  const viaGql = (body: any) => {
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return (body.data.Get.Sentence as any[]).map((o) => ({ id: o._additional.id as string, distance: o._additional.distance as number }));
  };

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0, cacheDir: SHARED_CACHE_DIR });
    client = await connectWeaviate(server);
    raw = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const created = await weaviateCall(server, "POST", "/v1/schema", {
      class: "Sentence",
      vectorizer: "text2vec-ollama",
      moduleConfig: { "text2vec-ollama": { apiEndpoint: "http://127.0.0.1:9", model: "local/glove-100d", vectorizeClassName: false } },
      properties: [{ name: "text", dataType: ["text"], moduleConfig: { "text2vec-ollama": { vectorizePropertyName: false } } }],
    });
    expect(created.status).toBe(200);
    const r = await client.collections.use("Sentence").data.insertMany(TEXTS.map((text, i) => ({ id: uuid(i), properties: { text } })));
    expect(r.hasErrors).toBe(false);
    const stored = await client.collections.use("Sentence").query.fetchObjects({ includeVector: true, limit: 100 });
    for (const o of stored.objects) vec.set(o.uuid, o.vectors.default as number[]);
    expect(vec.size).toBe(TEXTS.length);
  }, 60_000);
  afterAll(async () => {
    raw?.close();
    await client?.close();
    await server?.close();
  });

  it("moveTo concepts: the query moves toward them (client over gRPC, and GraphQL)", async () => {
    const want = moveTo(v("biology"), v("finance"), 0.6);
    const sentences = client.collections.use("Sentence");
    const got = await sentences.query.nearText("biology", { limit: 20, moveTo: { force: 0.6, concepts: ["finance"] }, returnMetadata: ["distance"] });
    expectDistances(viaClient(got), want);
    expectDistances(viaGql(await gql(`{ Get { Sentence(nearText:{concepts:["biology"], moveTo:{force:0.6, concepts:["finance"]}}, limit:20) { _additional { id distance } } } }`)), want);
    // The move changed the search: unmoved, "finance" is not the second nearest.
    const plain = await sentences.query.nearText("biology", { limit: 20, returnMetadata: ["distance"] });
    expect(plain.objects.findIndex((o) => o.uuid === idOf("finance"))).toBeGreaterThan(got.objects.findIndex((o) => o.uuid === idOf("finance")));
  });

  it("moveTo concepts and objects: the target is the mean of the concepts' vector and each object's", async () => {
    const target = mean([mean([v("chemistry"), v("music")]), v("football"), v("ocean")]);
    const want = moveTo(mean([v("biology"), v("finance")]), target, 0.9);
    // A target that averaged every concept and object alike would be another vector: the test tells them apart.
    const flat = moveTo(mean([v("biology"), v("finance")]), mean([v("chemistry"), v("music"), v("football"), v("ocean")]), 0.9);
    expect(cosineDistance(want, flat)).toBeGreaterThan(1e-3);
    const got = await client.collections.use("Sentence").query.nearText(["biology", "finance"], { limit: 20, moveTo: { force: 0.9, concepts: ["chemistry", "music"], objects: [idOf("football"), idOf("ocean")] }, returnMetadata: ["distance"] });
    expectDistances(viaClient(got), want);
    const byId = `{id:"${idOf("football")}"}, {beacon:"weaviate://localhost/Sentence/${idOf("ocean")}"}`;
    expectDistances(viaGql(await gql(`{ Get { Sentence(nearText:{concepts:["biology", "finance"], moveTo:{force:0.9, concepts:["chemistry", "music"], objects:[${byId}]}}, limit:20) { _additional { id distance } } } }`)), want);
    // Objects alone.
    const only = await client.collections.use("Sentence").query.nearText("biology", { limit: 20, moveTo: { force: 0.5, objects: [idOf("football")] }, returnMetadata: ["distance"] });
    expectDistances(viaClient(only), moveTo(v("biology"), v("football"), 0.5));
  });

  it("moveAwayFrom: the query moves away, force above 1 allowed", async () => {
    const want = moveAway(v("chemistry"), v("biology"), 1.5);
    const got = await client.collections.use("Sentence").query.nearText("chemistry", { limit: 20, moveAway: { force: 1.5, concepts: ["biology"] }, returnMetadata: ["distance"] });
    expectDistances(viaClient(got), want);
    expectDistances(viaGql(await gql(`{ Get { Sentence(nearText:{concepts:["chemistry"], moveAwayFrom:{force:1.5, concepts:["biology"]}}, limit:20) { _additional { id distance } } } }`)), want);
  });

  it("both: moveTo first, then moveAwayFrom from the moved vector", async () => {
    const want = moveAway(moveTo(v("biology"), v("ocean"), 0.8), v("chemistry"), 0.7);
    const otherOrder = moveTo(moveAway(v("biology"), v("chemistry"), 0.7), v("ocean"), 0.8);
    expect(cosineDistance(want, otherOrder)).toBeGreaterThan(1e-4);
    const got = await client.collections.use("Sentence").query.nearText("biology", { limit: 20, moveTo: { force: 0.8, concepts: ["ocean"] }, moveAway: { force: 0.7, concepts: ["chemistry"] }, returnMetadata: ["distance"] });
    expectDistances(viaClient(got), want);
    expectDistances(viaGql(await gql(`{ Get { Sentence(nearText:{concepts:["biology"], moveAwayFrom:{force:0.7, concepts:["chemistry"]}, moveTo:{force:0.8, concepts:["ocean"]}}, limit:20) { _additional { id distance } } } }`)), want);
  });

  it("force 0 moves nothing, even without concepts (as Weaviate)", async () => {
    const got = await gql(`{ Get { Sentence(nearText:{concepts:["biology"], moveTo:{force:0}, moveAwayFrom:{force:0, concepts:["music"]}}, limit:20) { _additional { id distance } } } }`);
    expectDistances(viaGql(got), v("biology"));
  });

  it("hybrid's nearText sub-search carries its moves (client over gRPC)", async () => {
    const sentences = client.collections.use("Sentence");
    const want = moveTo(v("biology"), v("finance"), 0.6);
    const ranked = [...vec].map(([id, w]) => ({ id, d: cosineDistance(want, w) })).sort((a, b) => a.d - b.d);
    const unmoved = [...vec].map(([id, w]) => ({ id, d: cosineDistance(v("biology"), w) })).sort((a, b) => a.d - b.d);
    expect(ranked.slice(0, 5).map((r) => r.id)).not.toEqual(unmoved.slice(0, 5).map((r) => r.id));
    // alpha 1: the vector part alone orders the hits; the query text differs from the concepts to show which is embedded.
    const got = await sentences.query.hybrid("zzz", { alpha: 1, limit: 5, vector: { query: "biology", moveTo: { force: 0.6, concepts: ["finance"] } } });
    expect(got.objects.map((o) => o.uuid)).toEqual(ranked.slice(0, 5).map((r) => r.id));
    const r = await searchRaw({ hybridSearch: { query: "zzz", alpha: 1, vectorBytes: Buffer.from(new Float32Array(want).buffer), nearText: { query: ["biology"] } } });
    expect(r.err?.details).toBe("cannot combine nearText and query in hybrid search");
  });

  it("GraphQL hybrid's searches: [{nearText}] carries its moves", async () => {
    const want = moveTo(v("biology"), v("finance"), 0.6);
    const ranked = [...vec].map(([id, w]) => ({ id, d: cosineDistance(want, w) })).sort((a, b) => a.d - b.d);
    const unmoved = [...vec].map(([id, w]) => ({ id, d: cosineDistance(v("biology"), w) })).sort((a, b) => a.d - b.d);
    expect(ranked.slice(0, 5).map((r) => r.id)).not.toEqual(unmoved.slice(0, 5).map((r) => r.id));
    const body = await gql(`{ Get { Sentence(hybrid:{query:"zzz", alpha:1, searches:[{nearText:{concepts:["biology"], moveTo:{force:0.6, concepts:["finance"]}}}]}, limit:5) { _additional { id } } } }`);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect((body.data.Get.Sentence as any[]).map((o) => o._additional.id)).toEqual(ranked.slice(0, 5).map((r) => r.id));
    const vector = JSON.stringify(want);
    expect(await gqlError(`{ Get { Sentence(hybrid:{query:"zzz", vector:${vector}, searches:[{nearText:{concepts:["biology"]}}]}) { text } } }`)).toBe("cannot combine nearText and query in hybrid search");
    expect(await gqlError(`{ Get { Sentence(hybrid:{query:"zzz", searches:[{nearText:{concepts:["biology"]}, nearVector:{vector:${vector}}}]}) { text } } }`)).toBe("cannot combine nearText and nearVector in hybrid search");
    expect(await gqlError(`{ Get { Sentence(hybrid:{query:"zzz", searches:[{nearText:{concepts:["a"]}}, {nearText:{concepts:["b"]}}]}) { text } } }`)).toMatch(/searches takes one sub-search/);
    expect(await gqlError(`{ Get { Sentence(hybrid:{query:"zzz", searches:[{nearText:{concepts:["a"], distance:0.5}}]}) { text } } }`)).toMatch(/'distance' is not supported by OpenBatch/);
  });

  it("bad moves are refused with Weaviate's messages (gRPC and GraphQL)", async () => {
    const sentences = client.collections.use("Sentence");
    const near = (opts: object) => sentences.query.nearText("biology", { limit: 2, ...opts });
    await expect(near({ moveTo: { force: 1.5, concepts: ["finance"] } })).rejects.toThrow(/movement: force must be between 0 and 1: got 1\.500000/);
    await expect(near({ moveTo: { force: -0.5, concepts: ["finance"] } })).rejects.toThrow(/movement: force must be between 0 and 1: got -0\.500000/);
    await expect(near({ moveAway: { force: -1, concepts: ["finance"] } })).rejects.toThrow(/movement \(moveAwayFrom\): force must be 0 or positive: got -1\.000000/);
    await expect(near({ moveTo: { force: 0.5 } })).rejects.toThrow(/'nearText.moveTo' parameter needs to have defined either 'concepts' or 'objects' fields/);
    await expect(near({ moveAway: { force: 0.5, concepts: [] } })).rejects.toThrow(/'nearText.moveAwayFrom' parameter needs to have defined either 'concepts' or 'objects' fields/);
    await expect(near({ moveTo: { force: 0.5, objects: [uuid(999)] } })).rejects.toThrow(/vectorize move to: vector not found/);
    await expect(near({ moveAway: { force: 0.5, objects: ["abc"] } })).rejects.toThrow(/invalid UUID length: 3/);

    const get = (near: string) => gqlError(`{ Get { Sentence(nearText:{concepts:["biology"], ${near}}) { text } } }`);
    expect(await get(`moveTo:{force:2, concepts:["x"]}`)).toMatch(/movement: force must be between 0 and 1: got 2\.000000/);
    expect(await get(`moveTo:{concepts:["x"]}`)).toMatch(/In field "moveTo": In field "force": Expected "Float!", found null/);
    expect(await get(`moveTo:{force:0.5, concept:["x"]}`)).toMatch(/In field "moveTo": In field "concept": Unknown field/);
    expect(await get(`moveAwayFrom:{force:0.5}`)).toMatch(/'nearText.moveAwayFrom' parameter needs to have defined either 'concepts' or 'objects' fields/);
    expect(await get(`moveTo:{force:0.5, objects:[{id:"nope"}]}`)).toMatch(/id 'nope' is not a valid uuid/);
    expect(await get(`moveTo:{force:0.5, objects:[{}]}`)).toMatch(/give the object's id or beacon/);
    expect(await get(`moveTo:{force:0.5, objects:[{beacon:"weaviate://localhost/Other/${idOf("music")}"}]}`)).toMatch(/names class Other, but the objects of a move are read from the class searched, Sentence/);
    expect(await get(`moveAwayFrom:{force:0.5, objects:[{id:"${uuid(999)}"}]}`)).toMatch(/vectorize move away from: vector not found/);
    // Only nearText moves.
    expect(await gqlError(`{ Get { Sentence(nearVector:{vector:[1], moveTo:{force:0.5, concepts:["x"]}}) { text } } }`)).toMatch(/nearVector: 'moveTo' is not supported/);
  });

  it("Aggregate takes the moves too: it counts the objects within a distance of the moved vector (GraphQL and gRPC)", async () => {
    const moved = moveTo(v("biology"), v("finance"), 0.6);
    const distances = (q: number[]) => [...vec.values()].map((w) => cosineDistance(q, w));
    const [dm, du] = [distances(moved), distances(v("biology"))];
    const within = (ds: number[], t: number) => ds.filter((d) => d <= t).length;
    // A threshold clear of every distance where the moved and the unmoved vector count differently: the move decides.
    const all = [...dm, ...du].sort((a, b) => a - b);
    const threshold = all
      .slice(1)
      .map((d, k) => [all[k]!, d] as const)
      .filter(([a, b]) => b - a > 0.01)
      .map(([a, b]) => (a + b) / 2)
      .find((t) => within(dm, t) !== within(du, t))!;
    expect(threshold).toBeDefined();
    const body = await gql(`{ Aggregate { Sentence(nearText:{concepts:["biology"], distance:${threshold}, moveTo:{force:0.6, concepts:["finance"]}}, objectLimit:100) { meta { count } } } }`);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(body.data.Aggregate.Sentence).toEqual([{ meta: { count: within(dm, threshold) } }]);
    const reply = await new Promise<AggregateReply>((resolve, reject) =>
      raw.makeUnaryRequest(
        "/weaviate.v1.Weaviate/Aggregate",
        (x: any) => Buffer.from(AggregateRequest.encode(AggregateRequest.fromPartial(x)).finish()),
        (b: Buffer) => AggregateReply.decode(b),
        { collection: "Sentence", objectsCount: true, objectLimit: 100, nearText: { query: ["biology"], distance: threshold, moveTo: { force: 0.6, concepts: ["finance"], uuids: [] } } },
        { deadline: Date.now() + 10_000 },
        (err, r) => (err ? reject(err) : resolve(r!)),
      ),
    );
    expect(reply.singleResult!.objectsCount).toBe(within(dm, threshold));
  });
});
