import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "./support/harness.js";
import { postgresReachable } from "./support/postgres.js";
import { startServerPair, weaviateCall, type ServerPair } from "./support/weaviate.js";

/**
 * Concurrent schema changes through two API servers on one PostgreSQL database (Weaviate REST): properties added to
 * one class through both at once, auto-schema adding different properties from imports on both at once, and a class
 * deleted through one while the other imports into it. Whatever the interleaving, every answer is a success or a clean
 * 4xx in Weaviate's shape (never a 500), and afterwards the class is one consistent thing: both servers and the stored
 * definition agree, and no property an object uses is missing from it; a deleted class leaves no objects behind.
 */
const reachable = await postgresReachable();

describe.skipIf(!reachable)("concurrent schema changes through two API servers on one PostgreSQL database", () => {
  let pair: ServerPair;
  let sql: pg.Client;
  beforeAll(async () => {
    pair = await startServerPair();
    sql = new pg.Client({ connectionString: pair.db.url });
    await sql.connect();
  }, 60_000);
  afterAll(async () => {
    await sql?.end();
    await pair?.close();
  });

  /** Property names of a class as a server answers them (null: 404), and as PostgreSQL stores them. */
  const namesOn = async (s: TestServer, cls: string) => {
    const r = await weaviateCall(s, "GET", `/v1/schema/${cls}`);
    return r.status === 404 ? null : (r.body.properties as { name: string }[]).map((p) => p.name).sort();
  };
  const storedNames = async (cls: string) => {
    const row = (await sql.query(`SELECT definition FROM collection_classes WHERE name = $1`, [cls])).rows[0];
    return row ? (JSON.parse(row.definition).properties as { name: string }[]).map((p) => p.name).sort() : null;
  };
  /** A failure must be a 4xx in Weaviate's `{"error":[{"message"}]}` shape. */
  const expectCleanError = (r: { status: number; body: any }) => {
    expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
    expect(typeof r.body?.error?.[0]?.message).toBe("string");
  };

  it("properties added to one class through both servers at once: every one answered 200 is in the class, on both servers and stored", async () => {
    const { a, b } = pair;
    expect((await weaviateCall(a, "POST", "/v1/schema", { class: "Grown", vectorizer: "none", properties: [{ name: "base", dataType: ["text"] }] })).status).toBe(200);
    const added = ["base"];
    const typeOf = new Map<string, string>([["base", "text"]]);
    for (let round = 0; round < 3; round++) {
      const names = Array.from({ length: 12 }, (_, i) => `p${round}x${i}`);
      names.forEach((name, i) => typeOf.set(name, i % 3 ? "text" : "int"));
      const answers = await Promise.all(names.map((name, i) => weaviateCall(i % 2 ? b : a, "POST", "/v1/schema/Grown/properties", { name, dataType: [typeOf.get(name)] })));
      answers.forEach((r, i) => {
        if (r.status === 200) added.push(names[i]!);
        else expectCleanError(r);
      });
    }
    // Most of them went through; none that did was lost.
    expect(added.length).toBeGreaterThan(18);
    added.sort();
    expect(await storedNames("Grown")).toEqual(added);
    expect(await namesOn(a, "Grown")).toEqual(added);
    expect(await namesOn(b, "Grown")).toEqual(added);
    // Objects using every property, written through either server, are read back whole through the other.
    const props = Object.fromEntries(added.map((n) => [n, typeOf.get(n) === "int" ? 7 : `v-${n}`]));
    const id = randomUUID();
    const put = await weaviateCall(b, "POST", "/v1/batch/objects", { objects: [{ class: "Grown", id, properties: props, vector: [1, 0] }] });
    expect(put.body[0].result?.errors).toBeUndefined();
    expect((await weaviateCall(a, "GET", `/v1/objects/Grown/${id}`)).body.properties).toEqual(props);

    // One name added with two data types through the two servers at once: one wins, the other is told, never both.
    for (let i = 0; i < 6; i++) {
      const name = `clash${i}`;
      const [onA, onB] = await Promise.all([
        weaviateCall(a, "POST", "/v1/schema/Grown/properties", { name, dataType: ["int"] }),
        weaviateCall(b, "POST", "/v1/schema/Grown/properties", { name, dataType: ["text"] }),
      ]);
      const winners = [onA, onB].filter((r) => r.status === 200);
      expect(winners).toHaveLength(1);
      expectCleanError(onA.status === 200 ? onB : onA);
      const stored = (await sql.query(`SELECT definition FROM collection_classes WHERE name = 'Grown'`)).rows[0];
      const prop = (JSON.parse(stored.definition).properties as { name: string; dataType: string[] }[]).find((p) => p.name === name)!;
      expect(prop.dataType).toEqual(winners[0]!.body.dataType);
      for (const s of [a, b]) expect((await weaviateCall(s, "GET", "/v1/schema/Grown")).body.properties.find((p: any) => p.name === name).dataType).toEqual(prop.dataType);
    }
  }, 60_000);

  it("auto-schema adding different properties from imports on both servers at once: no property an object uses is lost", async () => {
    const { a, b } = pair;
    expect((await weaviateCall(a, "POST", "/v1/schema", { class: "Auto", vectorizer: "none", properties: [{ name: "title", dataType: ["text"] }] })).status).toBe(200);
    const written: { id: string; property: string }[] = [];
    const imports = Array.from({ length: 16 }, (_, i) => {
      const side = i % 2 ? "b" : "a";
      const property = `${side}Field${i}`;
      const id = randomUUID();
      written.push({ id, property });
      return weaviateCall(i % 2 ? b : a, "POST", "/v1/batch/objects", { objects: [{ class: "Auto", id, properties: { title: `t${i}`, [property]: `value ${i}` }, vector: [i, 1] }] });
    });
    const answers = await Promise.all(imports);
    const used = new Set(["title"]);
    answers.forEach((r, i) => {
      if (r.status !== 200) return expectCleanError(r);
      if (r.body[0].result?.errors) return;
      used.add(written[i]!.property);
    });
    expect(used.size).toBeGreaterThan(8);
    // Every property a stored object uses is in the stored class and in both servers' view of it.
    const objects = (await sql.query(`SELECT properties FROM collection_objects WHERE class = 'Auto'`)).rows.map((r) => Object.keys(JSON.parse(r.properties)));
    const inObjects = new Set(objects.flat());
    expect([...used].every((p) => inObjects.has(p))).toBe(true);
    const stored = new Set(await storedNames("Auto"));
    expect([...inObjects].filter((p) => !stored.has(p))).toEqual([]);
    expect(await namesOn(a, "Auto")).toEqual([...stored].sort());
    expect(await namesOn(b, "Auto")).toEqual([...stored].sort());
    // And the objects filter by them through either server.
    const probe = written.find((w) => used.has(w.property))!;
    const found = await weaviateCall(b, "POST", "/v1/graphql", { query: `{ Get { Auto(where:{path:["${probe.property}"], operator:Equal, valueText:"${"value " + written.indexOf(probe)}"}) { _additional { id } } } }` });
    expect(found.body.data.Get.Auto.map((o: any) => o._additional.id)).toEqual([probe.id]);
  }, 60_000);

  it("a class deleted through one server while the other imports into it: clean answers, and afterwards a consistent class or none", async () => {
    const { a, b } = pair;
    for (let trial = 0; trial < 4; trial++) {
      const cls = `Doomed${trial}`;
      expect((await weaviateCall(a, "POST", "/v1/schema", { class: cls, vectorizer: "none", properties: [{ name: "title", dataType: ["text"] }] })).status).toBe(200);
      // B learns of the class, so its imports go to the class it knows of.
      expect(await namesOn(b, cls)).toEqual(["title"]);
      const imports = Array.from({ length: 12 }, (_, i) =>
        weaviateCall(b, "POST", "/v1/batch/objects", { objects: Array.from({ length: 10 }, (_, j) => ({ class: cls, id: randomUUID(), properties: { title: `t${i}-${j}` }, vector: [i, j, 1] })) }),
      );
      await new Promise((r) => setTimeout(r, 5 * trial));
      const deleted = await weaviateCall(a, "DELETE", `/v1/schema/${cls}`);
      expect(deleted.status).toBe(200);
      for (const r of await Promise.all(imports)) if (r.status !== 200) expectCleanError(r);
      // Both servers and the store agree: the class is gone with all its objects, or (an import after the delete
      // created it again) it exists with exactly the objects stored for it.
      const stored = await storedNames(cls);
      const rows = Number((await sql.query(`SELECT count(*) AS n FROM collection_objects WHERE class = $1`, [cls])).rows[0].n);
      expect(await namesOn(a, cls)).toEqual(stored);
      expect(await namesOn(b, cls)).toEqual(stored);
      if (stored === null) {
        expect(rows).toBe(0);
        // An import retried after the refusal creates the class again (auto-schema), one class with its object.
        const again = await weaviateCall(b, "POST", "/v1/batch/objects", { objects: [{ class: cls, id: randomUUID(), properties: { title: "again" }, vector: [1, 1, 1] }] });
        expect(again.status).toBe(200);
        expect(again.body[0].result?.errors).toBeUndefined();
        const counted = await weaviateCall(a, "POST", "/v1/graphql", { query: `{ Aggregate { ${cls} { meta { count } } } }` });
        expect(counted.body.data.Aggregate[cls][0].meta.count).toBe(1);
        continue;
      }
      for (const s of [a, b]) {
        const counted = await weaviateCall(s, "POST", "/v1/graphql", { query: `{ Aggregate { ${cls} { meta { count } } } }` });
        expect(counted.body.data.Aggregate[cls][0].meta.count).toBe(rows);
        const near = await weaviateCall(s, "POST", "/v1/graphql", { query: `{ Get { ${cls}(nearVector:{vector:[1,1,1]}, limit:1000) { _additional { id } } } }` });
        expect(near.body.data.Get[cls]).toHaveLength(rows);
      }
    }
  }, 120_000);
});
