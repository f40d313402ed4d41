import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CollectionError } from "../src/collections/errors.js";
import type { ClassDef } from "../src/collections/schema.js";
import { compileWhere } from "../src/collections/where-filter.js";
import { parseQuery } from "../src/api/weaviate/graphql.js";
import { bodiesFor, bounded, expectHandled, hostile, mutationsOf, nested, rawTexts, send, TEST_MS, toJsonText, type Answer } from "./support/fuzz.js";
import { startServer, type TestServer } from "./support/harness.js";

const CLASS = {
  class: "Article",
  vectorizer: "none",
  properties: [
    { name: "title", dataType: ["text"] },
    { name: "code", dataType: ["text"], tokenization: "field" },
    { name: "tags", dataType: ["text[]"] },
    { name: "count", dataType: ["int"] },
    { name: "score", dataType: ["number"] },
    { name: "published", dataType: ["boolean"] },
    { name: "when", dataType: ["date"] },
    { name: "ref", dataType: ["uuid"] },
  ],
};

const ID = "00000000-0000-4000-8000-000000000001";

/** A valid filter using every operator family and property type. */
const VALID_WHERE = {
  operator: "And",
  operands: [
    { path: ["title"], operator: "Like", valueText: "hel*" },
    { path: ["count"], operator: "GreaterThanEqual", valueInt: 1 },
    { operator: "Or", operands: [{ path: ["published"], operator: "Equal", valueBoolean: true }, { path: ["when"], operator: "LessThan", valueDate: "2030-01-01T00:00:00Z" }] },
    { path: ["tags"], operator: "ContainsAny", valueTextArray: ["a", "b"] },
    { operator: "Not", operands: [{ path: ["id"], operator: "Equal", valueText: ID }] },
    { path: ["score"], operator: "IsNull", valueBoolean: false },
    { path: ["ref"], operator: "NotEqual", valueText: ID },
  ],
};

/** Filters: mutations of the valid one, deep And/Or/Not chains, and anything at all. */
const wheres: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: mutationsOf(VALID_WHERE) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 120 }).map((d) => deepWhere(d)) },
  { weight: 1, arbitrary: hostile },
);

/** `depth` nested Not/And/Or around one comparison. */
function deepWhere(depth: number): unknown {
  let w: unknown = { path: ["count"], operator: "Equal", valueInt: 3 };
  for (let i = 0; i < depth; i++) w = { operator: ["And", "Or", "Not"][i % 3], operands: [w] };
  return w;
}

/**
 * Objects a compiled filter is run on: the class's properties with values of any JSON type (stored objects come from
 * JSON, so they are JSON round-tripped here too).
 */
const targets = fc
  .array(
    fc.record({
      id: fc.oneof(fc.uuid(), fc.string()),
      properties: fc.dictionary(fc.constantFrom("title", "code", "tags", "count", "score", "published", "when", "ref", "other"), hostile, { maxKeys: 5 }),
    }),
    { maxLength: 4 },
  )
  .map((objects) => JSON.parse(toJsonText(objects)) as { id: string; properties: Record<string, unknown> }[]);

/** A valid query touching every supported construct. */
const VALID_QUERY = `query Q($w: WhereFilter, $n: Int) {
  Get {
    a: Article(where: {path: ["title"], operator: Equal, valueText: "hello"}, limit: 5, offset: 0) { title count _additional { id distance } }
    Article(nearVector: {vector: [0.1, 0.2, 0.3], distance: 0.9}, where: $w, limit: $n) { title __typename }
  }
  Aggregate { Article(where: $w) { meta { count } } }
}`;

/** Queries: the valid one cut, spliced, with tokens repeated or dropped; deep selections; random text. */
const queries: fc.Arbitrary<string> = fc.oneof(
  fc.nat({ max: VALID_QUERY.length }).map((n) => VALID_QUERY.slice(0, n)),
  fc.tuple(fc.nat({ max: VALID_QUERY.length }), fc.nat({ max: 40 }), fc.string({ maxLength: 6 })).map(([at, cut, ins]) => VALID_QUERY.slice(0, at) + ins + VALID_QUERY.slice(at + cut)),
  fc.tuple(fc.nat({ max: VALID_QUERY.length }), fc.constantFrom("{", "}", "(", ")", "[", "]", ":", "$", "...", "\"", "\"\"\"", "#", "-", "1e999", "-0", "@", "!", "=", "\\u12", "\n")).map(([at, tok]) => VALID_QUERY.slice(0, at) + tok + VALID_QUERY.slice(at)),
  fc.integer({ min: 1, max: 120 }).map((d) => `{ Get { Article ${"{ title ".repeat(d)}${"}".repeat(d)} } }`),
  fc.integer({ min: 1, max: 120 }).map((d) => `{ Get { Article(where: ${"{operator: Not, operands: [".repeat(d)}{path: ["count"], operator: Equal, valueInt: 1}${"]}".repeat(d)}) { title } } }`),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.constantFrom("", "{}", "{ Get }", "{ Get { } }", "{ Get { Article } }", "{ Get { Nope { x } } }", "{ Aggregate { Article { meta { count } } } }", "mutation { x }", "subscription { x }", "{ Get { Article(limit: -1) { title } } }", "{ Get { Article(limit: 99999999999999999999) { title } } }", "{ Get { Article(nearVector: {vector: []}) { title } } }",
    "{ Get { Article(nearVector: {vector: [1e999, -0, 1]}) { title } } }", "{ Get { Article(nearText: {concepts: [\"x\"]}) { title } } }",
    `{ Get { Article(nearObject: {id: "${"00000000-0000-4000-8000-000000000001"}"}) { title _additional { distance certainty vector } } } }`, "{ Get { Article(nearObject: {id: \"nope\"}) { title } } }",
    "{ Get { Article(after: \"nope\", limit: 1) { title } } }", "{ Get { Article(after: \"\", offset: 3) { title } } }", "{ Get { Article(offset: 1e999) { title } } }",
    "{ Get { Article(where: {path: [\"when\"], operator: Equal, valueDate: 12}) { title } } }", "{ Get { Article(where: {path: [\"title\"], operator: Like, valueText: \"(((*\"}) { title } } }",
    "{ Get { Article { _additional { nope } } } }", "{ Get { Article { ... on X { y } } } }", "{ Get { Article @skip(if: true) { title } } }"),
);

/** A GraphQL answer: 200 with `data` or `errors` (each with a message), or a 4xx in Weaviate's shape. */
function expectGraphQLAnswer(a: Answer): void {
  expectHandled(a, "weaviate");
  if (a.status !== 200) return;
  const answers = Array.isArray(a.json) ? a.json : [a.json];
  for (const x of answers) {
    expect("data" in x || "errors" in x, a.text.slice(0, 300)).toBe(true);
    for (const e of x.errors ?? []) expect(typeof e.message).toBe("string");
  }
}

describe("fuzz: the Weaviate where-filter and GraphQL parsers", () => {
  let server: TestServer;
  let def: ClassDef;
  beforeAll(async () => {
    server = await startServer({});
    expectHandled(await send(`${server.url}/schema`, { value: CLASS }), "weaviate");
    const objects = [
      { class: "Article", id: ID, properties: { title: "hello world", code: "A-1", tags: ["a"], count: 3, score: 1.5, published: true, when: "2024-01-01T00:00:00Z", ref: ID }, vector: [0.1, 0.2, 0.3] },
      { class: "Article", properties: { title: "other", count: 0 }, vector: [0.3, 0.2, 0.1] },
    ];
    const imported = await send(`${server.url}/batch/objects`, { value: { objects } });
    expect(imported.status).toBe(200);
    def = (await (await fetch(`${server.url}/schema/Article`)).json()) as ClassDef;
    expect(def.properties.length).toBe(CLASS.properties.length);
  });
  afterAll(async () => {
    await server.close();
  });

  it("the query and filter mutated below are valid to begin with", async () => {
    const a = await send(`${server.url}/graphql`, { value: { query: VALID_QUERY, variables: { w: VALID_WHERE, n: 3 } } });
    expect(a.status).toBe(200);
    expect(a.json.errors, a.text).toBeUndefined();
    expect(a.json.data.Get.a).toHaveLength(1);
  });

  it("compileWhere: a predicate that never throws on any object, or a 422 CollectionError; nothing else", () => {
    fc.assert(
      fc.property(wheres, targets, (where, objects) => {
        let predicate: ((o: any) => boolean) | null = null;
        try {
          predicate = compileWhere(where, def);
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(CollectionError);
          expect((err as CollectionError).status).toBe(422);
          return;
        }
        for (const o of objects) expect(typeof predicate(o)).toBe("boolean");
      }),
      bounded(3000),
    );
  }, TEST_MS);

  it("parseQuery: parses, or throws a GraphQL syntax error with a message; nothing else", () => {
    fc.assert(
      fc.property(queries, (q) => {
        try {
          parseQuery(q);
        } catch (err) {
          expect((err as Error).constructor.name, String(err)).toBe("GraphQLError");
          expect(typeof (err as Error).message).toBe("string");
        }
      }),
      bounded(3000),
    );
  }, TEST_MS);

  it("POST /v1/graphql with random queries and variables: data or errors, never a 5xx", async () => {
    const variables = fc.oneof(fc.record({ w: wheres, n: fc.oneof(fc.nat(20), hostile) }, { requiredKeys: [] }), hostile);
    await fc.assert(
      fc.asyncProperty(queries, variables, async (query, vars) => expectGraphQLAnswer(await send(`${server.url}/graphql`, { value: { query, variables: vars } }))),
      bounded(200),
    );
  }, TEST_MS);

  it("POST /v1/graphql and /v1/graphql/batch with mutated bodies: data or errors, or a Weaviate-shaped 4xx", async () => {
    const valid = { query: VALID_QUERY, variables: { w: VALID_WHERE, n: 3 }, operationName: "Q" };
    const body = fc.oneof(bodiesFor(valid).map((value) => ({ value })), rawTexts(valid).map((raw) => ({ raw })));
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (b, batch) => {
        const sent = batch && "value" in b ? { value: [b.value, b.value] } : b;
        expectGraphQLAnswer(await send(`${server.url}/graphql${batch ? "/batch" : ""}`, sent));
      }),
      bounded(150),
    );
  }, TEST_MS);

  it("where in DELETE /v1/batch/objects (dry run): a count or a Weaviate-shaped 422", async () => {
    const body = fc.oneof(
      wheres.map((where) => ({ match: { class: "Article", where }, dryRun: true, output: "verbose" })),
      bodiesFor({ match: { class: "Article", where: VALID_WHERE }, dryRun: true, output: "minimal" }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        // A mutation may have dropped dryRun: never let a fuzz run delete the objects the next runs filter.
        if (typeof b === "object" && b !== null && !Array.isArray(b)) (b as Record<string, unknown>).dryRun = true;
        expectHandled(await send(`${server.url}/batch/objects`, { value: b }, "DELETE"), "weaviate");
      }),
      bounded(150),
    );
  }, TEST_MS);

  it("POST /v1/schema, /v1/objects and /v1/batch/objects with mutated bodies: created or a Weaviate-shaped 4xx", async () => {
    let n = 0;
    const schema = { class: "Fuzz__N__", vectorizer: "none", properties: [{ name: "title", dataType: ["text"], tokenization: "word" }, { name: "n", dataType: ["int"] }] };
    const object = { class: "Article", properties: { title: "t", count: 1, score: 2.5, tags: ["x"], published: false, when: "2024-01-01T00:00:00Z" }, vector: [0.5, 0.5, 0.5] };
    const body = fc.oneof(
      bodiesFor(schema).map((value) => ({ path: "/schema", value })),
      bodiesFor(object).map((value) => ({ path: "/objects", value })),
      bodiesFor({ objects: [object, object] }).map((value) => ({ path: "/batch/objects", value })),
    );
    await fc.assert(
      fc.asyncProperty(body, async ({ path, value }) => {
        // Fresh class names, so a valid schema is created rather than refused as a duplicate.
        const raw = toJsonText(value).replaceAll("__N__", () => String(n++));
        expectHandled(await send(`${server.url}${path}`, { raw }), "weaviate");
      }),
      bounded(150),
    );
  }, TEST_MS);

  it("deep but legal nesting (≤ 200 levels) in filters and selections answers, without a stack overflow", async () => {
    for (const depth of [50, 120, 200]) {
      const w = deepWhere(Math.floor(depth / 2)); // each level is an object and a list
      expectGraphQLAnswer(await send(`${server.url}/graphql`, { value: { query: "query($w: WhereFilter) { Get { Article(where: $w) { title } } }", variables: { w } } }));
      expectHandled(await send(`${server.url}/batch/objects`, { value: { match: { class: "Article", where: w }, dryRun: true } }, "DELETE"), "weaviate");
      expectHandled(await send(`${server.url}/objects`, { value: nested(depth, "mixed") }), "weaviate");
    }
  }, TEST_MS);
});
