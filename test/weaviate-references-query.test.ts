import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { Filters, type WeaviateClient } from "weaviate-client";
import { startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";

/*
 * References in queries, as a Weaviate user writes them: gRPC `returnReferences` (the client's
 * `obj.references[prop].objects`, nested object fields, multi-target with targetCollection, nested references over the
 * wire) and GraphQL `ref { ... on Class { … } }` to any depth; filters through references (`Filter.byRef`,
 * `byRefMultiTarget`, a path `["hasCategory", "Category", "title"]` to any depth) and on reference counts
 * (`Filter.byRefCount`, `path: ["hasCategory"]` with valueInt) on listings, nearVector, bm25, hybrid, aggregate and
 * batch delete, over gRPC and GraphQL / REST; references within a tenant. Every expectation is computed from the data
 * inserted below.
 */

const id = (kind: number, n: number) => `00000000-0000-4000-8000-${(kind * 1000 + n).toString(16).padStart(12, "0")}`;
const CATALOGS = ["Main", "Outlet"];
/** Categories: title, rank, an object property, and the catalog each is in. */
const CATEGORIES = [
  { title: "Science", rank: 1, meta: { code: "SCI", level: 3 }, catalog: 0 },
  { title: "History", rank: 2, meta: { code: "HIS", level: 1 }, catalog: 1 },
  { title: "Art", rank: 3, meta: { code: "ART", level: 2 }, catalog: 1 },
  { title: "Sport", rank: 4, meta: { code: "SPO", level: 5 }, catalog: 0 },
];
const AUTHORS = ["Ann", "Bob"];
const N = 12;
/** Article i's categories, in the order its references are added: none, one or two. */
const categoriesOf = (i: number) => (i % 5 === 4 ? [] : i % 3 === 0 ? [i % 4, (i + 1) % 4] : [i % 4]);
/** Article i's multi-target `about` references: an author for even i, and its first category for i divisible by 4. */
const aboutOf = (i: number): { cls: "Author" | "Category"; n: number }[] => [...(i % 2 === 0 ? [{ cls: "Author" as const, n: (i / 2) % 2 }] : []), ...(i % 4 === 0 && categoriesOf(i).length ? [{ cls: "Category" as const, n: categoriesOf(i)[0]! }] : [])];
const articleIds = Array.from({ length: N }, (_, i) => id(3, i));
const vectorOf = (i: number) => [Math.cos(i / 3), Math.sin(i / 3)];
const articleWhere = (pred: (i: number) => boolean) => articleIds.filter((_, i) => pred(i)).sort();
const hasCategory = (i: number, pred: (c: (typeof CATEGORIES)[number]) => boolean) => categoriesOf(i).some((c) => pred(CATEGORIES[c]!));

describe("references in queries and filters", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const gql = async (query: string) => (await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) })).json() as Promise<any>;

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await connectWeaviate(server);
    const none = weaviate.configure.vectors.selfProvided();
    await client.collections.create({ name: "Catalog", vectorizers: none, properties: [{ name: "name", dataType: "text" }] });
    await client.collections.create({
      name: "Category",
      vectorizers: none,
      properties: [
        { name: "title", dataType: "text" },
        { name: "rank", dataType: "int" },
        { name: "meta", dataType: "object", nestedProperties: [{ name: "code", dataType: "text" }, { name: "level", dataType: "int" }] },
      ],
      references: [{ name: "inCatalog", targetCollection: "Catalog" }],
    });
    await client.collections.create({ name: "Author", vectorizers: none, properties: [{ name: "name", dataType: "text" }] });
    await client.collections.create({
      name: "Article",
      vectorizers: none,
      properties: [
        { name: "title", dataType: "text" },
        { name: "words", dataType: "int" },
      ],
      references: [
        { name: "hasCategory", targetCollection: "Category" },
        { name: "about", targetCollections: ["Category", "Author"] },
      ],
    });
    const ok = (r: { hasErrors: boolean; errors: unknown }) => expect(r.errors).toEqual({});
    ok(await client.collections.use("Catalog").data.insertMany(CATALOGS.map((name, n) => ({ id: id(0, n), properties: { name }, vectors: [1, n] }))));
    ok(await client.collections.use("Category").data.insertMany(CATEGORIES.map((c, n) => ({ id: id(1, n), properties: { title: c.title, rank: c.rank, meta: c.meta }, references: { inCatalog: id(0, c.catalog) }, vectors: [n, 1] }))));
    ok(await client.collections.use("Author").data.insertMany(AUTHORS.map((name, n) => ({ id: id(2, n), properties: { name }, vectors: [1, n] }))));
    ok(
      await client.collections.use("Article").data.insertMany(
        articleIds.map((aid, i) => {
          const about = aboutOf(i);
          return {
            id: aid,
            properties: { title: `article ${i} about ${categoriesOf(i).map((c) => CATEGORIES[c]!.title.toLowerCase()).join(" ") || "nothing"}`, words: 100 * i },
            references: {
              ...(categoriesOf(i).length ? { hasCategory: categoriesOf(i).map((c) => id(1, c)) } : {}),
              ...(about.length ? { about: about.map((a) => ({ targetCollection: a.cls, uuids: id(a.cls === "Author" ? 2 : 1, a.n) })) } : {}),
            },
            vectors: vectorOf(i),
          };
        }),
      ),
    );
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("returns references over gRPC as the client reads them (returnReferences, nested object fields, multi-target)", async () => {
    const articles = client.collections.use("Article");
    const r = await articles.query.fetchObjects({
      limit: N,
      returnProperties: ["title"],
      returnReferences: [{ linkOn: "hasCategory", returnProperties: ["title", { name: "meta", properties: ["code"] }], returnMetadata: ["creationTime"] }],
    });
    expect(r.objects).toHaveLength(N);
    for (const o of r.objects) {
      const i = articleIds.indexOf(o.uuid);
      const want = categoriesOf(i);
      expect(Object.keys(o.properties)).toEqual(["title"]);
      if (want.length === 0) {
        expect(o.references?.hasCategory).toBeUndefined();
        continue;
      }
      const refs = o.references!.hasCategory!.objects;
      expect(refs.map((x) => x.uuid)).toEqual(want.map((c) => id(1, c)));
      expect(refs.map((x) => x.properties)).toEqual(want.map((c) => ({ title: CATEGORIES[c]!.title, meta: { code: CATEGORIES[c]!.meta.code } })));
      for (const x of refs) expect(x.metadata?.creationTime).toBeInstanceOf(Date);
    }
    // All properties of the referenced objects when none are named; the multi-target property by its target collection.
    const one = await articles.query.fetchObjectById(articleIds[0]!, {
      returnReferences: [
        { linkOn: "hasCategory", includeVector: true },
        { linkOn: "about", targetCollection: "Author", returnProperties: ["name"] },
      ],
    });
    expect(one!.references!.hasCategory!.objects.map((x) => x.properties)).toEqual(categoriesOf(0).map((c) => ({ title: CATEGORIES[c]!.title, rank: CATEGORIES[c]!.rank, meta: CATEGORIES[c]!.meta })));
    expect(one!.references!.hasCategory!.objects.map((x) => x.vectors.default)).toEqual(categoriesOf(0).map((c) => [c, 1]));
    expect(one!.references!.about!.objects.map((x) => [x.uuid, x.properties.name])).toEqual(aboutOf(0).filter((a) => a.cls === "Author").map((a) => [id(2, a.n), AUTHORS[a.n]]));
    // Weaviate's answer for a multi-target property without its target collection.
    await expect(articles.query.fetchObjects({ returnReferences: [{ linkOn: "about" }] })).rejects.toThrow(/multi target references from collection Article and property about with need an explicit linked collection/);
    await expect(articles.query.fetchObjects({ returnReferences: [{ linkOn: "title" }] })).rejects.toThrow(/not a cross-reference property/);
  });

  it("resolves nested references over the wire (ref_properties inside ref_properties)", async () => {
    const def = loadSync(["weaviate.proto", "health.proto"].map((f) => fileURLToPath(new URL(`../src/api/weaviate-grpc/${f}`, import.meta.url))), { longs: Number, enums: String, defaults: false });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const raw = new pkg.weaviate.v1.Weaviate(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<any>((resolve, reject) =>
        raw.Search(
          {
            collection: "Article",
            limit: N,
            filters: { operator: 1, target: { property: "_id" }, valueText: articleIds[3] },
            properties: {
              nonRefProperties: ["title"],
              refProperties: [
                {
                  referenceProperty: "hasCategory",
                  metadata: { uuid: true },
                  properties: { nonRefProperties: ["title"], refProperties: [{ referenceProperty: "inCatalog", metadata: { uuid: true }, properties: { returnAllNonrefProperties: true } }] },
                },
              ],
            },
            metadata: { uuid: true },
          },
          (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r)),
        ),
      );
      expect(reply.results).toHaveLength(1);
      const props = reply.results[0].properties;
      expect(props.refPropsRequested).toBe(true);
      expect(props.refProps).toHaveLength(1);
      const cats = props.refProps[0].properties;
      expect(props.refProps[0].propName).toBe("hasCategory");
      expect(cats.map((c: any) => [c.metadata.id, c.targetCollection, c.nonRefProps.fields.title.textValue])).toEqual(categoriesOf(3).map((c) => [id(1, c), "Category", CATEGORIES[c]!.title]));
      expect(cats.map((c: any) => c.refProps[0].properties.map((k: any) => [k.metadata.id, k.nonRefProps.fields.name.textValue]))).toEqual(categoriesOf(3).map((c) => [[id(0, CATEGORIES[c]!.catalog), CATALOGS[CATEGORIES[c]!.catalog]]]));
    } finally {
      raw.close();
    }
  });

  it("returns references in GraphQL Get, nested, with __typename and _additional", async () => {
    const r = await gql(`{ Get { Article(limit: ${N}) { title _additional { id } hasCategory { __typename ... on Category { title meta { level } _additional { id } inCatalog { ... on Catalog { name } } } } about { ... on Author { name } ... on Category { rank } } } } }`);
    expect(r.errors).toBeUndefined();
    const rows = r.data.Get.Article as any[];
    expect(rows).toHaveLength(N);
    for (const row of rows) {
      const i = articleIds.indexOf(row._additional.id);
      const want = categoriesOf(i);
      expect(row.hasCategory).toEqual(want.length ? want.map((c) => ({ __typename: "Category", title: CATEGORIES[c]!.title, meta: { level: CATEGORIES[c]!.meta.level }, _additional: { id: id(1, c) }, inCatalog: [{ name: CATALOGS[CATEGORIES[c]!.catalog] }] })) : null);
      const about = aboutOf(i);
      const authors = about.filter((a) => a.cls === "Author").map((a) => ({ name: AUTHORS[a.n] }));
      const cats = about.filter((a) => a.cls === "Category").map((a) => ({ rank: CATEGORIES[a.n]!.rank }));
      expect(row.about).toEqual(about.length ? [...authors, ...cats] : null);
    }
    // GraphQL's answers for a field outside a fragment and a fragment on a class the property cannot point to.
    const outside = await gql(`{ Get { Article { hasCategory { title } } } }`);
    expect(outside).not.toHaveProperty("data");
    expect(outside.errors[0].message).toBe('Cannot query field "title" on type "ArticleHasCategoryObj". Did you mean to use an inline fragment on "Category"?');
    const wrong = await gql(`{ Get { Article { hasCategory { ... on Author { name } } } } }`);
    expect(wrong.errors[0].message).toBe('Fragment cannot be spread here as objects of type "ArticleHasCategoryObj" can never be of type "Author".');
    const unknownField = await gql(`{ Get { Article { hasCategory { ... on Category { nope } } } } }`);
    expect(unknownField.errors[0].message).toBe('Cannot query field "nope" on type "Category".');
  });

  it("filters through references over gRPC: listings, nearVector, bm25, hybrid, aggregate", async () => {
    const articles = client.collections.use("Article");
    const ids = async (p: Promise<{ objects: { uuid: string }[] }>) => (await p).objects.map((o) => o.uuid).sort();
    const science = articles.filter.byRef("hasCategory").byProperty("title").equal("Science");
    const wantScience = articleWhere((i) => hasCategory(i, (c) => c.title === "Science"));
    expect(wantScience.length).toBeGreaterThan(1);
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: science }))).toEqual(wantScience);
    // Deeper: the categories' catalogs (two hops of single-target references).
    // (The client types the hop from an untyped collection as never: the filter it builds is the same.)
    const viaCategory = articles.filter.byRef("hasCategory") as unknown as typeof articles.filter;
    const outlet = viaCategory.byRef("inCatalog").byProperty("name").equal("Outlet");
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: outlet }))).toEqual(articleWhere((i) => hasCategory(i, (c) => CATALOGS[c.catalog] === "Outlet")));
    // A range on an int of the referenced objects, and an id of one.
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRef("hasCategory").byProperty("rank").greaterOrEqual(3) }))).toEqual(articleWhere((i) => hasCategory(i, (c) => c.rank >= 3)));
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRef("hasCategory").byId().equal(id(1, 2)) }))).toEqual(articleWhere((i) => categoriesOf(i).includes(2)));
    // Reference counts.
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRefCount("hasCategory").greaterThan(1) }))).toEqual(articleWhere((i) => categoriesOf(i).length > 1));
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRefCount("hasCategory").equal(0) }))).toEqual(articleWhere((i) => categoriesOf(i).length === 0));
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRefCount("about").lessOrEqual(1) }))).toEqual(articleWhere((i) => aboutOf(i).length <= 1));
    // Multi-target: only the references to the named collection count.
    const ann = articles.filter.byRefMultiTarget("about", "Author").byProperty("name").equal("Ann");
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: ann }))).toEqual(articleWhere((i) => aboutOf(i).some((a) => a.cls === "Author" && AUTHORS[a.n] === "Ann")));
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: articles.filter.byRefMultiTarget("about", "Category").byProperty("title").equal("Science") }))).toEqual(articleWhere((i) => aboutOf(i).some((a) => a.cls === "Category" && CATEGORIES[a.n]!.title === "Science")));
    // Combined with And / Not.
    const combined = Filters.and(science, Filters.not(articles.filter.byRefCount("hasCategory").greaterThan(1)));
    expect(await ids(articles.query.fetchObjects({ limit: N, filters: combined }))).toEqual(articleWhere((i) => hasCategory(i, (c) => c.title === "Science") && categoriesOf(i).length <= 1));

    // nearVector: the nearest of the allowed objects, by distance.
    const q = [1, 0];
    const near = await articles.query.nearVector(q, { limit: 3, filters: science, returnMetadata: ["distance"] });
    const cos = (v: number[]) => 1 - (v[0]! * q[0]! + v[1]! * q[1]!) / Math.hypot(v[0]!, v[1]!);
    const nearest = articleIds.map((aid, i) => [aid, cos(vectorOf(i))] as const).filter(([aid]) => wantScience.includes(aid)).sort((a, b) => a[1] - b[1]).slice(0, 3).map(([aid]) => aid);
    expect(near.objects.map((o) => o.uuid)).toEqual(nearest);
    // bm25 and hybrid keep to the allowed objects.
    const bm25 = await articles.query.bm25("article", { limit: N, filters: science });
    expect(bm25.objects.map((o) => o.uuid).sort()).toEqual(wantScience);
    const hybrid = await articles.query.hybrid("science", { limit: N, alpha: 0.5, vector: q, filters: articles.filter.byRefCount("hasCategory").equal(0) });
    expect(hybrid.objects.map((o) => o.uuid).sort()).toEqual(articleWhere((i) => categoriesOf(i).length === 0));
    // aggregate over the filtered objects (gRPC Aggregate).
    const agg = await articles.aggregate.overAll({ filters: outlet, returnMetrics: articles.metrics.aggregate("words").integer(["sum"]) });
    const outletIdx = Array.from({ length: N }, (_, i) => i).filter((i) => hasCategory(i, (c) => CATALOGS[c.catalog] === "Outlet"));
    expect(agg.totalCount).toBe(outletIdx.length);
    expect((agg.properties.words as { sum?: number }).sum).toBe(outletIdx.reduce((s, i) => s + 100 * i, 0));
    // A filter through a property that is not a reference.
    await expect(articles.query.fetchObjects({ filters: articles.filter.byRef("title").byProperty("x").equal("y") })).rejects.toThrow(/'title' is not a reference property/);
  });

  it("filters through references in GraphQL Get / Aggregate and REST batch delete (dry run)", async () => {
    const where = (w: string) => gql(`{ Get { Article(limit: ${N}, where: ${w}) { _additional { id } } } }`);
    const idsOf = (r: any) => (r.data.Get.Article as any[]).map((x) => x._additional.id).sort();
    const deep = await where(`{ path: ["hasCategory", "Category", "inCatalog", "Catalog", "name"], operator: Equal, valueText: "Main" }`);
    expect(deep.errors).toBeUndefined();
    expect(idsOf(deep)).toEqual(articleWhere((i) => hasCategory(i, (c) => CATALOGS[c.catalog] === "Main")));
    expect(idsOf(await where(`{ path: ["hasCategory"], operator: GreaterThanEqual, valueInt: 2 }`))).toEqual(articleWhere((i) => categoriesOf(i).length >= 2));
    expect(idsOf(await where(`{ path: ["hasCategory"], operator: IsNull, valueBoolean: true }`))).toEqual(articleWhere((i) => categoriesOf(i).length === 0));
    expect(idsOf(await where(`{ path: ["hasCategory", "Category", "meta"], operator: IsNull, valueBoolean: false }`))).toEqual(articleWhere((i) => categoriesOf(i).length > 0));
    expect(idsOf(await where(`{ operator: Or, operands: [{ path: ["hasCategory", "Category", "title"], operator: Equal, valueText: "Art" }, { path: ["about", "Author", "name"], operator: Equal, valueText: "Bob" }] }`))).toEqual(
      articleWhere((i) => hasCategory(i, (c) => c.title === "Art") || aboutOf(i).some((a) => a.cls === "Author" && AUTHORS[a.n] === "Bob")),
    );
    // Aggregate with the same filter.
    const agg = await gql(`{ Aggregate { Article(where: { path: ["hasCategory", "Category", "rank"], operator: LessThan, valueInt: 3 }) { meta { count } } } }`);
    expect(agg.data.Aggregate.Article[0].meta.count).toBe(articleWhere((i) => hasCategory(i, (c) => c.rank < 3)).length);
    // REST batch delete, dry run: the matches.
    const dry = await weaviateCall(server, "DELETE", "/v1/batch/objects", { match: { class: "Article", where: { path: ["hasCategory", "Category", "title"], operator: "Equal", valueText: "History" } }, dryRun: true, output: "verbose" });
    expect(dry.status).toBe(200);
    expect(dry.body.results.objects.map((o: any) => o.id).sort()).toEqual(articleWhere((i) => hasCategory(i, (c) => c.title === "History")));
    // Bad paths, in Weaviate's shape.
    const bad = await where(`{ path: ["title", "Category", "title"], operator: Equal, valueText: "x" }`);
    expect(bad.errors[0].message).toMatch(/'title', which is not a cross-reference property of class 'Article'/);
    expect((await where(`{ path: ["hasCategory", "Author", "name"], operator: Equal, valueText: "x" }`)).errors[0].message).toMatch(/class 'Author' is not a target of the reference property 'hasCategory'/);
    expect((await where(`{ path: ["hasCategory", "Category"], operator: Equal, valueText: "x" }`)).errors[0].message).toMatch(/ends at class Category/);
    expect((await where(`{ path: ["hasCategory"], operator: Equal, valueText: "x" }`)).errors[0].message).toMatch(/counts its references: give valueInt/);
    expect((await where(`{ path: ["hasCategory"], operator: Like, valueInt: 1 }`)).errors[0].message).toMatch(/operator Like cannot be used here/);
  });

  it("deletes the objects a reference filter matches (deleteMany)", async () => {
    const articles = client.collections.use("Article");
    const filter = articles.filter.byRef("hasCategory").byProperty("title").equal("Sport");
    const want = articleWhere((i) => hasCategory(i, (c) => c.title === "Sport"));
    expect(want.length).toBeGreaterThan(0);
    const r = await articles.data.deleteMany(filter, { verbose: true });
    expect(r.matches).toBe(want.length);
    expect(r.successful).toBe(want.length);
    expect(r.objects.map((o) => o.id).sort()).toEqual(want);
    const left = (await articles.query.fetchObjects({ limit: N })).objects.map((o) => o.uuid).sort();
    expect(left).toEqual(articleIds.filter((x) => !want.includes(x)).sort());
    const count = await articles.aggregate.overAll({ filters: articles.filter.byRefCount("hasCategory").greaterOrEqual(0) });
    expect(count.totalCount).toBe(N - want.length);
  });
});

describe("references within a tenant", () => {
  let server: TestServer;
  let client: WeaviateClient;

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await connectWeaviate(server);
    const mt = weaviate.configure.multiTenancy({ enabled: true });
    await client.collections.create({ name: "Topic", multiTenancy: mt, vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "name", dataType: "text" }] });
    await client.collections.create({ name: "Post", multiTenancy: mt, vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "text", dataType: "text" }], references: [{ name: "topic", targetCollection: "Topic" }] });
    for (const t of ["t1", "t2"]) {
      await client.collections.use("Topic").tenants.create([{ name: t }]);
      await client.collections.use("Post").tenants.create([{ name: t }]);
    }
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("resolves and filters a tenant's references in that tenant only", async () => {
    const topicId = (t: number, n: number) => id(10 + t, n);
    for (const [t, tenant] of ["t1", "t2"].entries()) {
      // The same topic names in both tenants; t1 has 2 posts on "cats", t2 has 1.
      const topics = client.collections.use("Topic").withTenant(tenant);
      expect((await topics.data.insertMany(["cats", "dogs"].map((name, n) => ({ id: topicId(t, n), properties: { name }, vectors: [1, n] })))).hasErrors).toBe(false);
      const posts = client.collections.use("Post").withTenant(tenant);
      const topicsOfPosts = t === 0 ? [0, 0, 1] : [0, 1, 1];
      const r = await posts.data.insertMany(topicsOfPosts.map((n, k) => ({ id: id(20 + t, k), properties: { text: `${tenant} post ${k}` }, references: { topic: topicId(t, n) }, vectors: [k, 1] })));
      expect(r.hasErrors).toBe(false);
    }
    for (const [t, tenant] of ["t1", "t2"].entries()) {
      const posts = client.collections.use("Post").withTenant(tenant);
      const cats = await posts.query.fetchObjects({ filters: posts.filter.byRef("topic").byProperty("name").equal("cats"), returnReferences: [{ linkOn: "topic", returnProperties: ["name"] }] });
      const wantCats = (t === 0 ? [0, 1] : [0]).map((k) => id(20 + t, k));
      expect(cats.objects.map((o) => o.uuid).sort()).toEqual(wantCats);
      for (const o of cats.objects) expect(o.references!.topic!.objects.map((x) => [x.uuid, x.properties.name])).toEqual([[topicId(t, 0), "cats"]]);
    }
    const gql = await (await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: `{ Get { Post(tenant: "t2", where: { path: ["topic", "Topic", "name"], operator: Equal, valueText: "dogs" }) { text topic { ... on Topic { name _additional { id } } } } } }` }) })).json();
    expect(gql.errors).toBeUndefined();
    expect(gql.data.Get.Post.map((p: any) => [p.text, p.topic]).sort()).toEqual([
      ["t2 post 1", [{ name: "dogs", _additional: { id: topicId(1, 1) } }]],
      ["t2 post 2", [{ name: "dogs", _additional: { id: topicId(1, 1) } }]],
    ]);
  });
});
