import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";
import { postgresReachable } from "./support/postgres.js";
import { startServerPair, type ServerPair } from "./support/weaviate.js";

/*
 * The inverted index is kept up per write (inverted-index.ts): after inserts, replaces, merges, batch upserts and
 * deletes made once the index is built, BM25 ranks exactly as a reference scorer over the objects now stored (the
 * brute-force BM25F of test/bm25.test.ts), and after a restart (index built fresh from the store) the same again.
 */

interface Question {
  Category: string;
  Question: string;
  Answer: string;
}
type Doc = { question: string; answer: string; category: string };
const data = JSON.parse(readFileSync(fileURLToPath(new URL("../../shared/datasets/jeopardy/jeopardy_1k.json", import.meta.url)), "utf8")) as Question[];
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const STOP = new Set("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "));
const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
const PROPS = ["question", "answer", "category"] as const;

/** Reference BM25F (k1 1.2, b 0.75) over docs in store order; [key, score] best first, ties in store order. */
function reference(docs: [number, Doc][], query: string): [number, number][] {
  const counts = new Map<string, number>();
  for (const t of words(query).filter((w) => !STOP.has(w))) counts.set(t, (counts.get(t) ?? 0) + 1);
  const toks = docs.map(([, d]) => PROPS.map((p) => words(d[p])));
  const avg = PROPS.reduce((s, _p, j) => s + toks.reduce((x, t) => x + t[j]!.length, 0) / docs.length, 0) / PROPS.length;
  const scores = new Map<number, number>();
  for (const [term, times] of counts) {
    const per = toks.map((t) => {
      let f = 0, L = 0;
      for (const w of t) {
        const tf = w.filter((x) => x === term).length;
        if (tf) (f += tf), (L += w.length);
      }
      return [f, L] as const;
    });
    const n = per.filter(([f]) => f > 0).length;
    const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5)) * times;
    per.forEach(([f, L], i) => {
      if (f > 0) scores.set(i, (scores.get(i) ?? 0) + (idf * f) / (f + 1.2 * (0.25 + (0.75 * L) / avg)));
    });
  }
  return [...scores].sort((x, y) => y[1] - x[1] || x[0] - y[0]).map(([i, s]) => [docs[i]![0], s]);
}

describe("the inverted index follows every write without a rebuild", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let dataDir: string;
  /** What the store holds, in store (seq) order: key → doc. Replaced objects keep their place. */
  const stored = new Map<number, Doc>(data.map((q, i) => [i, { question: q.Question, answer: q.Answer, category: q.Category }]));
  const queries = ["science", "American history president", "zebra river", "the first state admitted to the union", "quokka", "Shakespeare play"];

  const connect = async () => {
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
  };
  const check = async () => {
    const coll = client.collections.use("Jeopardy");
    for (const query of queries) {
      const want = reference([...stored], query).slice(0, 10);
      const got = await coll.query.bm25(query, { limit: 10, returnMetadata: ["score"] });
      expect(got.objects.map((o) => o.uuid), query).toEqual(want.map(([k]) => uuid(k)));
      got.objects.forEach((o, k) => expect(o.metadata!.score!, query).toBeCloseTo(want[k]![1], 4));
    }
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-bm25-upkeep-"));
    server = await startServer({}, { grpcPort: 0, dataDir });
    await connect();
    await client.collections.create({
      name: "Jeopardy",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: PROPS.map((name) => ({ name, dataType: "text" as const })),
    });
    const r = await client.collections.use("Jeopardy").data.insertMany([...stored].map(([k, d]) => ({ id: uuid(k), properties: d })));
    expect(r.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("ranks as the reference after each kind of write", async () => {
    const coll = client.collections.use("Jeopardy");
    await check(); // the index is built here; every write below must reach it

    // Replace (PUT) 30 objects with new text.
    for (let k = 0; k < 30; k++) {
      const d = { question: `A zebra crossed the river number ${k}`, answer: "zebra", category: "ANIMALS" };
      await coll.data.replace({ id: uuid(k), properties: d });
      stored.set(k, d);
    }
    // Merge (PATCH) one property of 20 objects.
    for (let k = 100; k < 120; k++) {
      await coll.data.update({ id: uuid(k), properties: { answer: "a quokka on a river" } });
      stored.set(k, { ...stored.get(k)!, answer: "a quokka on a river" });
    }
    await check();

    // Upsert 20 existing objects by batch, delete 20 by id and the rest of one category by filter, insert 50 new.
    const upserts = Array.from({ length: 20 }, (_, j) => 200 + j).map((k) => [k, { question: `science of the quokka ${k}`, answer: "science", category: "SCIENCE" }] as const);
    expect((await coll.data.insertMany(upserts.map(([k, d]) => ({ id: uuid(k), properties: d })))).hasErrors).toBe(false);
    for (const [k, d] of upserts) stored.set(k, d);
    for (let k = 300; k < 320; k++) {
      expect(await coll.data.deleteById(uuid(k))).toBe(true);
      stored.delete(k);
    }
    const category = stored.get(500)!.category;
    const gone = [...stored].filter(([, d]) => d.category === category).map(([k]) => k);
    expect(gone.length).toBeGreaterThan(1);
    const del = await coll.data.deleteMany(coll.filter.byProperty("category").equal(category));
    expect(del.successful).toBe(gone.length);
    for (const k of gone) stored.delete(k);
    const fresh = Array.from({ length: 50 }, (_, j) => [1000 + j, { question: `Shakespeare wrote this zebra play ${j}`, answer: "play", category: "THEATRE" }] as const);
    expect((await coll.data.insertMany(fresh.map(([k, d]) => ({ id: uuid(k), properties: d })))).hasErrors).toBe(false);
    for (const [k, d] of fresh) stored.set(k, d);
    await check();

    // A deleted object's words no longer find it; a replaced one is found by its new words only.
    const old = await coll.query.bm25(data[0]!.Question, { limit: 1000 });
    expect(old.objects.map((o) => o.uuid)).not.toContain(uuid(0));
    expect((await coll.query.bm25("zebra crossed", { limit: 100 })).objects.map((o) => o.uuid)).toContain(uuid(0));
  });

  it("a restart builds the same index from the store", async () => {
    await client.close();
    await server.close();
    server = await startServer({}, { grpcPort: 0, dataDir });
    await connect();
    await check();
  });
});

const reachable = await postgresReachable();

describe.skipIf(!reachable)("on PostgreSQL: another API server's writes reach this one's inverted index", () => {
  let ca: WeaviateClient;
  let cb: WeaviateClient;
  let pair: ServerPair;
  beforeAll(async () => {
    pair = await startServerPair();
    ({ ca, cb } = pair);
  }, 60_000);
  afterAll(async () => {
    await pair?.close();
  });

  it("inserts, replaces and deletes made through B are ranked by A's already built index", async () => {
    await ca.collections.create({ name: "Notes", vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "text", dataType: "text" }] });
    const onA = ca.collections.use("Notes");
    const onB = cb.collections.use("Notes");
    expect((await onA.data.insertMany(Array.from({ length: 20 }, (_, i) => ({ id: uuid(i), properties: { text: `note ${i} about cats` } })))).hasErrors).toBe(false);
    expect((await onA.query.bm25("cats", { limit: 100 })).objects).toHaveLength(20); // A's index is built
    expect((await onB.data.insertMany([{ id: uuid(100), properties: { text: "walrus walrus" } }])).hasErrors).toBe(false);
    await onB.data.replace({ id: uuid(1), properties: { text: "a walrus" } });
    expect(await onB.data.deleteById(uuid(2))).toBe(true);
    expect((await onA.query.bm25("walrus", { limit: 10 })).objects.map((o) => o.uuid)).toEqual([uuid(100), uuid(1)]);
    const cats = (await onA.query.bm25("cats", { limit: 100 })).objects.map((o) => o.uuid);
    expect(cats).toHaveLength(18);
    expect(cats).not.toContain(uuid(1));
    expect(cats).not.toContain(uuid(2));
  });
});
