import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";

/*
 * gRPC Aggregate through the official client: /v1/meta reports Weaviate 1.29, from which the client 3.14 sends its
 * aggregate API over gRPC (weaviate.v1.Weaviate/Aggregate). Every metric is checked against values computed here
 * from the data, and against raw GraphQL Aggregate for the same question.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const CATEGORIES = ["tools", "toys", "books"];
const N = 30;
const items = Array.from({ length: N }, (_, i) => ({
  name: `item ${i} ${i % 4 === 0 ? "red hammer" : "blue thing"}`,
  category: CATEGORIES[i % 3]!,
  price: Math.round((i * 3.7 + 1) * 100) / 100,
  stock: (i * 7) % 11,
  available: i % 4 !== 1,
  released: new Date(Date.UTC(2020, 0, 1 + i * 10)).toISOString(),
}));
const vectorOf = (i: number) => [Math.cos(i / 5), Math.sin(i / 5), 0.3];

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mode = (xs: number[]) => {
  const c = new Map<number, number>();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return [...c].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
};

describe("gRPC Aggregate through weaviate-client", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const post = async (body: unknown) => (await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<any>;

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Products",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: [
        { name: "name", dataType: "text" },
        { name: "category", dataType: "text" },
        { name: "price", dataType: "number" },
        { name: "stock", dataType: "int" },
        { name: "available", dataType: "boolean" },
        { name: "released", dataType: "date" },
      ],
    });
    const r = await client.collections.use("Products").data.insertMany(items.map((p, i) => ({ id: uuid(i), properties: p, vectors: vectorOf(i) })));
    expect(r.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("reports a version from which the client aggregates over gRPC", async () => {
    const meta = await client.getMeta();
    const [major, minor] = meta.version!.split(".").map(Number);
    expect(major! * 100 + minor!).toBeGreaterThanOrEqual(129);
  });

  it("overAll: every metric of int, number, text, boolean and date properties", async () => {
    const coll = client.collections.use("Products");
    const m = coll.metrics;
    const res = await coll.aggregate.overAll({
      returnMetrics: [
        m.aggregate("stock").integer(["count", "sum", "mean", "median", "mode", "maximum", "minimum"]),
        m.aggregate("price").number(["count", "sum", "mean", "median", "mode", "maximum", "minimum"]),
        m.aggregate("category").text(["count", "topOccurrencesOccurs", "topOccurrencesValue"]),
        m.aggregate("name").text(["topOccurrencesValue"], 1),
        m.aggregate("available").boolean(["count", "totalTrue", "totalFalse", "percentageTrue", "percentageFalse"]),
        m.aggregate("released").date(["count", "median", "maximum", "minimum"]),
      ],
    });
    expect(res.totalCount).toBe(N);
    const stock = items.map((p) => p.stock);
    expect(res.properties.stock).toMatchObject({ count: N, sum: sum(stock), median: median(stock), mode: mode(stock), maximum: Math.max(...stock), minimum: Math.min(...stock) });
    expect((res.properties.stock as { mean: number }).mean).toBeCloseTo(sum(stock) / N, 9);
    const price = items.map((p) => p.price);
    expect(res.properties.price).toMatchObject({ count: N, median: median(price), maximum: Math.max(...price), minimum: Math.min(...price) });
    expect((res.properties.price as { sum: number }).sum).toBeCloseTo(sum(price), 6);
    expect(res.properties.category).toEqual({ count: N, topOccurrences: CATEGORIES.map((value) => ({ value, occurs: N / 3 })).sort((a, b) => (a.value < b.value ? -1 : 1)) });
    expect((res.properties.name as { topOccurrences: unknown[] }).topOccurrences).toHaveLength(1);
    const yes = items.filter((p) => p.available).length;
    expect(res.properties.available).toEqual({ count: N, totalTrue: yes, totalFalse: N - yes, percentageTrue: yes / N, percentageFalse: (N - yes) / N });
    const times = items.map((p) => Date.parse(p.released));
    expect(res.properties.released).toMatchObject({ count: N, maximum: new Date(Math.max(...times)).toISOString(), minimum: new Date(Math.min(...times)).toISOString() });
    // The same through GraphQL.
    const gql = await post({ query: "{ Aggregate { Products { meta { count } stock { sum maximum } category { topOccurrences(limit: 1) { value occurs } } } } }" });
    expect(gql.data.Aggregate.Products[0].meta.count).toBe(res.totalCount);
    expect(gql.data.Aggregate.Products[0].stock.sum).toBe((res.properties.stock as { sum: number }).sum);
  });

  it("filters, groupBy (text and int) and the number of groups", async () => {
    const coll = client.collections.use("Products");
    const filtered = await coll.aggregate.overAll({ filters: coll.filter.byProperty("available").equal(true), returnMetrics: coll.metrics.aggregate("price").number(["maximum"]) });
    expect(filtered.totalCount).toBe(items.filter((p) => p.available).length);
    expect((filtered.properties.price as { maximum: number }).maximum).toBe(Math.max(...items.filter((p) => p.available).map((p) => p.price)));

    const groups = await coll.aggregate.groupBy.overAll({ groupBy: { property: "category" }, returnMetrics: coll.metrics.aggregate("stock").integer(["sum"]) });
    expect(groups.map((g) => g.groupedBy.value).sort()).toEqual([...CATEGORIES].sort());
    for (const g of groups) {
      expect(g.groupedBy.prop).toBe("category");
      expect(g.totalCount).toBe(N / 3);
      expect((g.properties.stock as { sum: number }).sum).toBe(sum(items.filter((p) => p.category === g.groupedBy.value).map((p) => p.stock)));
    }
    const byStock = await coll.aggregate.groupBy.overAll({ groupBy: { property: "stock", limit: 2 } });
    expect(byStock).toHaveLength(2);
    for (const g of byStock) {
      expect(typeof g.groupedBy.value).toBe("number");
      expect(g.totalCount).toBe(items.filter((p) => p.stock === g.groupedBy.value).length);
    }
  });

  it("over the objectLimit nearest of nearVector, and of a keyword-only hybrid", async () => {
    const coll = client.collections.use("Products");
    const near = await coll.aggregate.nearVector(vectorOf(10), { objectLimit: 5, returnMetrics: coll.metrics.aggregate("stock").integer(["sum"]) });
    // The 5 nearest on the circle are 8..12.
    expect(near.totalCount).toBe(5);
    expect((near.properties.stock as { sum: number }).sum).toBe(sum([8, 9, 10, 11, 12].map((i) => items[i]!.stock)));
    const hybrid = await coll.aggregate.hybrid("hammer", { alpha: 0, objectLimit: 100 });
    expect(hybrid.totalCount).toBe(items.filter((p) => p.name.includes("hammer")).length);
  });

  it("refuses what it cannot answer with the client's error, never a wrong number", async () => {
    const coll = client.collections.use("Products");
    await expect(coll.aggregate.overAll({ returnMetrics: coll.metrics.aggregate("category").integer(["sum"]) })).rejects.toThrow(/category.*text/);
    await expect(coll.aggregate.overAll({ returnMetrics: coll.metrics.aggregate("nothing").integer(["sum"]) })).rejects.toThrow(/nothing/);
    await expect(coll.aggregate.nearVector([1, 0, 0])).rejects.toThrow(/objectLimit/);
  });
});
