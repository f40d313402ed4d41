import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { haversineMetres } from "../src/collections/extra-filters.js";
import { startServer, type TestServer } from "./support/harness.js";

/*
 * Filters through the official client (gRPC) and raw GraphQL: property length (`len(prop)`), WithinGeoRange on
 * geoCoordinates, IsNull; and the recall of a pre-filtered nearVector against exact search over the objects the
 * filter lets through (random vectors, 10 % and 50 % selectivity).
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const CITIES: [string, number, number][] = [
  ["Berlin", 52.52, 13.405],
  ["Potsdam", 52.3906, 13.0645],
  ["Hamburg", 53.5511, 9.9937],
  ["Munich", 48.1351, 11.582],
  ["Paris", 48.8566, 2.3522],
  ["Amsterdam", 52.3676, 4.9041],
];
const places = CITIES.map(([name, latitude, longitude], i) => ({ name, tags: Array.from({ length: i }, (_, k) => `t${k}`), location: { latitude, longitude }, note: i % 2 ? null : `note ${i}` }));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("property length, geo range, IsNull and filtered vector search", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const gql = async (query: string) => (await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) })).json() as Promise<any>;

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Place",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      invertedIndex: weaviate.configure.invertedIndex({ indexPropertyLength: true, indexNullState: true }),
      properties: [
        { name: "name", dataType: "text" },
        { name: "tags", dataType: "text[]" },
        { name: "location", dataType: "geoCoordinates" },
        { name: "note", dataType: "text" },
      ],
    });
    const r = await client.collections.use("Place").data.insertMany(places.map((p, i) => ({ id: uuid(i), properties: { name: p.name, tags: p.tags, location: p.location, ...(p.note ? { note: p.note } : {}) }, vectors: [1, i, 0] })));
    expect(r.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const names = (objects: { properties: Record<string, unknown> }[]) => objects.map((o) => o.properties.name as string).sort();

  it("len(prop): text length in characters and array length", async () => {
    const coll = client.collections.use("Place");
    const long = await coll.query.fetchObjects({ filters: coll.filter.byProperty("name", true).greaterThan(6) });
    expect(names(long.objects)).toEqual(places.filter((p) => p.name.length > 6).map((p) => p.name).sort());
    const tags = await coll.query.fetchObjects({ filters: coll.filter.byProperty("tags", true).equal(2) });
    expect(names(tags.objects)).toEqual(["Hamburg"]);
    const body = await gql('{ Get { Place(where: {path: ["len(tags)"], operator: LessThanEqual, valueInt: 1}) { name } } }');
    expect(body.errors).toBeUndefined();
    expect(body.data.Get.Place.map((p: { name: string }) => p.name).sort()).toEqual(["Berlin", "Potsdam"]);
  });

  it("len(prop) on a class that does not index property lengths is Weaviate's error", async () => {
    await client.collections.create({ name: "Plain", vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "name", dataType: "text" }] });
    const coll = client.collections.use("Plain");
    await expect(coll.query.fetchObjects({ filters: coll.filter.byProperty("name", true).equal(3) })).rejects.toThrow(/Property length must be indexed to be filterable/);
  });

  it("WithinGeoRange: the places within a distance of a point, by great-circle distance", async () => {
    const coll = client.collections.use("Place");
    const [, lat, lon] = CITIES[0]!;
    for (const metres of [1_000, 50_000, 300_000, 1_000_000]) {
      const got = await coll.query.fetchObjects({ filters: coll.filter.byProperty("location").withinGeoRange({ latitude: lat, longitude: lon, distance: metres }) });
      const want = places.filter((p) => haversineMetres(lat, lon, p.location.latitude, p.location.longitude) <= metres).map((p) => p.name).sort();
      expect(names(got.objects), `${metres} m`).toEqual(want);
    }
    // Potsdam is ~27 km from Berlin, Hamburg ~255 km.
    const body = await gql(`{ Get { Place(where: {path: ["location"], operator: WithinGeoRange, valueGeoRange: {geoCoordinates: {latitude: ${lat}, longitude: ${lon}}, distance: {max: 300000}}}) { name } } }`);
    expect(body.data.Get.Place.map((p: { name: string }) => p.name).sort()).toEqual(["Berlin", "Hamburg", "Potsdam"]);
    const bad = await gql('{ Get { Place(where: {path: ["name"], operator: WithinGeoRange, valueGeoRange: {geoCoordinates: {latitude: 1, longitude: 2}, distance: {max: 3}}}) { name } } }');
    expect(bad.errors[0].message).toMatch(/WithinGeoRange needs a geoCoordinates property/);
  });

  it("IsNull", async () => {
    const coll = client.collections.use("Place");
    const nulls = await coll.query.fetchObjects({ filters: coll.filter.byProperty("note").isNull(true) });
    expect(names(nulls.objects)).toEqual(places.filter((p) => !p.note).map((p) => p.name).sort());
  });

  it("pre-filtered nearVector: recall@10 >= 0.95 against exact search over the filtered objects", async () => {
    const n = 3_000, dim = 32, queries = 20, k = 10;
    const rand = rng(42);
    const vecs = Array.from({ length: n }, () => Array.from({ length: dim }, () => rand() * 2 - 1));
    const bucket = (i: number) => i % 10; // bucket 0: 10 %, buckets 0-4: 50 %
    await client.collections.create({ name: "Vecs", vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "bucket", dataType: "int" }] });
    const coll = client.collections.use("Vecs");
    for (let s = 0; s < n; s += 1000) {
      const r = await coll.data.insertMany(vecs.slice(s, s + 1000).map((v, j) => ({ id: uuid(s + j), properties: { bucket: bucket(s + j) }, vectors: v })));
      expect(r.hasErrors).toBe(false);
    }
    const cos = (a: number[], b: number[]) => {
      let d = 0, na = 0, nb = 0;
      for (let j = 0; j < dim; j++) (d += a[j]! * b[j]!), (na += a[j]! ** 2), (nb += b[j]! ** 2);
      return 1 - d / Math.sqrt(na * nb);
    };
    for (const [label, maxBucket] of [["10 %", 0], ["50 %", 4]] as const) {
      let found = 0;
      for (let q = 0; q < queries; q++) {
        const query = Array.from({ length: dim }, () => rand() * 2 - 1);
        const exact = vecs.map((v, i) => [i, cos(query, v)] as const).filter(([i]) => bucket(i) <= maxBucket).sort((a, b) => a[1] - b[1]).slice(0, k).map(([i]) => uuid(i));
        const got = await coll.query.nearVector(query, { limit: k, filters: coll.filter.byProperty("bucket").lessOrEqual(maxBucket) });
        for (const o of got.objects) expect(bucket(o.properties.bucket as number)).toBeLessThanOrEqual(maxBucket);
        found += got.objects.filter((o) => exact.includes(o.uuid)).length;
      }
      expect(found / (queries * k), label).toBeGreaterThanOrEqual(0.95);
    }
  }, 120_000);
});
