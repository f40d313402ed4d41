import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";
import { cosineDistance } from "./support/vectors.js";

/*
 * Issue 12, "nothing silently ignored" (the audit of the Weaviate GraphQL and REST surfaces): each input that was
 * accepted and then dropped is now served as Weaviate serves it or refused with a message naming it. Through
 * weaviate-client 3.14 where it can send the input, raw REST / GraphQL otherwise.
 */

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("Weaviate inputs that were silently ignored", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const rest = (method: string, path: string, body?: unknown) => weaviateCall(server, method, path, body);
  const gql = async (query: string, extra: Record<string, unknown> = {}) => (await rest("POST", "/v1/graphql", { query, ...extra })).body;
  /** The first GraphQL error's message; fails the test when the query answered without one. */
  const gqlError = async (query: string, extra: Record<string, unknown> = {}) => {
    const r = await gql(query, extra);
    expect(r.errors, JSON.stringify(r)).toBeDefined();
    return String(r.errors[0].message);
  };
  const restError = (r: { status: number; body: any }) => String(r.body?.error?.[0]?.message);

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0, cacheDir: SHARED_CACHE_DIR });
    client = await connectWeaviate(server);
    await client.collections.create({
      name: "Doc",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: [
        { name: "title", dataType: "text" },
        { name: "rank", dataType: "int" },
        { name: "location", dataType: "geoCoordinates" },
      ],
      references: [{ name: "related", targetCollection: "Doc" }],
    });
    const docs = client.collections.use("Doc");
    const r = await docs.data.insertMany(Array.from({ length: 6 }, (_, i) => ({ id: uuid(i), properties: { title: `doc ${i}`, rank: i, location: { latitude: 52 + i / 10, longitude: 13 } }, vectors: [1, i, 0] })));
    expect(r.hasErrors).toBe(false);
    // The objects' text alone is embedded (no class or property name): "biology" and "chemistry" hold the concepts' vectors.
    const sentence = await rest("POST", "/v1/schema", {
      class: "Sentence",
      vectorizer: "text2vec-ollama",
      moduleConfig: { "text2vec-ollama": { apiEndpoint: "http://127.0.0.1:9", model: "local/glove-100d", vectorizeClassName: false } },
      properties: [{ name: "text", dataType: ["text"], moduleConfig: { "text2vec-ollama": { vectorizePropertyName: false } } }],
    });
    expect(sentence.status).toBe(200);
    const texts = ["biology", "chemistry", "the stock market fell after the bank raised interest rates", "the team scored a late goal"];
    const s = await client.collections.use("Sentence").data.insertMany(texts.map((text, i) => ({ id: uuid(100 + i), properties: { text } })));
    expect(s.hasErrors).toBe(false);
    await client.collections.create({ name: "Note", multiTenancy: weaviate.configure.multiTenancy({ enabled: true }), vectorizers: weaviate.configure.vectors.selfProvided(), properties: [{ name: "body", dataType: "text" }] });
    await client.collections.use("Note").tenants.create([{ name: "t1" }, { name: "t2" }]);
    await client.collections.use("Note").withTenant("t1").data.insert({ id: uuid(200), properties: { body: "in t1" }, vectors: [1, 0] });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("S1-1: nearText with several concepts searches the mean of each concept's vector (gRPC and GraphQL)", async () => {
    const sentences = client.collections.use("Sentence");
    const stored = await sentences.query.fetchObjects({ includeVector: true, limit: 10 });
    const vectorOf = new Map(stored.objects.map((o) => [o.uuid, o.vectors.default as number[]]));
    const a = vectorOf.get(uuid(100))!;
    const b = vectorOf.get(uuid(101))!;
    const mean = a.map((x, i) => (x + b[i]!) / 2);
    const got = await sentences.query.nearText(["biology", "chemistry"], { limit: 4, returnMetadata: ["distance"] });
    expect(got.objects).toHaveLength(4);
    for (const o of got.objects) expect(o.metadata!.distance!).toBeCloseTo(cosineDistance(mean, vectorOf.get(o.uuid)!), 4);
    const g = await gql(`{ Get { Sentence(nearText:{concepts:["biology", "chemistry"]}, limit:4) { _additional { id distance } } } }`);
    for (const o of g.data.Get.Sentence) expect(o._additional.distance).toBeCloseTo(cosineDistance(mean, vectorOf.get(o._additional.id)!), 4);
    // One concept is embedded alone, as before.
    const one = await sentences.query.nearText(["biology"], { limit: 1, returnMetadata: ["distance"] });
    expect(one.objects[0]!.uuid).toBe(uuid(100));
    expect(one.objects[0]!.metadata!.distance!).toBeCloseTo(0, 4);
  });

  it("S1-5 / S1-6: distance with certainty, and thresholds of the wrong type, are refused in Get and Aggregate", async () => {
    for (const root of ["Get", "Aggregate"]) {
      const sel = root === "Get" ? "title" : "meta { count }";
      expect(await gqlError(`{ ${root} { Doc(nearVector:{vector:[1,0,0], distance:0.5, certainty:0.5}) { ${sel} } } }`)).toBe("cannot provide distance and certainty");
      expect(await gqlError(`{ ${root} { Sentence(nearText:{concepts:["biology"], distance:0.5, certainty:0.5}) { ${root === "Get" ? "text" : sel} } } }`)).toBe("cannot provide distance and certainty");
      expect(await gqlError(`{ ${root} { Doc(nearObject:{id:"${uuid(1)}", distance:0.5, certainty:0.5}) { ${sel} } } }`)).toBe("cannot provide distance and certainty");
    }
    expect(await gqlError(`{ Aggregate { Doc(nearVector:{vector:[1,0,0], distance:"0.1"}) { meta { count } } } }`)).toMatch(/nearVector: distance must be a number/);
    expect(await gqlError(`{ Aggregate { Doc(nearVector:{vector:[1,0,0], certainty:"0.9"}) { meta { count } } } }`)).toMatch(/nearVector: certainty must be a number/);
    // Either alone is served.
    const ok = await gql(`{ Aggregate { Doc(nearVector:{vector:[1,0,0], distance:0.0001}, objectLimit:10) { meta { count } } } }`);
    expect(ok.errors, JSON.stringify(ok.errors)).toBeUndefined();
    expect(ok.data.Aggregate.Doc[0].meta.count).toBe(1);
  });

  it("S1-8 / S1-9: PUT with a body id or class other than the path's, or a body tenant other than ?tenant=, is refused", async () => {
    const put = (id: string, body: Record<string, unknown>, query = "") => rest("PUT", `/v1/objects/Doc/${id}${query}`, { class: "Doc", id, properties: { title: "replaced", rank: 1 }, vector: [1, 1, 0], ...body });
    let r = await put(uuid(1), { id: uuid(2) });
    expect(r.status).toBe(422);
    expect(restError(r)).toBe("invalid update: field 'id' is immutable");
    r = await put(uuid(1), { class: "Sentence" });
    expect(r.status).toBe(422);
    expect(restError(r)).toBe("invalid update: field 'class' is immutable");
    // Both objects kept their properties.
    expect((await rest("GET", `/v1/objects/Doc/${uuid(2)}`)).body.properties.title).toBe("doc 2");
    // The same id in another case, and a class spelled with a lower-case first letter, are the path's.
    r = await put(uuid(1), { id: uuid(1).toUpperCase(), class: "doc" });
    expect(r.status).toBe(200);
    await put(uuid(1), { properties: { title: "doc 1", rank: 1 } });

    const note = `/v1/objects/Note/${uuid(200)}`;
    r = await rest("PUT", `${note}?tenant=t2`, { class: "Note", id: uuid(200), tenant: "t1", properties: { body: "x" } });
    expect(r.status).toBe(422);
    expect(restError(r)).toBe("tenant given twice: ?tenant=t2 and body tenant t1");
    r = await rest("PATCH", `${note}?tenant=t2`, { tenant: "t1", properties: { body: "x" } });
    expect(r.status).toBe(422);
    expect(restError(r)).toBe("tenant given twice: ?tenant=t2 and body tenant t1");
    expect((await rest("GET", `${note}?tenant=t1`)).body.properties.body).toBe("in t1");
    // The same tenant twice is one tenant.
    r = await rest("PATCH", `${note}?tenant=t1`, { tenant: "t1", properties: { body: "in t1" } });
    expect(r.status).toBe(204);
  });

  it("S1-10: an unknown order, or order without sort, is refused", async () => {
    let r = await rest("GET", "/v1/objects?class=Doc&sort=rank&order=descending");
    expect(r.status).toBe(422);
    expect(restError(r)).toBe('invalid order parameter, possible values are: ["asc", "desc"] not: "descending"');
    r = await rest("GET", "/v1/objects?class=Doc&order=desc");
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/order without sort/);
    r = await rest("GET", "/v1/objects?class=Doc&sort=rank&order=asc,desc");
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/2 orders for 1 sort/);
    r = await rest("GET", "/v1/objects?class=Doc&sort=rank&order=desc&limit=2");
    expect(r.body.objects.map((o: any) => o.properties.rank)).toEqual([5, 4]);
    // A sort without an order is ascending, as Weaviate sorts it.
    r = await rest("GET", "/v1/objects?class=Doc&sort=rank&limit=2");
    expect(r.body.objects.map((o: any) => o.properties.rank)).toEqual([0, 1]);
  });

  it("S3-1: arguments on fields other than the class field are refused, naming the argument", async () => {
    expect(await gqlError(`{ Get(foo:1) { Doc { title } } }`)).toBe('Unknown argument "foo" on field "Get" of type "WeaviateObj".');
    expect(await gqlError(`{ Get { Doc { title(foo:1) } } }`)).toBe('Unknown argument "foo" on field "title" of type "Doc".');
    expect(await gqlError(`{ Get { Doc { _additional(x:1) { id } } } }`)).toBe('Unknown argument "x" on field "_additional" of type "Doc".');
    expect(await gqlError(`{ Get { Doc { _additional { id(bar:2) } } } }`)).toBe('Unknown argument "bar" on field "id" of type "DocAdditionalProperties".');
    expect(await gqlError(`{ Get { Doc { location(k:1) { latitude } } } }`)).toBe('Unknown argument "k" on field "location" of type "Doc".');
    expect(await gqlError(`{ Get { Doc { location { latitude(k:1) } } } }`)).toBe('Unknown argument "k" on field "latitude" of type "GeoCoordinates".');
    expect(await gqlError(`{ Aggregate(x:1) { Doc { meta { count } } } }`)).toBe('Unknown argument "x" on field "Aggregate" of type "WeaviateObj".');
    expect(await gqlError(`{ Aggregate { Doc { meta(y:1) { count } } } }`)).toBe('Unknown argument "y" on field "meta" of type "AggregateDoc".');
    expect(await gqlError(`{ Aggregate { Doc { meta { count(y:1) } } } }`)).toBe('Unknown argument "y" on field "count" of type "AggregateMetaObject".');
    expect(await gqlError(`{ Aggregate { Doc { rank(z:1) { count } } } }`)).toBe('Unknown argument "z" on field "rank" of type "AggregateDoc".');
    expect(await gqlError(`{ Aggregate { Doc(groupBy:["rank"]) { groupedBy(z:1) { value } meta { count } } } }`)).toBe('Unknown argument "z" on field "groupedBy" of type "AggregateDoc".');
    // topOccurrences(limit) is the one nested field with an argument.
    const top = await gql(`{ Aggregate { Doc { title { topOccurrences(limit:1) { value occurs } } } } }`);
    expect(top.errors).toBeUndefined();
    expect(top.data.Aggregate.Doc[0].title.topOccurrences).toHaveLength(1);
  });

  it("S3-2: where filters refuse unknown keys and keys that do not fit the operator (GraphQL and REST batch delete)", async () => {
    const bad: [string, RegExp][] = [
      [`{path:["rank"], operator:Equal, valueInt:1, foo:3}`, /In field "foo": Unknown field/],
      [`{path:["rank"], operator:Equal, valueInt:1, operands:[{path:["rank"], operator:Equal, valueInt:2}]}`, /operator Equal takes a path and a value, not operands/],
      [`{operator:And, path:["rank"], operands:[{path:["rank"], operator:Equal, valueInt:2}]}`, /operator And combines operands: 'path' cannot be given with it/],
      [`{operator:Or, valueInt:1, operands:[{path:["rank"], operator:Equal, valueInt:2}]}`, /operator Or combines operands: 'valueInt' cannot be given with it/],
      [`{path:["rank"], operator:Equal, valueInt:1, valueText:"1"}`, /operator Equal takes one value, got valueText and valueInt/],
      [`{path:["rank"], operator:Equal, valueIntArray:[1]}`, /valueIntArray needs operator ContainsAny, ContainsAll or ContainsNone/],
      [`{path:["location"], operator:Equal, valueGeoRange:{geoCoordinates:{latitude:52, longitude:13}, distance:{max:10}}}`, /valueGeoRange is only valid with operator WithinGeoRange/],
      [`{path:["location"], operator:WithinGeoRange, valueInt:1, valueGeoRange:{geoCoordinates:{latitude:52, longitude:13}, distance:{max:10}}}`, /operator WithinGeoRange takes one value, got valueInt and valueGeoRange/],
      [`{path:["rank"], operator:IsNull, valueBoolean:true, valueInt:1}`, /operator IsNull takes one value/],
      [`{operator:And, operands:[{path:["rank"], operator:Equal, valueInt:1, bogus:true}]}`, /In field "bogus": Unknown field/],
      // A list where one value goes (a 500 from the evaluator before), and an empty list.
      [`{path:["title"], operator:Equal, valueText:[]}`, /operator Equal compares one value, but valueText is a list/],
      [`{path:["id"], operator:Equal, valueText:["x"]}`, /operator Equal compares one value, but valueText is a list/],
      [`{path:["rank"], operator:ContainsAny, valueIntArray:[]}`, /operator ContainsAny needs at least one value in valueIntArray/],
    ];
    for (const [where, message] of bad) expect(await gqlError(`{ Get { Doc(where:${where}) { title } } }`), where).toMatch(message);
    const rankIs1 = { path: ["rank"], operator: "Equal", valueInt: 1 };
    let r = await rest("DELETE", "/v1/batch/objects", { match: { class: "Doc", where: { ...rankIs1, foo: 3 } }, dryRun: true });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/In field "foo": Unknown field/);
    r = await rest("DELETE", "/v1/batch/objects", { match: { class: "Doc", where: { ...rankIs1, operands: [rankIs1] } }, dryRun: true });
    expect(r.status).toBe(422);
    // Unknown keys of the body and of match.
    r = await rest("DELETE", "/v1/batch/objects", { match: { class: "Doc", where: rankIs1 }, dryRun: true, dryrun: false });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/'dryrun'/);
    r = await rest("DELETE", "/v1/batch/objects", { match: { class: "Doc", where: rankIs1, limit: 1 }, dryRun: true });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/match: field 'limit'/);
    // Well-formed filters still run, through the client too.
    r = await rest("DELETE", "/v1/batch/objects", { match: { class: "Doc", where: rankIs1 }, dryRun: true });
    expect(r.body.results.matches).toBe(1);
    const docs = client.collections.use("Doc");
    const within = await docs.query.fetchObjects({ filters: docs.filter.byProperty("location").withinGeoRange({ latitude: 52, longitude: 13, distance: 1000 }) });
    expect(within.objects.map((o) => o.uuid)).toEqual([uuid(0)]);
    const any = await docs.query.fetchObjects({ filters: docs.filter.byProperty("rank").containsAny([1, 2]) });
    expect(any.objects).toHaveLength(2);
  });

  it("S3-3: Aggregate limit without groupBy is refused", async () => {
    expect(await gqlError(`{ Aggregate { Doc(limit:1) { meta { count } } } }`)).toBe("aggregate: limit (the number of groups) needs groupBy");
    const grouped = await gql(`{ Aggregate { Doc(groupBy:["rank"], limit:2) { meta { count } } } }`);
    expect(grouped.data.Aggregate.Doc).toHaveLength(2);
  });

  it("S3-4 / S3-5: object bodies refuse unknown fields naming them; a PATCH body must be an object", async () => {
    let r = await rest("POST", "/v1/objects", { class: "Doc", id: uuid(50), propertie: { rank: 51 }, vector: [1, 0, 0] });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/field 'propertie'/);
    expect((await rest("GET", `/v1/objects/Doc/${uuid(50)}`)).status).toBe(404);
    r = await rest("POST", "/v1/objects", { class: "Doc", properties: { rank: 51 }, vector: [1, 0, 0], vectorWeights: { a: "2" } });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/vectorWeights.*text2vec-contextionary/);
    r = await rest("POST", "/v1/objects/validate", { class: "Doc", properties: { rank: 51 }, foo: 1 });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/field 'foo'/);
    r = await rest("PUT", `/v1/objects/Doc/${uuid(1)}`, { class: "Doc", id: uuid(1), properties: { rank: 1 }, foo: 1 });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/field 'foo'/);
    r = await rest("PATCH", `/v1/objects/Doc/${uuid(1)}`, { properties: { rank: 1 }, foo: 1 });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/field 'foo'/);
    r = await rest("PATCH", `/v1/objects/Doc/${uuid(1)}`, [1, 2]);
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/must be an object/);
    // In a batch the object fails alone, the others are stored.
    r = await rest("POST", "/v1/batch/objects", { objects: [{ class: "Doc", id: uuid(51), properties: { rank: 51 }, vector: [1, 0, 0], extra: 1 }, { class: "Doc", id: uuid(52), properties: { rank: 52 }, vector: [1, 0, 0] }] });
    expect(r.status).toBe(200);
    expect(r.body[0].result.errors.error[0].message).toMatch(/field 'extra'/);
    expect(r.body[1].result.status).toBe("SUCCESS");
    await rest("DELETE", `/v1/objects/Doc/${uuid(52)}`);
    // A batch reference with an unknown key fails alone too.
    r = await rest("POST", "/v1/batch/references", [{ from: `weaviate://localhost/Doc/${uuid(1)}/related`, to: `weaviate://localhost/Doc/${uuid(2)}`, foo: 1 }]);
    expect(r.body[0].result.errors.error[0].message).toMatch(/field 'foo'/);
    // Shard status bodies.
    r = await rest("PUT", "/v1/schema/Doc/shards/shard0", { status: "READY", foo: 1 });
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/field 'foo'/);
    // What a fetched object carries can be sent back.
    const fetched = (await rest("GET", `/v1/objects/Doc/${uuid(3)}?include=vector`)).body;
    r = await rest("PUT", `/v1/objects/Doc/${uuid(3)}`, fetched);
    expect(r.status).toBe(200);
  });

  it("S3-5: consistency_level and node_name are checked as Weaviate checks them; /v1/nodes output too", async () => {
    let r = await rest("GET", `/v1/objects/Doc/${uuid(1)}?consistency_level=BOGUS`);
    expect(r.status).toBe(400);
    expect(restError(r)).toBe("unrecognized consistency level 'BOGUS', try one of the following: ['ONE', 'QUORUM', 'ALL']");
    r = await rest("POST", "/v1/batch/objects?consistency_level=bogus", { objects: [{ class: "Doc", properties: { rank: 1 }, vector: [1, 0, 0] }] });
    expect(r.status).toBe(400);
    r = await rest("GET", `/v1/objects/Doc/${uuid(1)}?consistency_level=ONE&node_name=x`);
    expect(r.status).toBe(400);
    expect(restError(r)).toBe("consistency_level and node_name are mutually exclusive");
    r = await rest("GET", `/v1/objects/Doc/${uuid(1)}?node_name=other-node`);
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/node_name 'other-node'/);
    const node = (await rest("GET", "/v1/nodes")).body.nodes[0].name;
    r = await rest("GET", `/v1/objects/Doc/${uuid(1)}?node_name=${node}`);
    expect(r.status).toBe(200);
    // Every level is met by the one replica: the client's withConsistency is served.
    const docs = client.collections.use("Doc").withConsistency("QUORUM");
    const id = await docs.data.insert({ properties: { rank: 60 }, vectors: [1, 0, 0] });
    expect(await docs.data.exists(id)).toBe(true);
    await docs.data.deleteById(id);
    r = await rest("GET", "/v1/nodes?output=bogus");
    expect(r.status).toBe(422);
    expect(restError(r)).toMatch(/output/);
    expect((await rest("GET", "/v1/nodes?output=verbose")).body.nodes[0].shards.length).toBeGreaterThan(0);
  });

  it("S3-6: operationName picks the operation; variable defaults are applied", async () => {
    const two = `query A { Get { Doc(limit:1) { rank } } } query B { Get { Doc(limit:2) { rank } } }`;
    expect((await gql(two, { operationName: "B" })).data.Get.Doc).toHaveLength(2);
    expect((await gql(two, { operationName: "A" })).data.Get.Doc).toHaveLength(1);
    expect(await gqlError(two)).toBe("Must provide operation name if query contains multiple operations.");
    expect(await gqlError(`query A { Get { Doc { rank } } }`, { operationName: "B" })).toBe('Unknown operation named "B".');
    expect(await gqlError(`{ Get { Doc { rank } } }`, { operationName: "B" })).toBe('Unknown operation named "B".');
    expect((await gql(`query A { Get { Doc(limit:1) { rank } } }`, { operationName: "A" })).data.Get.Doc).toHaveLength(1);
    const withDefault = `query Q($l: Int = 2, $w: WhereInpObj) { Get { Doc(limit: $l, where: $w) { rank } } }`;
    expect((await gql(withDefault)).data.Get.Doc).toHaveLength(2);
    expect((await gql(withDefault, { variables: { l: 3 } })).data.Get.Doc).toHaveLength(3);
    expect((await gql(withDefault, { variables: { w: { path: ["rank"], operator: "Equal", valueInt: 4 } } })).data.Get.Doc).toEqual([{ rank: 4 }]);
    // The batch route reads operationName too.
    const batch = await rest("POST", "/v1/graphql/batch", [{ query: two, operationName: "B" }, { query: two, operationName: "C" }]);
    expect(batch.body[0].data.Get.Doc).toHaveLength(2);
    expect(batch.body[1].errors[0].message).toBe('Unknown operation named "C".');
  });

  it("S3-9: Get consistencyLevel is served (one replica meets every level) and _additional isConsistent is true", async () => {
    for (const level of ["ONE", "QUORUM", "ALL"]) {
      const r = await gql(`{ Get { Doc(consistencyLevel:${level}, limit:1) { rank _additional { isConsistent } } } }`);
      expect(r.errors).toBeUndefined();
      expect(r.data.Get.Doc).toEqual([{ rank: 0, _additional: { isConsistent: true } }]);
    }
    expect(await gqlError(`{ Get { Doc(consistencyLevel:TWO) { rank } } }`)).toMatch(/consistencyLevel.*TWO/);
    expect(await gqlError(`{ Get { Doc(consistencyLevel:"ONE") { rank } } }`)).toMatch(/consistencyLevel/);
  });
});
