import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";
import { cosineDistance as cosine } from "./support/vectors.js";

/*
 * GraphQL `groupBy` on Get (raw GraphQL, as a user of Weaviate's GraphQL API sends it): groups in order of their best
 * hit, objectsPerGroup hits each, with their distances — checked against exact distances computed here and against
 * the official client's gRPC groupBy for the same search.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const TOPICS = ["science", "finance", "sport", "news"];
const N = 24;
const vectorOf = (i: number) => [Math.cos(i / 4), Math.sin(i / 4), 0.5];
const docs = Array.from({ length: N }, (_, i) => ({ title: `doc ${i} ${i % 2 ? "cell biology" : "markets"}`, topic: TOPICS[i % 4]! }));

describe("GraphQL groupBy on Get", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const gql = async (query: string) => (await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) })).json() as Promise<any>;
  const GROUP = "_additional { id distance group { id count maxDistance minDistance groupedBy { value path } hits { title topic _additional { id distance } } } }";

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Docs",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: [
        { name: "title", dataType: "text" },
        { name: "topic", dataType: "text" },
      ],
    });
    const r = await client.collections.use("Docs").data.insertMany(docs.map((d, i) => ({ id: uuid(i), properties: d, vectors: vectorOf(i) })));
    expect(r.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("nearVector: groups in order of their best hit, objectsPerGroup each, distances exact", async () => {
    const q = vectorOf(5.3);
    const body = await gql(`{ Get { Docs(nearVector: {vector: ${JSON.stringify(q)}}, groupBy: {path: ["topic"], groups: 3, objectsPerGroup: 2}) { title ${GROUP} } } }`);
    expect(body.errors).toBeUndefined();
    const entries = body.data.Get.Docs as any[];
    // Expected from exact distances: objects by distance, grouped by topic.
    const ranked = docs.map((d, i) => ({ i, topic: d.topic, d: cosine(q, vectorOf(i)) })).sort((a, b) => a.d - b.d);
    const order = [...new Set(ranked.map((r) => r.topic))].slice(0, 3);
    expect(entries.map((e) => e._additional.group.groupedBy.value)).toEqual(order);
    entries.forEach((e, k) => {
      const want = ranked.filter((r) => r.topic === order[k]).slice(0, 2);
      const g = e._additional.group;
      expect(g.id).toBe(k);
      expect(g.count).toBe(2);
      expect(g.groupedBy.path).toEqual(["topic"]);
      expect(g.hits.map((h: any) => h._additional.id)).toEqual(want.map((w) => uuid(w.i)));
      expect(g.minDistance).toBeCloseTo(want[0]!.d, 5);
      expect(g.maxDistance).toBeCloseTo(want[1]!.d, 5);
      // The entry itself is the group's best hit.
      expect(e._additional.id).toBe(uuid(want[0]!.i));
      expect(e.title).toBe(docs[want[0]!.i]!.title);
    });
  });

  it("hybrid: the same groups as the client's gRPC groupBy", async () => {
    const q = vectorOf(11);
    const body = await gql(`{ Get { Docs(hybrid: {query: "cell", alpha: 0.5, vector: ${JSON.stringify(q)}}, groupBy: {path: ["topic"], groups: 4, objectsPerGroup: 3}) { ${GROUP} } } }`);
    expect(body.errors).toBeUndefined();
    const viaGrpc = await client.collections.use("Docs").query.hybrid("cell", { vector: q, alpha: 0.5, groupBy: { property: "topic", numberOfGroups: 4, objectsPerGroup: 3 } });
    const entries = body.data.Get.Docs as any[];
    expect(entries.map((e) => e._additional.group.groupedBy.value)).toEqual(Object.keys(viaGrpc.groups));
    for (const e of entries) {
      const g = e._additional.group;
      expect(g.hits.map((h: any) => h._additional.id)).toEqual(viaGrpc.groups[g.groupedBy.value]!.objects.map((o) => o.uuid));
    }
  });

  it("limit: the limit nearest hits are grouped, as Weaviate and the client's gRPC groupBy do (none widened)", async () => {
    const q = vectorOf(9.6);
    const ranked = docs.map((d, i) => ({ i, topic: d.topic, d: cosine(q, vectorOf(i)) })).sort((a, b) => a.d - b.d);
    // 3 hits hold 3 topics at most, one hit each here: 4 groups of 2 asked for, fewer come back.
    const top = ranked.slice(0, 3);
    const body = await gql(`{ Get { Docs(nearVector: {vector: ${JSON.stringify(q)}}, limit: 3, groupBy: {path: ["topic"], groups: 4, objectsPerGroup: 2}) { ${GROUP} } } }`);
    expect(body.errors).toBeUndefined();
    const entries = body.data.Get.Docs as any[];
    const order = [...new Set(top.map((r) => r.topic))];
    expect(order.length).toBeLessThan(4);
    expect(entries.map((e) => e._additional.group.groupedBy.value)).toEqual(order);
    for (const e of entries) {
      const g = e._additional.group;
      expect(g.hits.map((h: any) => h._additional.id)).toEqual(top.filter((r) => r.topic === g.groupedBy.value).map((r) => uuid(r.i)));
    }
    const viaGrpc = await client.collections.use("Docs").query.nearVector(q, { limit: 3, groupBy: { property: "topic", numberOfGroups: 4, objectsPerGroup: 2 } });
    expect(Object.keys(viaGrpc.groups)).toEqual(order);
    for (const e of entries) expect(viaGrpc.groups[e._additional.group.groupedBy.value]!.objects.map((o) => o.uuid)).toEqual(e._additional.group.hits.map((h: any) => h._additional.id));
    // Without a limit, Weaviate's default 10 hits.
    const ten = ranked.slice(0, 10);
    const byDefault = await gql(`{ Get { Docs(nearVector: {vector: ${JSON.stringify(q)}}, groupBy: {path: ["topic"], groups: 4, objectsPerGroup: 5}) { ${GROUP} } } }`);
    expect(byDefault.errors).toBeUndefined();
    for (const e of byDefault.data.Get.Docs as any[]) expect(e._additional.group.count).toBe(ten.filter((r) => r.topic === e._additional.group.groupedBy.value).length);
  });

  it("wrong groupBy arguments and selections are GraphQL errors", async () => {
    const v = JSON.stringify(vectorOf(1));
    const err = async (args: string, sel = GROUP) => ((await gql(`{ Get { Docs(${args}) { ${sel} } } }`)).errors ?? [])[0]?.message as string | undefined;
    expect(await err(`groupBy: {path: ["topic"], groups: 2, objectsPerGroup: 1}`)).toMatch(/groupBy needs a search/);
    expect(await err(`nearVector: {vector: ${v}}, groupBy: {path: ["nope"], groups: 2, objectsPerGroup: 1}`)).toMatch(/no such prop with name 'nope'/);
    expect(await err(`nearVector: {vector: ${v}}, groupBy: {path: ["topic"], groups: 0, objectsPerGroup: 1}`)).toMatch(/groups must be an integer > 0/);
    expect(await err(`nearVector: {vector: ${v}}, groupBy: {path: ["topic"], groups: 2, objectsPerGroup: 1, sort: 1}`)).toMatch(/'sort' is not supported/);
    expect(await err(`nearVector: {vector: ${v}}, groupBy: {path: ["topic"], groups: 2, objectsPerGroup: 1}`, "_additional { group { size } }")).toMatch(/Cannot query field "size"/);
  });
});
