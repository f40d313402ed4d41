import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";

/*
 * Weaviate's complex data types as a user writes them with the official weaviate-client (v3, default options):
 * `object` / `object[]` with nested properties (two levels deep), `geoCoordinates`, `phoneNumber`, `blob` — created,
 * inserted over gRPC (insertMany) and REST (insert), read back over gRPC (fetchObjectById / fetchObjects), REST
 * (GET /v1/objects) and GraphQL Get with subselections; bad values answer Weaviate's messages.
 */

const call = weaviateCall;
const connect = connectWeaviate;

const BLOB = Buffer.from("hello, blob").toString("base64");
const PHONE_NL = { input: "020 1234567", defaultCountry: "NL", internationalFormatted: "+31 20 123 4567", countryCode: 31, national: 201234567, nationalFormatted: "020 123 4567", valid: true };

describe("complex data types through weaviate-client", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-types-"));
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0, dataDir });
    client = await connect(server);
    await client.collections.create({
      name: "Place",
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [
        { name: "title", dataType: "text" },
        {
          name: "owner",
          dataType: "object",
          nestedProperties: [
            { name: "name", dataType: "text" },
            { name: "age", dataType: "int" },
            { name: "since", dataType: "date" },
            { name: "address", dataType: "object", nestedProperties: [{ name: "city", dataType: "text" }, { name: "zip", dataType: "text" }] },
          ],
        },
        { name: "rooms", dataType: "object[]", nestedProperties: [{ name: "label", dataType: "text" }, { name: "area", dataType: "number" }] },
        { name: "location", dataType: "geoCoordinates" },
        { name: "phone", dataType: "phoneNumber" },
        { name: "photo", dataType: "blob" },
      ],
    });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("reports the schema with nested properties", async () => {
    const config = await client.collections.get("Place").config.get();
    const byName = Object.fromEntries(config.properties.map((p) => [p.name, p]));
    expect(byName.owner!.dataType).toBe("object");
    expect(byName.owner!.nestedProperties!.map((n) => [n.name, n.dataType])).toEqual([["name", "text"], ["age", "int"], ["since", "date"], ["address", "object"]]);
    expect(byName.owner!.nestedProperties![3]!.nestedProperties!.map((n) => n.name)).toEqual(["city", "zip"]);
    expect(byName.rooms!.dataType).toBe("object[]");
    expect(byName.location!.dataType).toBe("geoCoordinates");
    expect(byName.phone!.dataType).toBe("phoneNumber");
    expect(byName.photo!.dataType).toBe("blob");
  });

  it("round-trips every complex type over gRPC, REST and GraphQL", async () => {
    const place = client.collections.get("Place");
    const since = new Date("2020-01-02T03:04:05Z");
    const res = await place.data.insertMany([
      {
        title: "canal house",
        owner: { name: "Ada", age: 36, since, address: { city: "Amsterdam", zip: "1012" } },
        rooms: [{ label: "kitchen", area: 12.5 }, { label: "attic", area: 30 }],
        location: { latitude: 52.3676, longitude: 4.9041 },
        phone: { number: "020 1234567", defaultCountry: "nl" },
        photo: BLOB,
      },
    ]);
    expect(res.hasErrors).toBe(false);
    const id = res.uuids[0]!;

    // gRPC read (the client's default).
    const got = await place.query.fetchObjectById(id);
    const p = got!.properties as any;
    expect(p.title).toBe("canal house");
    expect(p.owner.name).toBe("Ada");
    expect(p.owner.age).toBe(36);
    expect(p.owner.address).toEqual({ city: "Amsterdam", zip: "1012" });
    expect(new Date(p.owner.since).toISOString()).toBe(since.toISOString());
    expect(p.rooms).toEqual([{ label: "kitchen", area: 12.5 }, { label: "attic", area: 30 }]);
    expect(p.location.latitude).toBeCloseTo(52.3676, 4);
    expect(p.location.longitude).toBeCloseTo(4.9041, 4);
    expect(p.phone).toEqual(PHONE_NL);
    // As Weaviate does, a read that names no properties leaves blobs out; named, the blob comes back.
    expect(p.photo).toBeUndefined();
    const named = await place.query.fetchObjectById(id, { returnProperties: ["photo"] });
    expect((named!.properties as any).photo).toBe(BLOB);

    // REST read: as stored, Weaviate's phone form.
    const rest = await call(server, "GET", `/v1/objects/Place/${id}`);
    expect(rest.status).toBe(200);
    expect(rest.body.properties.phone).toEqual(PHONE_NL);
    expect(rest.body.properties.location).toEqual({ latitude: 52.3676, longitude: 4.9041 });
    expect(rest.body.properties.owner.address.city).toBe("Amsterdam");

    // GraphQL Get with subselections (aliases honoured).
    const gql = await call(server, "POST", "/v1/graphql", {
      query: `{ Get { Place { title owner { name address { city } } rooms { label } location { latitude } phone { intl: internationalFormatted valid } photo } } }`,
    });
    expect(gql.body.errors).toBeUndefined();
    expect(gql.body.data.Get.Place).toEqual([
      { title: "canal house", owner: { name: "Ada", address: { city: "Amsterdam" } }, rooms: [{ label: "kitchen" }, { label: "attic" }], location: { latitude: 52.3676 }, phone: { intl: "+31 20 123 4567", valid: true }, photo: BLOB },
    ]);
  });

  it("returns the nested fields asked for over gRPC (returnProperties with object properties)", async () => {
    const place = client.collections.get("Place");
    const res = await place.query.fetchObjects({
      filters: place.filter.byProperty("title").equal("canal house"),
      returnProperties: ["title", { name: "owner", properties: ["name", { name: "address", properties: ["city"] }] }, { name: "rooms", properties: ["area"] }] as any,
    });
    expect(res.objects.map((o) => o.properties)).toEqual([{ title: "canal house", owner: { name: "Ada", address: { city: "Amsterdam" } }, rooms: [{ area: 12.5 }, { area: 30 }] }]);
  });

  it("stores a REST insert and answers a phone number without a default country", async () => {
    const place = client.collections.get("Place");
    const id = await place.data.insert({ title: "bay office", phone: { number: "+1 650 253 0000" }, location: { latitude: 37.4, longitude: -122.1 } });
    const rest = await call(server, "GET", `/v1/objects/Place/${id}`);
    expect(rest.body.properties.phone).toEqual({ input: "+1 650 253 0000", internationalFormatted: "+1 650 253 0000", countryCode: 1, national: 6502530000, nationalFormatted: "(650) 253-0000", valid: true });
    const list = await place.query.fetchObjects({ limit: 10 });
    expect(list.objects.map((o) => o.properties.title).sort()).toEqual(["bay office", "canal house"]);
  });

  it("auto-schema infers object, object[], geoCoordinates and phoneNumber properties", async () => {
    const r = await call(server, "POST", "/v1/batch/objects", {
      objects: [{ class: "Auto", properties: { spot: { latitude: 1.5, longitude: 2.5 }, tel: { input: "+31 20 123 4567" }, meta: { tags: ["a"], when: "2021-01-01T00:00:00Z", inner: { n: 2 } }, parts: [{ k: "x" }, { v: 1 }] } }],
    });
    expect(r.status).toBe(200);
    expect(r.body[0].result.errors).toBeUndefined();
    const config = await client.collections.get("Auto").config.get();
    const types = Object.fromEntries(config.properties.map((p) => [p.name, p.dataType]));
    expect(types).toEqual({ spot: "geoCoordinates", tel: "phoneNumber", meta: "object", parts: "object[]" });
    const meta = config.properties.find((p) => p.name === "meta")!;
    expect(meta.nestedProperties!.map((n) => [n.name, n.dataType])).toEqual([["tags", "text[]"], ["when", "date"], ["inner", "object"]]);
    expect(config.properties.find((p) => p.name === "parts")!.nestedProperties!.map((n) => [n.name, n.dataType])).toEqual([["k", "text"], ["v", "number"]]);
    const [obj] = (await client.collections.get("Auto").query.fetchObjects()).objects;
    expect((obj!.properties as any).tel.countryCode).toBe(31);
    expect((obj!.properties as any).meta.inner).toEqual({ n: 2 });
  });

  it("refuses bad values with Weaviate's messages", async () => {
    const bad = async (properties: Record<string, unknown>) => {
      const r = await call(server, "POST", "/v1/objects", { class: "Place", properties });
      expect(r.status).toBe(422);
      return r.body.error[0].message as string;
    };
    expect(await bad({ location: { latitude: 52 } })).toBe("invalid geoCoordinates property 'location' on class 'Place': geoCoordinates is missing required field 'longitude'");
    expect(await bad({ location: { latitude: 91, longitude: 0 } })).toContain("invalid latitude: must be between -90 and 90");
    expect(await bad({ location: "here" })).toBe("invalid geoCoordinates property 'location' on class 'Place': geoCoordinates must be a map, but got: string");
    expect(await bad({ phone: { defaultCountry: "NL" } })).toBe("invalid phoneNumber property 'phone' on class 'Place': phoneNumber is missing required field 'input'");
    expect(await bad({ phone: { input: "12", defaultCountry: "XX" } })).toBe("invalid phoneNumber property 'phone' on class 'Place': invalid phone number: invalid country code");
    expect(await bad({ photo: "not base64!" })).toBe("invalid blob property 'photo' on class 'Place': not a valid blob base64 string");
    expect(await bad({ photo: 12 })).toBe("invalid blob property 'photo' on class 'Place': not a blob base64 string, but float64");
    expect(await bad({ owner: "Ada" })).toBe("invalid object property 'owner' on class 'Place': not an object, but string");
    expect(await bad({ owner: { age: "old" } })).toBe("invalid object property 'owner' on class 'Place': nested property 'age': requires an integer, the given value is 'old'");
    // A nested field the schema lacks is added by auto-schema (test/weaviate-routes.test.ts); a wrong type still fails.
    expect(await bad({ owner: { address: { city: 5 } } })).toBe("invalid object property 'owner' on class 'Place': nested property 'address': nested property 'city': not a string, but float64");
    expect(await bad({ rooms: [{ label: 3 }] })).toBe("invalid object array property 'rooms' on class 'Place': element 0: nested property 'label': not a string, but float64");

    // Over gRPC the same per-object error comes back.
    const res = await client.collections.get("Place").data.insertMany([{ location: { latitude: 100, longitude: 0 } }]);
    expect(res.hasErrors).toBe(true);
    expect(Object.values(res.errors)[0]!.message).toContain("invalid latitude: must be between -90 and 90");
  });

  it("refuses schema mistakes, filters and selections it cannot serve", async () => {
    const create = (properties: unknown[]) => call(server, "POST", "/v1/schema", { class: "Bad", properties });
    let r = await create([{ name: "o", dataType: ["object"] }]);
    expect(r.status).toBe(422);
    expect(r.body.error[0].message).toBe("property 'o': At least one nested property is required for data type object/object[]");
    r = await create([{ name: "t", dataType: ["text"], nestedProperties: [{ name: "x", dataType: ["text"] }] }]);
    expect(r.body.error[0].message).toBe("property 't': nestedProperties not allowed for data types other than object/object[]");
    r = await create([{ name: "o", dataType: ["object"], nestedProperties: [{ name: "g", dataType: ["geoCoordinates"] }] }]);
    expect(r.status).toBe(422);
    expect(r.body.error[0].message).toContain("nested property 'o.g': invalid dataType: data type 'geoCoordinates' is not allowed in nested properties");

    const gql = async (query: string) => (await call(server, "POST", "/v1/graphql", { query })).body;
    expect((await gql("{ Get { Place { location } } }")).errors[0].message).toBe('Field "location" of type "GeoCoordinates" must have a sub selection.');
    expect((await gql("{ Get { Place { owner { nope } } } }")).errors[0].message).toBe('Cannot query field "nope" on type "PlaceOwnerObject".');
    expect((await gql("{ Get { Place { phone { bogus } } } }")).errors[0].message).toBe('Cannot query field "bogus" on type "PhoneNumber".');
    const filtered = await gql('{ Get { Place(where: {path: ["photo"], operator: Equal, valueText: "x"}) { title } } }');
    expect(filtered.errors[0].message).toBe("invalid where filter: filtering with Equal on property 'photo' of type blob is not supported by OpenBatch");
    const nulls = await gql('{ Get { Place(where: {path: ["phone"], operator: IsNull, valueBoolean: true}) { title } } }');
    expect(nulls.errors).toBeUndefined();
  });
});

describe("GraphQL tenant, targetVectors and _additional { vectors }", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-gql-"));
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0, dataDir });
    client = await connect(server);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("counts and aggregates one tenant's objects (withTenant(...).length(), aggregate.overAll; GraphQL Get/Aggregate tenant:)", async () => {
    await client.collections.create({
      name: "Memo",
      multiTenancy: weaviate.configure.multiTenancy({ enabled: true }),
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "text", dataType: "text" }, { name: "n", dataType: "int" }],
    });
    const memo = client.collections.get("Memo");
    await memo.tenants.create([{ name: "alice" }, { name: "bob" }]);
    expect((await memo.withTenant("alice").data.insertMany([{ text: "a1", n: 1 }, { text: "a2", n: 5 }])).hasErrors).toBe(false);
    expect((await memo.withTenant("bob").data.insertMany([{ text: "b1", n: 100 }])).hasErrors).toBe(false);
    expect(await memo.withTenant("alice").length()).toBe(2);
    expect(await memo.withTenant("bob").length()).toBe(1);
    const agg = await memo.withTenant("alice").aggregate.overAll({ returnMetrics: memo.metrics.aggregate("n").integer(["sum", "maximum"]) });
    expect(agg.totalCount).toBe(2);
    expect(agg.properties.n).toMatchObject({ sum: 6, maximum: 5 });
    // GraphQL Get with tenant: that tenant's objects only; without one, Weaviate's 422 message.
    const get = await call(server, "POST", "/v1/graphql", { query: '{ Get { Memo(tenant: "bob") { text } } }' });
    expect(get.body.data.Get.Memo).toEqual([{ text: "b1" }]);
    const none = await call(server, "POST", "/v1/graphql", { query: "{ Get { Memo { text } } }" });
    expect(none.body.errors[0].message).toContain("has multi-tenancy enabled, but request was without tenant");
    const unknown = await call(server, "POST", "/v1/graphql", { query: '{ Aggregate { Memo(tenant: "carol") { meta { count } } } }' });
    expect(unknown.body.errors[0].message).toContain('tenant not found: "carol"');
  });

  it("adds references within a tenant (batch references and the object's reference routes)", async () => {
    await client.collections.create({ name: "Genre", vectorizers: weaviate.configure.vectorizer.none(), properties: [{ name: "name", dataType: "text" }] });
    await client.collections.create({ name: "Author", multiTenancy: weaviate.configure.multiTenancy({ enabled: true }), vectorizers: weaviate.configure.vectorizer.none(), properties: [{ name: "name", dataType: "text" }] });
    await client.collections.create({
      name: "Book",
      multiTenancy: weaviate.configure.multiTenancy({ enabled: true }),
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "title", dataType: "text" }],
      references: [{ name: "writtenBy", targetCollection: "Author" }, { name: "genre", targetCollection: "Genre" }],
    });
    await client.collections.create({ name: "Shelf", vectorizers: weaviate.configure.vectorizer.none(), references: [{ name: "holds", targetCollection: "Author" }] });
    const authors = client.collections.get("Author");
    const books = client.collections.get("Book");
    await authors.tenants.create([{ name: "alice" }, { name: "bob" }]);
    await books.tenants.create([{ name: "alice" }, { name: "bob" }]);
    const authorId = await authors.withTenant("alice").data.insert({ name: "Ursula" });
    const bookId = await books.withTenant("alice").data.insert({ title: "The Dispossessed" });
    const genreId = await client.collections.get("Genre").data.insert({ name: "sf" });

    const added = await books.withTenant("alice").data.referenceAddMany([{ fromUuid: bookId, fromProperty: "writtenBy", to: authorId }]);
    expect(added.hasErrors).toBe(false);
    await books.withTenant("alice").data.referenceAdd({ fromUuid: bookId, fromProperty: "genre", to: genreId });
    const got = await call(server, "GET", `/v1/objects/Book/${bookId}?tenant=alice`);
    expect(got.body.properties.writtenBy.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Author/${authorId}`]);
    expect(got.body.properties.genre.map((r: any) => r.beacon)).toEqual([`weaviate://localhost/Genre/${genreId}`]);
    await books.withTenant("alice").data.referenceReplace({ fromUuid: bookId, fromProperty: "genre", to: [] });
    expect((await call(server, "GET", `/v1/objects/Book/${bookId}?tenant=alice`)).body.properties.genre ?? []).toEqual([]);

    // Without the tenant, in another tenant, or from a class without tenants: Weaviate-style refusals, nothing stored.
    const noTenant = await books.data.referenceAddMany([{ fromUuid: bookId, fromProperty: "writtenBy", to: authorId }]);
    expect(noTenant.errors[0]!.message).toBe("class Book has multi-tenancy enabled, but request was without tenant");
    const otherTenant = await books.withTenant("bob").data.referenceAddMany([{ fromUuid: bookId, fromProperty: "writtenBy", to: authorId }]);
    expect(otherTenant.errors[0]!.message).toBe(`source object Book/${bookId} not found in tenant "bob"`);
    const shelfId = await client.collections.get("Shelf").data.insert({});
    const fromPlain = await client.collections.get("Shelf").data.referenceAddMany([{ fromUuid: shelfId, fromProperty: "holds", to: authorId }]);
    expect(fromPlain.errors[0]!.message).toContain("target class Author has multi-tenancy enabled");
    const bad = await call(server, "POST", `/v1/objects/Book/${bookId}/references/writtenBy?tenant=carol`, { beacon: `weaviate://localhost/Author/${authorId}` });
    expect(bad.status).toBe(422);
    expect(bad.body.error[0].message).toBe('tenant not found: "carol"');
    const bob = await call(server, "GET", `/v1/objects/Book/${bookId}?tenant=bob`);
    expect(bob.status).toBe(404);
  });

  it("searches one target vector and returns named vectors in _additional { vectors }", async () => {
    await client.collections.create({
      name: "Duo",
      vectorizers: [weaviate.configure.vectorizer.none({ name: "a" }), weaviate.configure.vectorizer.none({ name: "b" })],
      properties: [{ name: "label", dataType: "text" }],
    });
    const duo = client.collections.get("Duo");
    const res = await duo.data.insertMany([
      { properties: { label: "x" }, vectors: { a: [1, 0, 0], b: [0, 0, 1] } },
      { properties: { label: "y" }, vectors: { a: [0, 0, 1], b: [1, 0, 0] } },
    ]);
    expect(res.hasErrors).toBe(false);
    const q = (near: string) => call(server, "POST", "/v1/graphql", { query: `{ Get { Duo(${near}, limit: 1) { label _additional { vectors { a b } } } } }` });
    const byA = await q('nearVector: {vector: [1, 0, 0], targetVectors: ["a"]}');
    expect(byA.body.errors).toBeUndefined();
    expect(byA.body.data.Get.Duo).toEqual([{ label: "x", _additional: { vectors: { a: [1, 0, 0], b: [0, 0, 1] } } }]);
    const byB = await q('nearVector: {vector: [1, 0, 0], targetVectors: ["b"]}');
    expect(byB.body.data.Get.Duo[0].label).toBe("y");
    const both = await q('nearVector: {vector: [1, 0, 0], targetVectors: ["a", "b"]}');
    // Several targets (test/weaviate-multi-target.test.ts): combined by minimum, x and y both at distance 0, one asked for.
    expect(both.body.errors).toBeUndefined();
    expect(both.body.data.Get.Duo).toHaveLength(1);
    const bad = await call(server, "POST", "/v1/graphql", { query: "{ Get { Duo { _additional { vectors { c } } } } }" });
    expect(bad.body.errors[0].message).toBe('Cannot query field "c" on type "DuoAdditionalVectors".');
    const agg = await call(server, "POST", "/v1/graphql", { query: '{ Aggregate { Duo(nearVector: {vector: [0, 0, 1], targetVectors: ["b"]}, objectLimit: 1) { meta { count } } } }' });
    expect(agg.body.errors).toBeUndefined();
    expect(agg.body.data.Aggregate.Duo[0].meta.count).toBe(1);
  });
});
