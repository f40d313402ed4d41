import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { Filters, type FilterValue, type WeaviateClient } from "weaviate-client";
import type { StoredObject } from "../src/store/collection-store.js";
import type { ClassState, CollectionContext } from "../src/collections/collection-context.js";
import { allowListOf } from "../src/collections/filter-plan.js";
import { invertedIndexRemoved, invertedIndexWritten } from "../src/collections/inverted-index.js";
import type { ClassDef, PropertyDef } from "../src/collections/schema.js";
import { compileWhere } from "../src/collections/where-filter.js";
import { startServer, type TestServer } from "./support/harness.js";

/*
 * The filterable index (filter-index.ts, filter-plan.ts) against the evaluator (where-filter.ts): over random objects
 * and random filter trees — every operator, every scalar type and tokenization, ids, timestamps, len(), geo, a
 * non-filterable property, values not of the property's type — the allow-list equals the set of objects the compiled
 * predicate accepts, after the index was built by a scan and after random inserts, replaces and deletes reached it
 * through the write hooks (with and without timestamps, as batch-import.ts and store-sync.ts hand them in).
 */

const prop = (name: string, dataType: string, extra: Partial<PropertyDef> = {}): PropertyDef => ({ name, dataType: [dataType], indexFilterable: true, indexSearchable: dataType.startsWith("text"), indexRangeFilters: false, ...extra });
const PROPS: PropertyDef[] = [
  prop("t", "text"),
  prop("tf", "text", { tokenization: "field" }),
  prop("tw", "text", { tokenization: "whitespace" }),
  prop("tl", "text", { tokenization: "lowercase" }),
  prop("tt", "text", { tokenization: "trigram" }),
  prop("ta", "text[]"),
  prop("i", "int"),
  prop("ia", "int[]"),
  prop("n", "number"),
  prop("b", "boolean"),
  prop("ba", "boolean[]"),
  prop("d", "date"),
  prop("da", "date[]"),
  prop("u", "uuid"),
  prop("ua", "uuid[]"),
  prop("nf", "int", { indexFilterable: false }),
  prop("g", "geoCoordinates"),
];
const DEF = { class: "Prop", properties: PROPS, invertedIndexConfig: { indexPropertyLength: true } } as unknown as ClassDef;

const WORDS = ["alpha", "Beta", "gamma", "the", "x1", "Ünï", "alp", "", " ", "beta gamma", "Alpha-beta", "a*b"];
const DATES = ["2020-01-01T00:00:00Z", "2021-06-15T12:00:00Z", "2021-06-15T12:00:00.000Z", "2022-03-03T03:03:03+02:00"];
const UUIDS = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000A"];
const INTS = [-2, -1, 0, 1, 2, 3, 5];
const NUMBERS = [-1.5, 0, 0.5, 2, 2.25];
const ID = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

const text = fc.oneof(fc.constantFrom(...WORDS), fc.array(fc.constantFrom(...WORDS), { maxLength: 3 }).map((w) => w.join(" ")));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constant(undefined) });
const list = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 3 });
/** Now and then a value not of the property's type (a number for a date, say), which the index must leave to the evaluator. */
const odd = fc.constantFrom<unknown>("3", "-1", 4, true, "not a date", ["x", 1], "2021-06-15T12:00:00Z");
const withOdd = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: a as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: odd });

const properties = fc.record({
  t: maybe(text),
  tf: maybe(text),
  tw: maybe(text),
  tl: maybe(text),
  tt: maybe(text),
  ta: maybe(list(text)),
  i: maybe(withOdd(fc.constantFrom(...INTS))),
  ia: maybe(list(fc.constantFrom(...INTS))),
  n: maybe(fc.constantFrom(...NUMBERS)),
  b: maybe(withOdd(fc.boolean())),
  ba: maybe(list(fc.boolean())),
  d: maybe(withOdd(fc.constantFrom(...DATES))),
  da: maybe(list(fc.constantFrom(...DATES))),
  u: maybe(withOdd(fc.constantFrom(...UUIDS))),
  ua: maybe(list(fc.constantFrom(...UUIDS))),
  nf: maybe(fc.constantFrom(...INTS)),
  g: maybe(fc.record({ latitude: fc.constantFrom(52.5, 48.1, 0), longitude: fc.constantFrom(13.4, 11.6, 0) })),
});
const clean = (p: Record<string, unknown>) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));

const OPS = ["Equal", "NotEqual", "GreaterThan", "GreaterThanEqual", "LessThan", "LessThanEqual", "Like", "IsNull", "ContainsAny", "ContainsAll", "ContainsNone", "WithinGeoRange"];
const PATHS = [...PROPS.map((p) => p.name), "T", "id", "_id", "_creationTimeUnix", "_lastUpdateTimeUnix", "len(t)", "len(ta)", "len(nf)"];
const likePattern = fc.constantFrom("alp*", "*a", "?eta", "b*a gam*", "*", "", "x?", "ünï", "Al*", "a\\*b", "a*b");
const filterValue = fc.oneof(
  fc.record({ valueText: fc.oneof(text, likePattern, fc.constantFrom(...UUIDS, ...DATES, ID(1), ID(2))) }),
  fc.record({ valueText: list(fc.oneof(text, fc.constantFrom(ID(1), ID(2), ID(3)))) }),
  fc.record({ valueInt: fc.constantFrom(...INTS) }),
  fc.record({ valueNumber: fc.constantFrom(...NUMBERS) }),
  fc.record({ valueBoolean: fc.boolean() }),
  fc.record({ valueDate: fc.constantFrom(...DATES) }),
  fc.record({ valueTextArray: list(fc.oneof(text, fc.constantFrom(...UUIDS, ID(1), ID(3)))) }),
  fc.record({ valueIntArray: list(fc.constantFrom(...INTS)) }),
  fc.record({ valueNumberArray: list(fc.constantFrom(...NUMBERS)) }),
  fc.record({ valueBooleanArray: list(fc.boolean()) }),
  fc.record({ valueDateArray: list(fc.constantFrom(...DATES)) }),
  fc.constant({ valueGeoRange: { geoCoordinates: { latitude: 52.5, longitude: 13.4 }, distance: { max: 700_000 } } }),
);
/** A value of the type a path holds, in the shape the operator takes (most leaves compile); now and then any value. */
function valuesFor(path: string, op: string): fc.Arbitrary<Record<string, unknown>> {
  if (op === "IsNull") return fc.oneof({ weight: 8, arbitrary: fc.record({ valueBoolean: fc.boolean() }) }, { weight: 1, arbitrary: filterValue });
  if (path.startsWith("len(")) return fc.oneof({ weight: 8, arbitrary: fc.record({ valueInt: fc.constantFrom(0, 1, 2, 3, 5, 12) }) }, { weight: 1, arbitrary: filterValue });
  const base = PROPS.find((p) => p.name === path.toLowerCase())?.dataType[0]!.replace("[]", "") ?? (path.startsWith("_") && path !== "_id" ? "time" : "uuid");
  const many = op.startsWith("Contains");
  const scalar: Record<string, fc.Arbitrary<unknown>> = {
    text: fc.oneof(text, likePattern),
    int: fc.constantFrom(...INTS),
    number: fc.constantFrom(...NUMBERS, ...INTS),
    boolean: fc.boolean(),
    date: fc.constantFrom(...DATES),
    uuid: fc.oneof(fc.constantFrom(...UUIDS, "0000*", "*a"), fc.nat(14).map(ID)),
    time: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_040_000 }).map((t) => t - (t % 1000)),
  };
  const key: Record<string, string> = { text: "valueText", int: "valueInt", number: "valueNumber", boolean: "valueBoolean", date: "valueDate", uuid: "valueText", time: "valueInt" };
  if (base === "geoCoordinates") return fc.oneof(fc.constant({ valueGeoRange: { geoCoordinates: { latitude: 52.5, longitude: 13.4 }, distance: { max: 700_000 } } }), fc.record({ valueBoolean: fc.boolean() }));
  const typed = many
    ? fc.oneof({ weight: 3, arbitrary: list(scalar[base]!).map((v) => ({ [`${key[base]}Array`]: v })) }, { weight: 1, arbitrary: scalar[base]!.map((v) => ({ [key[base]!]: v })) })
    : fc.oneof({ weight: 4, arbitrary: scalar[base]!.map((v) => ({ [key[base]!]: v })) }, { weight: 1, arbitrary: list(scalar[base]!).map((v) => ({ [key[base]!]: v })) });
  return fc.oneof({ weight: 8, arbitrary: typed }, { weight: 1, arbitrary: filterValue });
}
const OPS_FOR = (path: string) => (path === "g" ? ["WithinGeoRange", "IsNull", "Equal"] : OPS.filter((o) => o !== "WithinGeoRange"));
const leaf = fc
  .constantFrom(...PATHS)
  .chain((path) => fc.constantFrom(...OPS_FOR(path)).chain((operator) => valuesFor(path, operator).map((value) => ({ path: [path], operator, ...value }))));
const { tree } = fc.letrec<{ tree: Record<string, unknown> }>((tie) => ({
  tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.record({ operator: fc.constantFrom("And", "Or", "Not"), operands: fc.array(tie("tree"), { minLength: 1, maxLength: 3 }) })),
}));

/** A store in memory behind the two calls the index makes (scan, objectsBySeq). */
function fakeStore() {
  const objects = new Map<number, StoredObject>();
  const state = { def: DEF } as unknown as ClassState;
  const ctx = {
    async scan(_st: ClassState, predicate: ((o: StoredObject) => boolean) | null, visit: (o: StoredObject) => boolean) {
      for (const seq of [...objects.keys()].sort((a, b) => a - b)) {
        const o = objects.get(seq)!;
        if ((!predicate || predicate(o)) && !visit(o)) return;
      }
    },
    options: { store: { objectsBySeq: async (_cls: string, seqs: readonly number[]) => seqs.flatMap((s) => (objects.has(s) ? [objects.get(s)!] : [])) } },
  } as unknown as CollectionContext;
  return { objects, state, ctx };
}

const write = fc.oneof(
  fc.record({ kind: fc.constant("upsert" as const), id: fc.nat(16), properties, timed: fc.boolean() }),
  fc.record({ kind: fc.constant("delete" as const), id: fc.nat(16), bySeq: fc.boolean() }),
  // Deleted and stored again under a new seq by another server: the catch-up hands in the new seq, then the old one's tombstone.
  fc.record({ kind: fc.constant("move" as const), id: fc.nat(16), properties, tombstone: fc.boolean() }),
);

describe("filterable index: allow-lists equal the evaluator's", () => {
  it("over random objects, writes and filter trees", async () => {
    const stats = { filters: 0, compiled: 0, split: 0, failing: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(16), properties), { maxLength: 25 }), fc.array(write, { maxLength: 12 }), fc.array(tree, { minLength: 1, maxLength: 6 }), async (initial, writes, filters) => {
        const { objects, state, ctx } = fakeStore();
        let seq = 0, clock = 1_700_000_000_000;
        const seqOfId = new Map<string, number>();
        const put = (n: number, props: Record<string, unknown>, fresh = false): StoredObject => {
          const id = ID(n);
          const old = fresh ? undefined : seqOfId.get(id);
          const o: StoredObject = { seq: old ?? ++seq, class: "Prop", id, properties: clean(props), vector: null, vectors: null, created_at: old ? objects.get(old)!.created_at : clock, updated_at: clock };
          clock += 1000;
          objects.set(o.seq, o);
          seqOfId.set(id, o.seq);
          return o;
        };
        for (const [n, p] of initial) put(n, p);
        const check = async () => {
          for (const f of filters) {
            stats.filters++;
            let predicate;
            try {
              predicate = compileWhere(f, DEF);
            } catch {
              continue; // a filter the evaluator refuses never reaches the index
            }
            let want: number[];
            try {
              want = [...objects.values()].filter((o) => predicate(o)).map((o) => o.seq).sort((a, b) => a - b);
            } catch {
              // The evaluator itself fails on these objects (where-filter.ts: Equal with an empty value list): no answer to match.
              stats.failing++;
              continue;
            }
            const got = [...(await allowListOf(ctx, state, f, predicate))].sort((a, b) => a - b);
            expect(got, JSON.stringify(f)).toEqual(want);
            stats.compiled++;
            if (want.length > 0 && want.length < objects.size) stats.split++;
          }
        };
        await check(); // built by a scan
        for (const w of writes) {
          if (w.kind === "upsert") {
            const o = put(w.id, w.properties);
            invertedIndexWritten(state, [w.timed ? o : { seq: o.seq, id: o.id, properties: o.properties }]);
          } else if (w.kind === "move") {
            const s = seqOfId.get(ID(w.id));
            if (s === undefined) continue;
            objects.delete(s);
            const o = put(w.id, w.properties, true);
            invertedIndexWritten(state, [o]);
            if (w.tombstone) invertedIndexRemoved(state, { seqs: [s] });
          } else {
            const s = seqOfId.get(ID(w.id));
            if (s === undefined) continue;
            objects.delete(s);
            seqOfId.delete(ID(w.id));
            invertedIndexRemoved(state, w.bySeq ? { seqs: [s] } : { ids: [ID(w.id)] });
          }
        }
        await check(); // kept up by the hooks
      }),
      { numRuns: 400 },
    );
    // The generators reach the index: most filters compile, and many split the objects.
    expect(stats.compiled).toBeGreaterThan(stats.filters / 3);
    expect(stats.split).toBeGreaterThan(stats.compiled / 4);
  });
});

/*
 * Through the official client (gRPC) on a server: filtered nearVector (exact under flatSearchCutoff, from the vector
 * cache), fetchObjects with a filter (the listing path), bm25 with a filter and a filtered count, each against the
 * answer worked out here from the objects, before and after replaces (new vectors and values), merges, deletes by id
 * and by filter, and inserts — the filterable index and the vector cache follow every write.
 */
describe("filterable index through weaviate-client", () => {
  let server: TestServer;
  let client: WeaviateClient;
  const rand = (() => {
    let a = 7;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  })();
  type Book = { title: string; genre: string; year: number; tags: string[]; inStock: boolean };
  const GENRES = ["Science Fiction", "History", "Poetry"];
  const book = (k: number): Book => ({ title: `book ${k % 7 === 0 ? "river" : "stone"} ${k}`, genre: GENRES[k % 3]!, year: 1990 + (k % 35), tags: [`t${k % 4}`, `t${k % 5}`], inStock: k % 2 === 0 });
  const vec = () => Array.from({ length: 8 }, () => Math.fround(rand() * 2 - 1));
  const model = new Map<string, { props: Book; vector: number[] }>();
  const cos = (a: number[], b: number[]) => {
    let d = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) (d += a[i]! * b[i]!), (na += a[i]! * a[i]!), (nb += b[i]! * b[i]!);
    return 1 - d / Math.sqrt(na * nb);
  };

  beforeAll(async () => {
    server = await startServer({}, { grpcPort: 0 });
    client = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(server.url).port), grpcPort: server.grpcPort! });
    await client.collections.create({
      name: "Shelf",
      vectorizers: weaviate.configure.vectors.selfProvided(),
      properties: [
        { name: "title", dataType: "text" },
        { name: "genre", dataType: "text", tokenization: "field" },
        { name: "year", dataType: "int" },
        { name: "tags", dataType: "text[]" },
        { name: "inStock", dataType: "boolean" },
      ],
    });
    const objects = Array.from({ length: 400 }, (_, k) => ({ id: ID(k), properties: book(k), vectors: vec() }));
    for (const o of objects) model.set(o.id, { props: o.properties, vector: o.vectors });
    const res = await client.collections.get("Shelf").data.insertMany(objects);
    expect(res.hasErrors).toBe(false);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const shelf = () => client.collections.get<Book>("Shelf");
  const cases = (): [string, FilterValue, (b: Book) => boolean][] => {
    const f = shelf().filter;
    return [
      ["year > 2010", f.byProperty("year").greaterThan(2010), (b) => b.year > 2010],
      ["genre = History and in stock", Filters.and(f.byProperty("genre").equal("History"), f.byProperty("inStock").equal(true)), (b) => b.genre === "History" && b.inStock],
      ["tags any t1/t3, not Poetry", Filters.and(f.byProperty("tags").containsAny(["t1", "t3"]), Filters.not(f.byProperty("genre").equal("Poetry"))), (b) => b.tags.some((t) => t === "t1" || t === "t3") && b.genre !== "Poetry"],
      ["title river or year <= 1992", Filters.or(f.byProperty("title").equal("river"), f.byProperty("year").lessOrEqual(1992)), (b) => b.title.split(" ").includes("river") || b.year <= 1992],
    ];
  };

  async function checkAll(): Promise<void> {
    const coll = shelf();
    const q = vec();
    for (const [name, filters, keep] of cases()) {
      const allowed = [...model].filter(([, o]) => keep(o.props));
      expect(allowed.length, name).toBeGreaterThan(10);
      const near = await coll.query.nearVector(q, { filters, limit: 10 });
      const nearest = allowed.map(([id, o]) => [id, cos(q, o.vector)] as const).sort((a, b) => a[1] - b[1]).slice(0, 10).map(([id]) => id);
      expect(near.objects.map((o) => o.uuid), name).toEqual(nearest);
      const listed = await coll.query.fetchObjects({ filters, limit: 1000 });
      expect(new Set(listed.objects.map((o) => o.uuid)), name).toEqual(new Set(allowed.map(([id]) => id)));
      const counted = await coll.aggregate.overAll({ filters });
      expect(counted.totalCount, name).toBe(allowed.length);
      const keyword = await coll.query.bm25("book", { filters, limit: 1000 });
      expect(new Set(keyword.objects.map((o) => o.uuid)), name).toEqual(new Set(allowed.map(([id]) => id)));
    }
  }

  it("answers as the objects say, before and after every kind of write", async () => {
    await checkAll();
    const coll = shelf();
    // Replaces with new values and vectors, merges of one property, deletes by id and by filter, inserts.
    for (let k = 0; k < 40; k++) {
      const id = ID(k * 3);
      const props = book(k * 3 + 1);
      const vector = vec();
      await coll.data.replace({ id, properties: props, vectors: vector });
      model.set(id, { props, vector });
    }
    for (let k = 1; k < 30; k += 2) {
      const id = ID(k * 5);
      await coll.data.update({ id, properties: { year: 2024 } });
      model.get(id)!.props.year = 2024;
    }
    for (let k = 0; k < 10; k++) {
      await coll.data.deleteById(ID(k * 11 + 1));
      model.delete(ID(k * 11 + 1));
    }
    const del = await coll.data.deleteMany(coll.filter.byProperty("year").equal(1995));
    expect(del.successful).toBeGreaterThan(0);
    for (const [id, o] of [...model]) if (o.props.year === 1995) model.delete(id);
    const fresh = Array.from({ length: 50 }, (_, k) => ({ id: ID(1000 + k), properties: book(1000 + k), vectors: vec() }));
    expect((await coll.data.insertMany(fresh)).hasErrors).toBe(false);
    for (const o of fresh) model.set(o.id, { props: o.properties, vector: o.vectors });
    await checkAll();
  });
});
