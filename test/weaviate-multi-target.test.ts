import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type Collection, type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";

/*
 * Multi-target vector search (issue 12) through weaviate-client 3.14 (gRPC) and raw GraphQL: a collection with two
 * named vectors of different metrics (a: cosine, b: l2-squared), every combination method, vectors per target and
 * several query vectors for one target, filters, distance, offset, nearObject, nearText over two vectorized vectors,
 * hybrid. Every answer is checked against distances this file computes from the inserted vectors: per target its
 * `limit` nearest candidates, each candidate's distance in every target, combined by Weaviate's rules (minimum of
 * the distances it has; the weighted sums drop an object lacking a vector; relativeScore min-max normalises per target).
 */

type Combination = "minimum" | "sum" | "average" | "manualWeights" | "relativeScore";
interface Obj {
  id: string;
  n: number;
  vectors: Record<string, number[]>;
}
interface Entry {
  target: string;
  query: number[];
  weight?: number;
}

const METRIC: Record<string, "cosine" | "l2-squared"> = { a: "cosine", b: "l2-squared", title: "cosine", body: "cosine" };
const f32 = (v: number[]) => v.map((x) => Math.fround(x));

function distance(metric: "cosine" | "l2-squared", x: number[], y: number[]): number {
  const [p, q] = [f32(x), f32(y)];
  if (metric === "l2-squared") return p.reduce((s, v, i) => s + (v - q[i]!) ** 2, 0);
  const dot = p.reduce((s, v, i) => s + v * q[i]!, 0);
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return 1 - dot / (norm(p) * norm(q));
}

/** What Weaviate answers: ids and combined distances, nearest first. */
function expected(objs: Obj[], entries: Entry[], combination: Combination, limit: number, opts: { maxDistance?: number; keep?: (o: Obj) => boolean } = {}): { id: string; distance: number }[] {
  const pool = objs.filter(opts.keep ?? (() => true));
  const candidates = new Set<string>();
  for (const e of entries) {
    const ranked = pool.filter((o) => o.vectors[e.target]).map((o) => ({ id: o.id, d: distance(METRIC[e.target]!, e.query, o.vectors[e.target]!) }));
    ranked.sort((x, y) => x.d - y.d);
    for (const r of ranked.slice(0, limit)) candidates.add(r.id);
  }
  const rows = [...candidates].map((id) => {
    const o = pool.find((x) => x.id === id)!;
    return { id, ds: entries.map((e) => (o.vectors[e.target] ? distance(METRIC[e.target]!, e.query, o.vectors[e.target]!) : null)) };
  });
  const weights = entries.map((e) => (combination === "sum" ? 1 : combination === "average" ? 1 / entries.length : e.weight!));
  let out: { id: string; distance: number }[];
  if (combination === "minimum") out = rows.flatMap((r) => (r.ds.some((d) => d !== null) ? [{ id: r.id, distance: Math.min(...r.ds.filter((d): d is number => d !== null)) }] : []));
  else {
    const complete = rows.filter((r) => r.ds.every((d) => d !== null)) as { id: string; ds: number[] }[];
    if (combination !== "relativeScore") out = complete.map((r) => ({ id: r.id, distance: r.ds.reduce((s, d, i) => s + weights[i]! * d, 0) }));
    else {
      const lo = entries.map((_, i) => Math.min(...complete.map((r) => r.ds[i]!)));
      const hi = entries.map((_, i) => Math.max(...complete.map((r) => r.ds[i]!)));
      out = complete.map((r) => ({ id: r.id, distance: r.ds.reduce((s, d, i) => s + weights[i]! * (hi[i] === lo[i] ? 1 : (d - lo[i]!) / (hi[i]! - lo[i]!)), 0) }));
    }
  }
  return out
    .filter((r) => r.distance <= (opts.maxDistance ?? Infinity))
    .sort((x, y) => x.distance - y.distance)
    .slice(0, limit);
}

/** Deterministic pseudo-random numbers in [-1, 1). */
function numbers(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  };
}

const rnd = numbers(7);
const vec = () => [rnd(), rnd(), rnd()];
const OBJECTS: Obj[] = Array.from({ length: 24 }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, n: i, vectors: { a: vec(), b: vec() } }));
const QA = [0.3, -0.5, 0.8];
const QB = [-0.2, 0.4, 0.1];
const QB2 = [0.7, 0.1, -0.6];
/** An object with vector a only, nearest of all to QA there. */
const LONELY: Obj = { id: "00000000-0000-4000-8000-999999999999", n: 100, vectors: { a: QA } };
const ALL = [...OBJECTS, LONELY];

/** Topic words of the fake embedder: a text's vector counts the words of each topic (plus a little, so none is zero). */
const TOPICS = [
  ["cell", "gene", "animal", "plant"],
  ["bank", "stock", "market", "price"],
  ["goal", "team", "match", "ball"],
  ["planet", "star", "moon", "orbit"],
];
const embedText = (text: string) => {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  return TOPICS.map((t) => words.filter((w) => t.includes(w)).length + 0.1);
};

/** An Ollama-compatible `/api/embed`: `{model, input}` → `{model, embeddings}`. */
async function fakeOllama(): Promise<LocalHttpServer> {
  return listenLocal((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const { model, input } = JSON.parse(body) as { model: string; input: string | string[] };
      const texts = typeof input === "string" ? [input] : input;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model, embeddings: texts.map(embedText) }));
    });
  });
}

describe("multi-target vector search (weaviate-client 3.14 and GraphQL)", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let ollama: LocalHttpServer;
  let multi: Collection;
  const graphql = async (query: string) => (await weaviateCall(server, "POST", "/v1/graphql", { query })).body;
  /** Ids and distances of a client answer. */
  const got = (res: { objects: { uuid: string; metadata?: { distance?: number } }[] }) => res.objects.map((o) => ({ id: o.uuid, distance: o.metadata!.distance! }));
  const same = (actual: { id: string; distance: number }[], want: { id: string; distance: number }[]) => {
    expect(actual.map((r) => r.id)).toEqual(want.map((r) => r.id));
    actual.forEach((r, i) => expect(r.distance).toBeCloseTo(want[i]!.distance, 4));
  };

  beforeAll(async () => {
    ollama = await fakeOllama();
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0 });
    client = await connectWeaviate(server);
    multi = await client.collections.create({
      name: "Multi",
      properties: [{ name: "n", dataType: "int" }],
      vectorizers: [
        weaviate.configure.vectors.selfProvided({ name: "a" }),
        weaviate.configure.vectors.selfProvided({ name: "b", vectorIndexConfig: weaviate.configure.vectorIndex.hnsw({ distanceMetric: "l2-squared" }) }),
      ],
    });
    const res = await multi.data.insertMany(ALL.map((o) => ({ id: o.id, properties: { n: o.n }, vectors: o.vectors })));
    expect(res.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await ollama?.stop();
  });

  it("combines the distances of both target vectors by every method, the query vector searched in each", async () => {
    const both = (w: Record<string, number> = {}) => ["a", "b"].map((target) => ({ target, query: QA, weight: w[target] }));
    const limit = 5;
    const opts = { limit, returnMetadata: ["distance" as const] };

    // A bare list: minimum. The object lacking vector b keeps its place (its distance in a, 0).
    const plain = got(await multi.query.nearVector(QA, { ...opts, targetVector: ["a", "b"] }));
    same(plain, expected(ALL, both(), "minimum", limit));
    expect(plain[0]).toMatchObject({ id: LONELY.id });
    expect(plain[0]!.distance).toBeCloseTo(0, 5);

    same(got(await multi.query.nearVector(QA, { ...opts, targetVector: multi.multiTargetVector.minimum(["a", "b"]) })), expected(ALL, both(), "minimum", limit));
    // Sum and average drop the object lacking b, as Weaviate does.
    const sum = got(await multi.query.nearVector(QA, { ...opts, targetVector: multi.multiTargetVector.sum(["a", "b"]) }));
    same(sum, expected(ALL, both(), "sum", limit));
    expect(sum.map((r) => r.id)).not.toContain(LONELY.id);
    same(got(await multi.query.nearVector(QA, { ...opts, targetVector: multi.multiTargetVector.average(["a", "b"]) })), expected(ALL, both(), "average", limit));
    same(got(await multi.query.nearVector(QA, { ...opts, targetVector: multi.multiTargetVector.manualWeights({ a: 0.3, b: 1.7 }) })), expected(ALL, both({ a: 0.3, b: 1.7 }), "manualWeights", limit));
    const relative = got(await multi.query.nearVector(QA, { ...opts, targetVector: multi.multiTargetVector.relativeScore({ a: 1, b: 0.5 }) }));
    same(relative, expected(ALL, both({ a: 1, b: 0.5 }), "relativeScore", limit));
    // The orders really differ between methods, so each check above tells them apart.
    expect(new Set([plain, sum, relative].map((r) => r.map((x) => x.id).join())).size).toBe(3);
  });

  it("takes a vector per target and several query vectors for one target", async () => {
    const limit = 4;
    const opts = { limit, returnMetadata: ["distance" as const] };
    const perTarget = got(await multi.query.nearVector({ a: QA, b: QB }, { ...opts, targetVector: multi.multiTargetVector.sum(["a", "b"]) }));
    same(perTarget, expected(ALL, [{ target: "a", query: QA }, { target: "b", query: QB }], "sum", limit));
    // No targetVector: the targets are the vectors' names (minimum).
    same(got(await multi.query.nearVector({ a: QA, b: QB }, opts)), expected(ALL, [{ target: "a", query: QA }, { target: "b", query: QB }], "minimum", limit));

    // b searched with two query vectors, each weighted (a 2D array is several vectors for a regular index).
    const weighted = got(await multi.query.nearVector({ a: QA, b: [QB, QB2] }, { ...opts, targetVector: multi.multiTargetVector.manualWeights({ a: 1, b: [0.5, 2] }) }));
    same(weighted, expected(ALL, [{ target: "a", query: QA, weight: 1 }, { target: "b", query: QB, weight: 0.5 }, { target: "b", query: QB2, weight: 2 }], "manualWeights", limit));
    // The client's listOfVectors, averaged over the three entries.
    const listed = got(await multi.query.nearVector({ a: QA, b: weaviate.query.nearVector.listOfVectors(QB, QB2) }, { ...opts, targetVector: multi.multiTargetVector.average(["a", "b"]) }));
    same(listed, expected(ALL, [{ target: "a", query: QA }, { target: "b", query: QB }, { target: "b", query: QB2 }], "average", limit));
  });

  it("applies filters, distance and offset to the combined distance; nearObject searches with the object's vectors", async () => {
    const both = (q: number[]) => ["a", "b"].map((target) => ({ target, query: q }));
    const filtered = got(await multi.query.nearVector(QA, { limit: 5, returnMetadata: ["distance"], filters: multi.filter.byProperty("n").greaterThan(10), targetVector: multi.multiTargetVector.average(["a", "b"]) }));
    same(filtered, expected(ALL, both(QA), "average", 5, { keep: (o) => o.n > 10 }));
    expect(filtered.length).toBe(5);

    const all = expected(ALL, both(QA), "sum", 8);
    const cut = (all[2]!.distance + all[3]!.distance) / 2;
    const near = got(await multi.query.nearVector(QA, { limit: 8, distance: cut, returnMetadata: ["distance"], targetVector: multi.multiTargetVector.sum(["a", "b"]) }));
    same(near, expected(ALL, both(QA), "sum", 8, { maxDistance: cut }));
    expect(near).toHaveLength(3);

    const paged = got(await multi.query.nearVector(QA, { limit: 3, offset: 2, returnMetadata: ["distance"], targetVector: multi.multiTargetVector.sum(["a", "b"]) }));
    same(paged, expected(ALL, both(QA), "sum", 5).slice(2));

    const source = OBJECTS[5]!;
    const byObject = got(await multi.query.nearObject(source.id, { limit: 4, returnMetadata: ["distance"], targetVector: multi.multiTargetVector.sum(["a", "b"]) }));
    same(byObject, expected(ALL, [{ target: "a", query: source.vectors.a! }, { target: "b", query: source.vectors.b! }], "sum", 4));
    expect(byObject[0]!.id).toBe(source.id);

    // Weaviate refuses certainty with several targets; an unknown target is named.
    await expect(multi.query.nearVector(QA, { certainty: 0.5, targetVector: ["a", "b"] })).rejects.toThrow(/multiple target vectors are not supported with certainty/);
    await expect(multi.query.nearVector(QA, { targetVector: ["a", "c"] })).rejects.toThrow(/target vector "c" not found/);
    // Aggregate over several targets stays refused, by name (the client's types allow one; its wire takes a list).
    await expect(multi.aggregate.nearVector(QA, { objectLimit: 3, targetVector: ["a", "b"] as never })).rejects.toThrow(/several target vectors/);
  });

  it("serves hybrid's vector part over several targets", async () => {
    // alpha 1: the vector part alone, its fused order that of the combined distances.
    const res = await multi.query.hybrid("nothing", { alpha: 1, vector: QA, limit: 3, targetVector: multi.multiTargetVector.sum(["a", "b"]) });
    const want = expected(ALL, ["a", "b"].map((target) => ({ target, query: QA })), "sum", 100).slice(0, 3);
    expect(res.objects.map((o) => o.uuid)).toEqual(want.map((r) => r.id));
    const perTarget = await multi.query.hybrid("nothing", { alpha: 1, vector: { a: QA, b: QB }, limit: 3, targetVector: multi.multiTargetVector.minimum(["a", "b"]) });
    const wantPer = expected(ALL, [{ target: "a", query: QA }, { target: "b", query: QB }], "minimum", 100).slice(0, 3);
    expect(perTarget.objects.map((o) => o.uuid)).toEqual(wantPer.map((r) => r.id));
  });

  it("answers GraphQL targetVectors, targets {combinationMethod, weights} and vectorPerTarget", async () => {
    const limit = 5;
    const run = async (near: string) => {
      const body = await graphql(`{ Get { Multi(${near}, limit: ${limit}) { n _additional { id distance certainty } } } }`);
      expect(body.errors).toBeUndefined();
      return (body.data.Get.Multi as { _additional: { id: string; distance: number; certainty: number | null } }[]).map((r) => {
        expect(r._additional.certainty).toBeNull();
        return { id: r._additional.id, distance: r._additional.distance };
      });
    };
    const v = (x: number[]) => `[${x.join(", ")}]`;
    const both = (w: Record<string, number> = {}) => ["a", "b"].map((target) => ({ target, query: QA, weight: w[target] }));
    same(await run(`nearVector: {vector: ${v(QA)}, targetVectors: ["a", "b"]}`), expected(ALL, both(), "minimum", limit));
    same(await run(`nearVector: {vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: sum}}`), expected(ALL, both(), "sum", limit));
    same(await run(`nearVector: {vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: relativeScore, weights: {a: 2, b: 1}}}`), expected(ALL, both({ a: 2, b: 1 }), "relativeScore", limit));
    same(
      await run(`nearVector: {vectorPerTarget: {a: ${v(QA)}, b: [${v(QB)}, ${v(QB2)}]}, targets: {targetVectors: ["a", "b", "b"], combinationMethod: manualWeights, weights: {a: 1, b: [0.5, 2]}}}`),
      expected(ALL, [{ target: "a", query: QA, weight: 1 }, { target: "b", query: QB, weight: 0.5 }, { target: "b", query: QB2, weight: 2 }], "manualWeights", limit),
    );
    same(await run(`nearObject: {id: "${OBJECTS[3]!.id}", targets: {targetVectors: ["a", "b"], combinationMethod: average}}`), expected(ALL, [{ target: "a", query: OBJECTS[3]!.vectors.a! }, { target: "b", query: OBJECTS[3]!.vectors.b! }], "average", limit));

    const hybrid = await graphql(`{ Get { Multi(hybrid: {query: "nothing", alpha: 1, vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: average}}, limit: 3) { _additional { id } } } }`);
    expect(hybrid.errors).toBeUndefined();
    expect(hybrid.data.Get.Multi.map((r: { _additional: { id: string } }) => r._additional.id)).toEqual(expected(ALL, both(), "average", 100).slice(0, 3).map((r) => r.id));

    // Refusals name what is wrong.
    const error = async (near: string) => (await graphql(`{ Get { Multi(${near}) { n } } }`)).errors?.[0]?.message as string;
    expect(await error(`nearVector: {vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: manualWeights, weights: {a: 1}}}`)).toBe("weight for target b is not provided");
    expect(await error(`nearVector: {vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: sum, weights: {a: 1, b: 2}}}`)).toMatch(/weights are only used by the manualWeights and relativeScore combinations/);
    expect(await error(`nearVector: {vector: ${v(QA)}, targets: {targetVectors: ["a", "b"], combinationMethod: median}}`)).toMatch(/unknown combinationMethod "median"/);
    expect(await error(`nearVector: {vectorPerTarget: {a: ${v(QA)}}, targetVectors: ["a", "b"]}`)).toBe("vectorPerTarget for target b is not provided");
    expect(await error(`nearVector: {vector: ${v(QA)}, vectorPerTarget: {a: ${v(QA)}}}`)).toBe("nearVector: vector or vectorPerTarget is required field");
    expect(await error(`nearVector: {vector: ${v(QA)}, certainty: 0.7, targetVectors: ["a", "b"]}`)).toBe("multiple target vectors are not supported with certainty");
    const agg = await graphql(`{ Aggregate { Multi(nearVector: {vector: ${v(QA)}, targetVectors: ["a", "b"]}, objectLimit: 2) { meta { count } } } }`);
    expect(agg.errors[0].message).toMatch(/several at once are not supported by OpenBatch/);
  });

  it("embeds nearText once per target vector and combines the distances", async () => {
    const docs = await client.collections.create({
      name: "Article",
      properties: [
        { name: "title", dataType: "text" },
        { name: "body", dataType: "text" },
      ],
      vectorizers: [
        weaviate.configure.vectors.text2VecOllama({ name: "title", sourceProperties: ["title"], apiEndpoint: ollama.origin, model: "nomic-embed-text" }),
        weaviate.configure.vectors.text2VecOllama({ name: "body", sourceProperties: ["body"], apiEndpoint: ollama.origin, model: "nomic-embed-text" }),
      ],
    });
    const texts = [
      ["cell gene", "stock market price"],
      ["bank stock", "cell plant animal"],
      ["team goal", "planet moon"],
      ["orbit star", "goal match ball"],
      ["plant", "bank"],
      ["price", "gene"],
    ];
    const res = await docs.data.insertMany(texts.map(([title, body]) => ({ title, body })));
    expect(res.hasErrors).toBe(false);
    // The stored vectors, as the server embedded them.
    const stored = (await docs.query.fetchObjects({ includeVector: true, limit: 100 })).objects.map((o) => ({ id: o.uuid, n: 0, vectors: o.vectors as Record<string, number[]> }));
    const query = embedText("cell biology");
    const answer = got(await docs.query.nearText("cell biology", { limit: 3, returnMetadata: ["distance"], targetVector: docs.multiTargetVector.average(["title", "body"]) }));
    same(answer, expected(stored, ["title", "body"].map((target) => ({ target, query })), "average", 3));
    const gql = await graphql(`{ Get { Article(nearText: {concepts: ["cell biology"], targetVectors: ["title", "body"]}, limit: 3) { _additional { id distance } } } }`);
    expect(gql.errors).toBeUndefined();
    same(gql.data.Get.Article.map((r: { _additional: { id: string; distance: number } }) => ({ id: r._additional.id, distance: r._additional.distance })), expected(stored, ["title", "body"].map((target) => ({ target, query })), "minimum", 3));
  });
});
