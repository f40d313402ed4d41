import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CollectionStore } from "../src/store/collection-store.js";
import { PgCollectionStore } from "../src/store/postgres/collection-store.js";
import { SqliteCollectionStore } from "../src/store/sqlite/collection-store.js";
import { startServer } from "./support/harness.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";
import { connectWeaviate, startServerPair, type ServerPair } from "./support/weaviate.js";

/**
 * Collections on PostgreSQL. The CollectionStore contract, one test body run on both stores; the change feed only the
 * shared store has; then two API servers on one database driven by the official weaviate-client: what is written
 * through one is found, fetched, replaced and deleted through the other.
 */
const reachable = await postgresReachable();
let db: { url: string; drop: () => Promise<void> } | null = null;
const opened: CollectionStore[] = [];
beforeAll(async () => {
  if (reachable) db = await createTestDatabase();
});
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await db?.drop();
});

const stores: { name: string; open: () => Promise<CollectionStore> }[] = [
  { name: "SQLite", open: async () => new SqliteCollectionStore(":memory:") },
  { name: "PostgreSQL", open: async () => PgCollectionStore.open(db!.url) },
];

const vec = (...xs: number[]) => Float32Array.from(xs);
const write = (cls: string, id: string, props: Record<string, unknown>, vector: Float32Array | null, extra: Partial<{ vectors: Record<string, Float32Array>; references: { property: string; to_class: string; to_id: string }[] }> = {}) => ({
  class: cls,
  id,
  properties: props,
  vector,
  vectors: extra.vectors ?? null,
  references: extra.references ?? [],
});

for (const { name, open } of stores) {
  describe.skipIf(name === "PostgreSQL" && !reachable)(`CollectionStore contract on ${name}`, () => {
    let store: CollectionStore;
    const cls = `Article${Math.random().toString(36).slice(2, 8)}`;
    beforeAll(async () => {
      store = await open();
      opened.push(store);
    });

    it("keeps a class's owner when its definition is replaced, and lists classes in creation order", async () => {
      await store.putClass(cls, { class: cls, properties: [] }, "owner-a");
      await store.putClass(cls + "B", { class: cls + "B" }, null);
      await store.putClass(cls, { class: cls, properties: [{ name: "title" }] }, "owner-b");
      const mine = (await store.listClasses()).filter((c) => c.name.startsWith(cls));
      expect(mine.map((c) => c.name)).toEqual([cls, cls + "B"]);
      expect(mine[0]!.owner).toBe("owner-a");
      expect(mine[0]!.definition).toEqual({ class: cls, properties: [{ name: "title" }] });
      expect(mine[1]!.owner).toBeNull();
    });

    it("upserts objects: seq and creation time kept, what each had before reported, versions bumped", async () => {
      const v0 = (await store.listClasses()).find((c) => c.name === cls)!.version;
      const [a, b] = await store.upsertObjects([write(cls, "a", { title: "A", n: { z: 1, a: 2 } }, vec(1, 0)), write(cls, "b", { title: "B" }, null, { vectors: { title: vec(0, 1, 0) } })], 1000);
      expect(a).toMatchObject({ created: true, hadVector: false, hadVectors: [], created_at: 1000, updated_at: 1000 });
      expect(b).toMatchObject({ created: true, hadVector: false, hadVectors: [] });
      const v1 = (await store.listClasses()).find((c) => c.name === cls)!.version;
      expect(v1).toBeGreaterThan(v0);
      const [a2, b2] = await store.upsertObjects([write(cls, "a", { title: "A2" }, null), write(cls, "b", { title: "B2" }, vec(3, 4))], 2000);
      expect(a2).toMatchObject({ seq: a!.seq, created: false, hadVector: true, hadVectors: [], created_at: 1000, updated_at: 2000 });
      expect(b2).toMatchObject({ seq: b!.seq, created: false, hadVector: false, hadVectors: ["title"] });
      expect((await store.listClasses()).find((c) => c.name === cls)!.version).toBeGreaterThan(v1);
      // The same id twice in one call: the second sees the first.
      const twice = await store.upsertObjects([write(cls, "c", { i: 1 }, vec(1, 1)), write(cls, "c", { i: 2 }, vec(2, 2))], 3000);
      expect(twice[0]).toMatchObject({ created: true });
      expect(twice[1]).toMatchObject({ seq: twice[0]!.seq, created: false, hadVector: true });
      expect((await store.getObject(cls, "c", false))!.properties).toEqual({ i: 2 });
    });

    it("reads objects with and without vectors, by id, by seq and in seq order", async () => {
      const a = (await store.getObject(cls, "a", true))!;
      expect(a.properties).toEqual({ title: "A2" });
      expect(a.vector).toBeNull();
      const b = (await store.getObject(cls, "b", true))!;
      expect([...b.vector!]).toEqual([3, 4]);
      expect(b.vectors).toBeNull();
      expect((await store.getObject(cls, "b", false))!.vector).toBeNull();
      expect(await store.getObject(cls, "missing", true)).toBeNull();
      const scanned = await store.scanObjects(cls, 0, 10, true);
      expect(scanned.map((o) => o.id)).toEqual(["a", "b", "c"]);
      expect((await store.scanObjects(cls, scanned[0]!.seq, 1, false)).map((o) => o.id)).toEqual(["b"]);
      const bySeq = await store.objectsBySeq(cls, [scanned[2]!.seq, scanned[0]!.seq, 999_999], false);
      expect(bySeq.map((o) => o.id).sort()).toEqual(["a", "c"]);
      expect(await store.classesOfObject("a")).toEqual([cls]);
      expect((await store.countObjects()).get(cls)).toBe(3);
      expect(await store.countVectors(cls)).toBe(2);
      await store.upsertObjects([write(cls, "d", {}, null, { vectors: { title: vec(1, 2, 3), body: vec(1) } })], 4000);
      expect(await store.countVectors(cls, "title")).toBe(1);
      expect(await store.countVectors(cls, "nope")).toBe(0);
      const d = (await store.getObject(cls, "d", true))!;
      expect(Object.fromEntries(Object.entries(d.vectors!).map(([k, v]) => [k, [...v]]))).toEqual({ title: [1, 2, 3], body: [1] });
    });

    it("keeps references in insertion order, replaced with the object, deleted by property or target", async () => {
      await store.upsertObjects([write(cls, "e", {}, null, { references: [{ property: "p", to_class: cls, to_id: "a" }] })], 5000);
      await store.addReferences([
        { from_class: cls, from_id: "e", property: "p", to_class: cls, to_id: "b" },
        { from_class: cls, from_id: "e", property: "q", to_class: cls, to_id: "c" },
      ]);
      expect((await store.referencesFrom(cls, ["e"])).map((r) => `${r.property}>${r.to_id}`)).toEqual(["p>a", "p>b", "q>c"]);
      expect(await store.deleteReferences(cls, "e", "p", { to_class: cls, to_id: "a" })).toBe(1);
      expect(await store.deleteReferences(cls, "e", "q", null)).toBe(1);
      expect((await store.referencesFrom(cls, ["e"])).map((r) => r.to_id)).toEqual(["b"]);
      await store.upsertObjects([write(cls, "e", {}, null, { references: [{ property: "p", to_class: cls, to_id: "d" }] })], 6000);
      expect((await store.referencesFrom(cls, ["e", "a"])).map((r) => r.to_id)).toEqual(["d"]);
    });

    it("deletes objects with their references, answering which had vectors", async () => {
      const seqs = new Map((await store.scanObjects(cls, 0, 100, false)).map((o) => [o.id, o.seq]));
      const r = await store.deleteObjects(cls, ["d", "b", "a", "missing", "e"]);
      expect(r.deleted).toEqual(["d", "b", "a", "e"]);
      expect(r.vectorSeqs).toEqual([seqs.get("b")]);
      expect(r.namedSeqs).toEqual({ title: [seqs.get("d")], body: [seqs.get("d")] });
      expect(await store.referencesFrom(cls, ["e"])).toEqual([]);
      expect((await store.scanObjects(cls, 0, 100, false)).map((o) => o.id)).toEqual(["c"]);
      expect((await store.deleteObjects(cls, ["missing"])).deleted).toEqual([]);
    });

    it("deletes a class with its objects", async () => {
      await store.deleteClass(cls);
      expect((await store.listClasses()).some((c) => c.name === cls)).toBe(false);
      expect(await store.getObject(cls, "c", false)).toBeNull();
      expect((await store.countObjects()).get(cls)).toBeUndefined();
      expect(store.changes === undefined).toBe(name === "SQLite");
    });
  });
}

describe.skipIf(!reachable)("the change feed of the shared store", () => {
  it("hands each process what the others wrote and deleted, never its own", async () => {
    const a = await PgCollectionStore.open(db!.url);
    const b = await PgCollectionStore.open(db!.url);
    opened.push(a, b);
    const cls = "Feed";
    await a.putClass(cls, { class: cls }, null);
    const start = (await b.classVersions()).find((v) => v.name === cls)!;
    await a.upsertObjects([write(cls, "x", { n: 1 }, vec(1, 2)), write(cls, "y", { n: 2 }, vec(3, 4))], 1);
    await b.upsertObjects([write(cls, "z", { n: 3 }, vec(5, 6))], 2);
    const now = (await a.classVersions()).find((v) => v.name === cls)!;
    expect(now.version).toBeGreaterThan(start.version);
    // b sees a's two writes, not its own; a sees b's one.
    const forB = await b.changesSince(cls, start.version, null, 10);
    expect(forB.upserted.map((o) => o.id)).toEqual(["x", "y"]);
    expect([...forB.upserted[0]!.vector!]).toEqual([1, 2]);
    expect((await a.changesSince(cls, start.version, null, 10)).upserted.map((o) => o.id)).toEqual(["z"]);
    // Paged by (version, seq).
    const first = await b.changesSince(cls, start.version, null, 1);
    expect(first.more).toBe(true);
    expect((await b.changesSince(cls, start.version, first.cursor, 1)).upserted.map((o) => o.id)).toEqual(["y"]);
    // A delete is a tombstone for the others.
    const seqY = forB.upserted[1]!.seq;
    await a.deleteObjects(cls, ["y"]);
    expect((await b.changesSince(cls, now.version, null, 10)).removed).toEqual([seqY]);
    expect(await b.hasChangesSince(cls, now.version)).toBe(true);
    expect(await a.hasChangesSince(cls, now.version)).toBe(false);
    // A definition change by a is marked, and is a's own.
    await a.putClass(cls, { class: cls, description: "changed" }, null);
    const after = (await b.classVersions()).find((v) => v.name === cls)!;
    expect(after.def_version).toBe(after.version);
    expect(a.isOwn(cls, after.def_version)).toBe(true);
    expect(b.isOwn(cls, after.def_version)).toBe(false);
  });
});

describe.skipIf(!reachable)("two API servers on one PostgreSQL database", () => {
  let ca: WeaviateClient;
  let cb: WeaviateClient;
  // A database of its own: the contract tests above leave bare class rows behind.
  let own: { url: string; drop: () => Promise<void> };
  let pair: ServerPair;
  const connect = connectWeaviate;
  beforeAll(async () => {
    pair = await startServerPair();
    ({ ca, cb, db: own } = pair);
  }, 60_000);
  afterAll(async () => {
    await pair?.close();
  });

  it("a collection created and filled through one is found, fetched, replaced and deleted through the other", async () => {
    await ca.collections.create({ name: "Shared", properties: [{ name: "title", dataType: "text" }] });
    expect(await cb.collections.exists("Shared")).toBe(true);
    const onA = ca.collections.get("Shared");
    const onB = cb.collections.get("Shared");
    const ids = Array.from({ length: 20 }, () => randomUUID());
    // Through A's gRPC batch: twenty objects on a circle.
    const inserted = await onA.data.insertMany(ids.map((id, i) => ({ id, properties: { title: `t${i}` }, vectors: [Math.cos(i / 4), Math.sin(i / 4), 0.5] })));
    expect(inserted.hasErrors).toBe(false);
    // Through B: nearVector finds A's objects, nearest first; fetch by id too.
    const near = await onB.query.nearVector([Math.cos(7 / 4), Math.sin(7 / 4), 0.5], { limit: 3, returnMetadata: ["distance"] });
    expect(near.objects[0]!.uuid).toBe(ids[7]);
    expect(near.objects[0]!.properties.title).toBe("t7");
    expect((await onB.query.fetchObjectById(ids[3]!))?.properties.title).toBe("t3");
    expect((await cb.collections.get("Shared").aggregate.overAll()).totalCount).toBe(20);

    // Replaced through B (new vector far away), found there through A.
    await onB.data.replace({ id: ids[0]!, properties: { title: "moved" }, vectors: [0, 0, -5] });
    const moved = await onA.query.nearVector([0, 0, -5], { limit: 1 });
    expect(moved.objects[0]!.uuid).toBe(ids[0]);
    expect(moved.objects[0]!.properties.title).toBe("moved");

    // Deleted through B: gone through A, from search and by id.
    expect(await onB.data.deleteById(ids[7]!)).toBe(true);
    const after = await onA.query.nearVector([Math.cos(7 / 4), Math.sin(7 / 4), 0.5], { limit: 3 });
    expect(after.objects.map((o) => o.uuid)).not.toContain(ids[7]);
    expect(await onA.query.fetchObjectById(ids[7]!)).toBeNull();
    // A batch delete through A's gRPC, seen by B.
    await onA.data.deleteMany(onA.filter.byId().containsAny(ids.slice(10)));
    const rest = await onB.query.nearVector([1, 0, 0.5], { limit: 50 });
    expect(rest.objects.map((o) => o.uuid).sort()).toEqual(ids.slice(0, 10).filter((id) => id !== ids[7]).sort());

    // A class deleted through A is gone through B.
    await ca.collections.delete("Shared");
    expect(await cb.collections.exists("Shared")).toBe(false);
  }, 60_000);

  it("a tenant created and filled through one is searched through the other, and no other tenant sees it", async () => {
    await ca.collections.create({ name: "Tenanted", multiTenancy: weaviate.configure.multiTenancy({ enabled: true }), properties: [{ name: "title", dataType: "text" }] });
    await ca.collections.get("Tenanted").tenants.create([{ name: "t1" }, { name: "t2" }]);
    const id = randomUUID();
    const inserted = await ca.collections.get("Tenanted").withTenant("t1").data.insertMany([{ id, properties: { title: "mine" }, vectors: [1, 0] }]);
    expect(inserted.hasErrors).toBe(false);
    const onB = cb.collections.get("Tenanted");
    expect((await onB.tenants.get()).t1?.name).toBe("t1");
    expect((await onB.withTenant("t1").query.nearVector([1, 0], { limit: 1 })).objects[0]?.uuid).toBe(id);
    expect((await onB.withTenant("t2").query.nearVector([1, 0], { limit: 1 })).objects).toEqual([]);
    await onB.withTenant("t1").data.deleteById(id);
    expect((await ca.collections.get("Tenanted").withTenant("t1").query.nearVector([1, 0], { limit: 1 })).objects).toEqual([]);
  }, 60_000);

  it("a server restarted on its data dir finds what the other wrote while it was down or just before it stopped", async () => {
    const dir = await mkdtemp(join(tmpdir(), "openbatch-pgcoll-"));
    try {
      let c = await startServer({}, { grpcPort: 0, databaseUrl: own.url, dataDir: dir });
      let cc = await connect(c);
      await cc.collections.create({ name: "Restart", properties: [{ name: "title", dataType: "text" }] });
      const first = Array.from({ length: 10 }, (_, i) => ({ id: randomUUID(), properties: { title: `c${i}` }, vectors: [i, 1] }));
      expect((await cc.collections.get("Restart").data.insertMany(first)).hasErrors).toBe(false);
      // Written through B right before C stops: C's saved index must not claim to hold it.
      const before = randomUUID();
      expect((await cb.collections.get("Restart").data.insertMany([{ id: before, properties: { title: "b1" }, vectors: [50, 1] }])).hasErrors).toBe(false);
      await cc.close();
      await c.close();
      // Restarted with nothing written meanwhile: its saved index is loaded only if it holds B's write.
      c = await startServer({}, { grpcPort: 0, databaseUrl: own.url, dataDir: dir });
      cc = await connect(c);
      expect((await cc.collections.get("Restart").query.nearVector([50, 1], { limit: 1 })).objects[0]?.uuid).toBe(before);
      await cc.close();
      await c.close();
      // Written through B while C is down.
      const during = randomUUID();
      expect((await cb.collections.get("Restart").data.insertMany([{ id: during, properties: { title: "b2" }, vectors: [-50, 1] }])).hasErrors).toBe(false);
      c = await startServer({}, { grpcPort: 0, databaseUrl: own.url, dataDir: dir });
      cc = await connect(c);
      const col = cc.collections.get("Restart");
      expect((await col.query.nearVector([50, 1], { limit: 1 })).objects[0]?.uuid).toBe(before);
      expect((await col.query.nearVector([-50, 1], { limit: 1 })).objects[0]?.uuid).toBe(during);
      expect((await col.query.nearVector([3, 1], { limit: 1 })).objects[0]?.uuid).toBe(first[3]!.id);
      await cc.close();
      await c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
