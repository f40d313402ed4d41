import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";
import { cosineDistance as cosine } from "./support/vectors.js";

/*
 * Hybrid, sort, autocut, timestamp filters and the loud refusal of what is not served, through the official
 * weaviate-client (REST + gRPC) and raw GraphQL. Expected values are computed here from the data.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

const DOCS = [
  { title: "cell biology and genes", rank: 5, topic: "science" },
  { title: "the cell membrane", rank: 3, topic: "science" },
  { title: "stock market news", rank: 9, topic: "finance" },
  { title: "football match report", rank: 1, topic: "sport" },
  { title: "biology of the deep sea", rank: 7, topic: "science" },
  { title: "market for cell phones", rank: 2, topic: "finance" },
  { title: "genes and football talent", rank: 8, topic: "sport" },
  { title: "weather report", rank: 4, topic: "news" },
];
const VECTORS = DOCS.map((_, i) => [Math.cos(i * 0.7), Math.sin(i * 0.7), (i % 3) / 3]);

async function graphql(server: TestServer, query: string): Promise<any> {
  const res = await fetch(server.url.replace(/\/v1$/, "") + "/v1/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
  return res.json();
}

describe("Weaviate search through the official client", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let before = 0;
  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Doc",
      vectorizers: weaviate.configure.vectors.selfProvided({ vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ distanceMetric: "cosine" }) }),
      properties: [
        { name: "title", dataType: "text" },
        { name: "rank", dataType: "int" },
        { name: "topic", dataType: "text", tokenization: "field" },
      ],
    });
    const docs = client.collections.use("Doc");
    const r1 = await docs.data.insertMany(DOCS.slice(0, 4).map((d, i) => ({ id: uuid(i), properties: d, vectors: VECTORS[i]! })));
    await new Promise((r) => setTimeout(r, 5));
    before = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    const r2 = await docs.data.insertMany(DOCS.slice(4).map((d, i) => ({ id: uuid(i + 4), properties: d, vectors: VECTORS[i + 4]! })));
    expect(r1.hasErrors || r2.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("bm25 ranks by keyword (not storage order) and returns scores", async () => {
    const docs = client.collections.use("Doc");
    const r = await docs.query.bm25("biology", { returnMetadata: ["score"] });
    expect(r.objects.map((o) => o.uuid).sort()).toEqual([uuid(0), uuid(4)]);
    expect(r.objects[0]!.metadata!.score!).toBeGreaterThan(0);
    // Shorter title, same tf: the higher score.
    expect(r.objects[0]!.uuid).toBe(uuid(0));
    // field tokenization: the whole value is one token.
    const f = await docs.query.bm25("finance", { queryProperties: ["topic"] });
    expect(f.objects.map((o) => o.uuid).sort()).toEqual([uuid(2), uuid(5)]);
  });

  it("hybrid rankedFusion and relativeScoreFusion fuse the bm25 and vector results as Weaviate explains", async () => {
    const docs = client.collections.use("Doc");
    const query = "cell genes";
    const vector = [1, 0.2, 0.1];
    const keyword = (await docs.query.bm25(query, { limit: 100, returnMetadata: ["score"] })).objects.map((o) => ({ id: o.uuid, v: o.metadata!.score! }));
    const nearest = DOCS.map((_, i) => ({ id: uuid(i), v: cosine(vector, VECTORS[i]!) })).sort((a, b) => a.v - b.v);
    for (const alpha of [0.25, 0.75]) {
      // Ranked: Σ weight / (60 + rank).
      const ranked = new Map<string, number>();
      keyword.forEach((k, r) => ranked.set(k.id, (ranked.get(k.id) ?? 0) + (1 - alpha) / (60 + r)));
      nearest.forEach((k, r) => ranked.set(k.id, (ranked.get(k.id) ?? 0) + alpha / (60 + r)));
      const wantRanked = [...ranked].sort((a, b) => b[1] - a[1]).slice(0, 5);
      const got = await docs.query.hybrid(query, { alpha, vector, fusionType: "Ranked", limit: 5, returnMetadata: ["score"] });
      expect(got.objects.map((o) => o.uuid)).toEqual(wantRanked.map(([id]) => id));
      got.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(wantRanked[k]![1], 5));

      // Relative score: min-max normalized, distances inverted.
      const rel = new Map<string, number>();
      const kmin = Math.min(...keyword.map((k) => k.v)), kmax = Math.max(...keyword.map((k) => k.v));
      const vmin = Math.min(...nearest.map((k) => k.v)), vmax = Math.max(...nearest.map((k) => k.v));
      for (const k of keyword) rel.set(k.id, (rel.get(k.id) ?? 0) + (1 - alpha) * ((k.v - kmin) / (kmax - kmin)));
      for (const k of nearest) rel.set(k.id, (rel.get(k.id) ?? 0) + alpha * ((vmax - k.v) / (vmax - vmin)));
      const wantRel = [...rel].sort((a, b) => b[1] - a[1]).slice(0, 5);
      const got2 = await docs.query.hybrid(query, { alpha, vector, fusionType: "RelativeScore", limit: 5, returnMetadata: ["score", "explainScore"] });
      expect(got2.objects.map((o) => o.uuid)).toEqual(wantRel.map(([id]) => id));
      got2.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(wantRel[k]![1], 4));
      expect(got2.objects[0]!.metadata!.explainScore).toMatch(/normalized score/);
    }
    // alpha 0 is bm25 order; with no vectorizer and no vector a vector part is an error, not a silent keyword search.
    const kw = await docs.query.hybrid(query, { alpha: 0, limit: 3 });
    expect(kw.objects.map((o) => o.uuid)).toEqual(keyword.slice(0, 3).map((k) => k.id));
    await expect(docs.query.hybrid(query, { alpha: 0.5 })).rejects.toThrow(/has no vectorizer/);
    // maxVectorDistance limits the vector part.
    const far = await docs.query.hybrid("zzz", { alpha: 1, vector, maxVectorDistance: nearest[1]!.v + 1e-4, limit: 10 });
    expect(far.objects.map((o) => o.uuid)).toEqual([nearest[0]!.id, nearest[1]!.id]);
  });

  it("hybrid over GraphQL: fusionType, score as a string", async () => {
    const body = await graphql(server, `{ Get { Doc(hybrid: {query: "cell", alpha: 0.5, vector: [1, 0.2, 0.1], fusionType: rankedFusion}, limit: 3) { title _additional { id score explainScore } } } }`);
    expect(body.errors).toBeUndefined();
    expect(body.data.Get.Doc).toHaveLength(3);
    expect(typeof body.data.Get.Doc[0]._additional.score).toBe("string");
    const move = await graphql(server, `{ Get { Doc(nearText: {concepts: ["cell"], moveTo: {concepts: ["sea"], force: 0.5}}) { title } } }`);
    // moveTo is served (test/weaviate-move.test.ts); Doc has no vectorizer, so its nearText is refused.
    expect(move.errors[0].message).toMatch(/has no vectorizer/);
    const bad = await graphql(server, `{ Get { Doc(hybrid: {query: "cell", alpha: 2, vector: [1, 0, 0]}) { title } } }`);
    expect(bad.errors[0].message).toMatch(/alpha must be a number between 0 and 1/);
  });

  it("sort: several keys, asc/desc, on properties and metadata, over gRPC and GraphQL", async () => {
    const docs = client.collections.use<"Doc", { title: string; rank: number; topic: string }>("Doc");
    const byRank = await docs.query.fetchObjects({ sort: docs.sort.byProperty("rank", false), limit: 3 });
    expect(byRank.objects.map((o) => o.properties.rank)).toEqual([9, 8, 7]);
    const two = await docs.query.fetchObjects({ sort: docs.sort.byProperty("topic").byProperty("rank", false), limit: 8 });
    const want = DOCS.map((d, i) => ({ ...d, i })).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : b.rank - a.rank));
    expect(two.objects.map((o) => o.uuid)).toEqual(want.map((d) => uuid(d.i)));
    const byId = await docs.query.fetchObjects({ sort: docs.sort.byId(false), limit: 2, offset: 1 });
    expect(byId.objects.map((o) => o.uuid)).toEqual([uuid(6), uuid(5)]);
    const gql = await graphql(server, `{ Get { Doc(sort: [{path: ["_creationTimeUnix"], order: desc}], where: {path: ["topic"], operator: Equal, valueText: "science"}) { rank } } }`);
    // Docs 0 and 1 came in one batch (same creation time): the tie keeps insertion order.
    expect(gql.data.Get.Doc.map((d: any) => d.rank)).toEqual([7, 5, 3]);
    const err = await graphql(server, `{ Get { Doc(sort: [{path: ["nope"]}]) { rank } } }`);
    expect(err.errors[0].message).toMatch(/no such prop with name 'nope'/);
    const mixed = await graphql(server, `{ Get { Doc(nearVector: {vector: [1, 0, 0]}, sort: [{path: ["rank"]}]) { rank } } }`);
    expect(mixed.errors[0].message).toMatch(/sort cannot be combined with a vector search/);
  });

  it("autocut keeps the results before the first jump", async () => {
    const docs = client.collections.use("Doc");
    const all = await docs.query.bm25("cell", { returnMetadata: ["score"] });
    expect(all.objects.length).toBe(3);
    const cut = await docs.query.bm25("cell", { autoLimit: 1, returnMetadata: ["score"] });
    expect(cut.objects.length).toBeGreaterThan(0);
    expect(cut.objects.length).toBeLessThanOrEqual(all.objects.length);
    const listing = await graphql(server, `{ Get { Doc(autocut: 1) { rank } } }`);
    expect(listing.errors[0].message).toMatch(/autocut needs a search/);
  });

  it("filters on _creationTimeUnix and ContainsNone", async () => {
    const docs = client.collections.use("Doc");
    const later = await docs.query.fetchObjects({ filters: docs.filter.byCreationTime().greaterThan(new Date(before)), limit: 20 });
    expect(later.objects.map((o) => o.uuid).sort()).toEqual([4, 5, 6, 7].map(uuid));
    const earlier = await docs.query.fetchObjects({ filters: docs.filter.byCreationTime().lessOrEqual(new Date(before)), limit: 20 });
    expect(earlier.objects.map((o) => o.uuid).sort()).toEqual([0, 1, 2, 3].map(uuid));
    const none = await docs.query.fetchObjects({ filters: docs.filter.byProperty("title").containsNone(["cell", "report"]), limit: 20 });
    expect(none.objects.map((o) => o.uuid).sort()).toEqual([2, 4, 6].map(uuid));
  });

  it("groupBy on nearVector and hybrid: groups in order of their best hit, objectsPerGroup each", async () => {
    const docs = client.collections.use("Doc");
    const vector = [1, 0.2, 0.1];
    const nearest = DOCS.map((d, i) => ({ id: uuid(i), topic: d.topic, d: cosine(vector, VECTORS[i]!) })).sort((a, b) => a.d - b.d);
    const topics = [...new Set(nearest.map((n) => n.topic))].slice(0, 2);
    const r = await docs.query.nearVector(vector, { groupBy: { property: "topic", numberOfGroups: 2, objectsPerGroup: 2 }, returnMetadata: ["distance"] });
    expect(Object.keys(r.groups)).toEqual(topics);
    for (const t of topics) {
      const want = nearest.filter((n) => n.topic === t).slice(0, 2);
      expect(r.groups[t]!.objects.map((o) => o.uuid)).toEqual(want.map((w) => w.id));
      expect(r.groups[t]!.minDistance).toBeCloseTo(want[0]!.d, 5);
      expect(r.groups[t]!.numberOfObjects).toBe(want.length);
    }
    const h = await docs.query.hybrid("cell", { vector, alpha: 0.5, groupBy: { property: "topic", numberOfGroups: 3, objectsPerGroup: 1 } });
    expect(Object.keys(h.groups)).toHaveLength(3);
    Object.values(h.groups).forEach((g) => expect(g.objects).toHaveLength(1));
    await expect(docs.query.nearVector(vector, { groupBy: { property: "nope", numberOfGroups: 2, objectsPerGroup: 2 } })).rejects.toThrow(/no such prop with name 'nope'/);
  });

  it("the client's aggregate: metrics and groupBy", async () => {
    const docs = client.collections.use<"Doc", { title: string; rank: number; topic: string }>("Doc");
    const all = await docs.aggregate.overAll({ returnMetrics: docs.metrics.aggregate("rank").integer(["mean", "maximum", "minimum"]) });
    expect(all.totalCount).toBe(8);
    expect(all.properties.rank).toMatchObject({ mean: DOCS.reduce((a, d) => a + d.rank, 0) / 8, maximum: 9, minimum: 1 });
    const filtered = await docs.aggregate.overAll({ filters: docs.filter.byProperty("topic").equal("science") });
    expect(filtered.totalCount).toBe(3);
    const groups = await docs.aggregate.groupBy.overAll({ groupBy: { property: "topic" } });
    expect(Object.fromEntries(groups.map((g) => [g.groupedBy.value, g.totalCount]))).toEqual({ science: 3, finance: 2, sport: 2, news: 1 });
  });

  it("GraphQL Aggregate: per-type metrics, groupBy, where, nearVector with objectLimit", async () => {
    const ranks = DOCS.map((d) => d.rank);
    const sorted = [...ranks].sort((a, b) => a - b);
    const body = await graphql(server, `{ Aggregate { Doc { meta { count } rank { count sum mean median mode maximum minimum type } topic { count topOccurrences(limit: 2) { value occurs } } } } }`);
    expect(body.errors).toBeUndefined();
    const row = body.data.Aggregate.Doc[0];
    expect(row.meta.count).toBe(8);
    expect(row.rank).toEqual({
      count: 8,
      sum: ranks.reduce((a, b) => a + b, 0),
      mean: ranks.reduce((a, b) => a + b, 0) / 8,
      median: (sorted[3]! + sorted[4]!) / 2,
      mode: 1,
      maximum: 9,
      minimum: 1,
      type: "int",
    });
    expect(row.topic).toEqual({ count: 8, topOccurrences: [{ value: "science", occurs: 3 }, { value: "finance", occurs: 2 }] });

    const grouped = await graphql(server, `{ Aggregate { Doc(groupBy: ["topic"], where: {path: ["rank"], operator: GreaterThan, valueInt: 1}) { groupedBy { value path } meta { count } rank { maximum } } } }`);
    expect(grouped.errors).toBeUndefined();
    const byTopic = Object.fromEntries(grouped.data.Aggregate.Doc.map((g: any) => [g.groupedBy.value, [g.meta.count, g.rank.maximum]]));
    expect(byTopic).toEqual({ science: [3, 7], finance: [2, 9], sport: [1, 8], news: [1, 4] });

    const vector = [1, 0.2, 0.1];
    const nearest = DOCS.map((d, i) => ({ rank: d.rank, v: cosine(vector, VECTORS[i]!) })).sort((a, b) => a.v - b.v).slice(0, 3);
    const near = await graphql(server, `{ Aggregate { Doc(nearVector: {vector: [1, 0.2, 0.1]}, objectLimit: 3) { meta { count } rank { sum } } } }`);
    expect(near.data.Aggregate.Doc[0]).toEqual({ meta: { count: 3 }, rank: { sum: nearest.reduce((a, b) => a + b.rank, 0) } });

    const bad = await graphql(server, `{ Aggregate { Doc { title { mean } } } }`);
    expect(bad.errors[0].message).toMatch(/Cannot query field "mean"/);
    const noLimit = await graphql(server, `{ Aggregate { Doc(nearVector: {vector: [1, 0, 0]}) { meta { count } } } }`);
    expect(noLimit.errors[0].message).toMatch(/needs objectLimit/);
  });
});
