import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { Bm25Operator, type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";

/*
 * BM25F through the official client (gRPC) and raw GraphQL on the 1,000 Jeopardy questions, against a reference
 * scorer written here from Weaviate's published formula (brute force over every object, no index):
 *   score = Σ_terms idf·f/(f + k1·(1 − b + b·L/avgL)), idf = ln(1 + (N − n + 0.5)/(n + 0.5)),
 *   f = Σ tf·boost and L = Σ length over the searched properties holding the term, avgL = mean of the properties'
 *   mean lengths; `word` tokens: lower-cased letter/digit runs, English stopwords dropped from the query.
 */

interface Question {
  Category: string;
  Question: string;
  Answer: string;
  Value: number | null;
  Round: string;
}
const data = JSON.parse(readFileSync(fileURLToPath(new URL("../../shared/datasets/jeopardy/jeopardy_1k.json", import.meta.url)), "utf8")) as Question[];
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const STOP = new Set("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "));
const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/** Reference BM25F over `docs` (brute force). Returns [index, score] best first, ties by index. */
function reference(docs: Record<string, string>[], query: string, props: [string, number][], k1 = 1.2, b = 0.75, stop = STOP): [number, number][] {
  const tokens = words(query).filter((t) => !stop.has(t));
  const counts = new Map<string, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  const toks = docs.map((d) => Object.fromEntries(props.map(([p]) => [p, words(d[p] ?? "")])));
  const avg = props.reduce((s, [p]) => s + toks.reduce((x, t) => x + t[p]!.length, 0) / docs.length, 0) / props.length;
  const scores = new Map<number, number>();
  for (const [term, times] of counts) {
    const per = toks.map((t) => {
      let f = 0, L = 0;
      for (const [p, boost] of props) {
        const tf = t[p]!.filter((w) => w === term).length;
        if (tf) (f += tf * boost), (L += t[p]!.length);
      }
      return [f, L] as const;
    });
    const n = per.filter(([f]) => f > 0).length;
    const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5)) * times;
    per.forEach(([f, L], i) => {
      if (f > 0) scores.set(i, (scores.get(i) ?? 0) + (idf * f) / (f + k1 * (1 - b + (b * L) / avg)));
    });
  }
  return [...scores].sort((x, y) => y[1] - x[1] || x[0] - y[0]);
}

describe("BM25F equals a reference scorer on the Jeopardy questions", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const docs = data.map((q) => ({ question: q.Question, answer: q.Answer, category: q.Category }));
  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Jeopardy",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: [
        { name: "question", dataType: "text" },
        { name: "answer", dataType: "text" },
        { name: "category", dataType: "text" },
      ],
    });
    const r = await client.collections.use("Jeopardy").data.insertMany(docs.map((d, i) => ({ id: uuid(i), properties: d })));
    expect(r.hasErrors).toBe(false);
    // Same data, k1/b and stopwords of its own.
    await client.collections.create({
      name: "JeopardyTuned",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      invertedIndex: weaviate.configure.invertedIndex({ bm25k1: 2, bm25b: 0.3, stopwordsPreset: "none", stopwordsAdditions: ["state"] }),
      properties: [
        { name: "question", dataType: "text" },
        { name: "answer", dataType: "text" },
      ],
    });
    const r2 = await client.collections.use("JeopardyTuned").data.insertMany(docs.map((d, i) => ({ id: uuid(i), properties: { question: d.question, answer: d.answer } })));
    expect(r2.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const queries = ["science", "American history president", "the first state admitted to the union", "river river city", "Shakespeare play"];

  it("query.bm25 over every text property: same top 10, same scores", async () => {
    const coll = client.collections.use("Jeopardy");
    for (const query of queries) {
      const want = reference(docs, query, [["question", 1], ["answer", 1], ["category", 1]]).slice(0, 10);
      expect(want.length).toBeGreaterThan(0);
      const got = await coll.query.bm25(query, { limit: 10, returnMetadata: ["score", "explainScore"] });
      expect(got.objects.map((o) => o.uuid)).toEqual(want.map(([i]) => uuid(i)));
      got.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(want[k]![1], 4));
      expect(got.objects[0]!.metadata!.explainScore).toMatch(/BM25F_\w+_frequency:\d+, BM25F_\w+_propLength:\d+/);
    }
  });

  it("properties with ^ boosts, and a filter, rank as the reference does", async () => {
    const coll = client.collections.use("Jeopardy");
    const want = reference(docs, "history war", [["question", 1], ["category", 3]]).slice(0, 8);
    const got = await coll.query.bm25("history war", { queryProperties: ["question", { name: "category", weight: 3 }] as never, limit: 8, returnMetadata: ["score"] });
    expect(got.objects.map((o) => o.uuid)).toEqual(want.map(([i]) => uuid(i)));
    got.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(want[k]![1], 4));

    // A filter keeps N and n (Weaviate's idf), only drops objects.
    const all = reference(docs, "history war", [["question", 1], ["answer", 1], ["category", 1]]);
    const filtered = all.filter(([i]) => data[i]!.Round === "Jeopardy!").slice(0, 5);
    expect(filtered.length).toBe(5);
    const f = await coll.query.bm25("history war", { filters: coll.filter.byProperty("category").like("*history*"), limit: 100, returnMetadata: ["score"] });
    const historyOnly = all.filter(([i]) => words(docs[i]!.category).some((w) => w.includes("history")));
    expect(f.objects.map((o) => o.uuid)).toEqual(historyOnly.slice(0, 100).map(([i]) => uuid(i)));
    f.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(historyOnly[k]![1], 4));
    const res = await fetch(server.url.replace(/\/v1$/, "") + "/v1/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ Get { Jeopardy(bm25: {query: "history war"}, where: {path: ["question"], operator: NotEqual, valueText: "zzzz"}, limit: 50) { _additional { id score } } } }` }),
    });
    const body = (await res.json()) as any;
    expect(body.errors).toBeUndefined();
    const ids: string[] = body.data.Get.Jeopardy.map((h: any) => h._additional.id);
    expect(ids).toEqual(all.slice(0, 50).map(([i]) => uuid(i)));
    expect(typeof body.data.Get.Jeopardy[0]._additional.score).toBe("string");
    expect(Number(body.data.Get.Jeopardy[0]._additional.score)).toBeCloseTo(all[0]![1], 4);
  });

  it("k1, b and stopwords come from invertedIndexConfig", async () => {
    const stop = new Set(["state"]);
    const want = reference(docs, "the first state admitted", [["question", 1], ["answer", 1]], 2, 0.3, stop).slice(0, 10);
    const got = await client.collections.use("JeopardyTuned").query.bm25("the first state admitted", { limit: 10, returnMetadata: ["score"] });
    expect(got.objects.map((o) => o.uuid)).toEqual(want.map(([i]) => uuid(i)));
    got.objects.forEach((o, k) => expect(o.metadata!.score!).toBeCloseTo(want[k]![1], 4));
  });

  it("searchOperator And keeps only objects with every token; minimumOrTokensMatch at least that many", async () => {
    const coll = client.collections.use("Jeopardy");
    const has = (i: number, t: string) => words(`${docs[i]!.question} ${docs[i]!.answer} ${docs[i]!.category}`).includes(t);
    const all = reference(docs, "american history president", [["question", 1], ["answer", 1], ["category", 1]]);
    const and = all.filter(([i]) => ["american", "history", "president"].every((t) => has(i, t)));
    const got = await coll.query.bm25("american history president", { operator: Bm25Operator.and(), limit: 100 });
    expect(got.objects.map((o) => o.uuid)).toEqual(and.slice(0, 100).map(([i]) => uuid(i)));
    const two = all.filter(([i]) => ["american", "history", "president"].filter((t) => has(i, t)).length >= 2);
    const got2 = await coll.query.bm25("american history president", { operator: Bm25Operator.or({ minimumMatch: 2 }), limit: 100 });
    expect(got2.objects.map((o) => o.uuid)).toEqual(two.slice(0, 100).map(([i]) => uuid(i)));
    expect(two.length).toBeGreaterThan(and.length);
  });

  it("a property that cannot be searched is an error, not an empty answer", async () => {
    const coll = client.collections.use("Jeopardy");
    await expect(coll.query.bm25("x", { queryProperties: ["nope"] })).rejects.toThrow(/no such prop with name 'nope'/);
  });
});
