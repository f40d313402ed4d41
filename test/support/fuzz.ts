import fc from "fast-check";
import { expect } from "vitest";

/**
 * Shared pieces of the fuzz suite (test/fuzz-*.test.ts): hostile values, mutations of valid bodies, a bounded
 * fast-check run, and checks that an HTTP answer is a success or a 4xx in one dialect's error shape.
 */

/** Each property stops generating after this long (ms), passing with the runs done so far. */
export const PROPERTY_MS = 3000;
/** Vitest timeout for one property: its time limit, shrinking a counterexample, and server start-up. */
export const TEST_MS = 60_000;

/** fast-check parameters: at most `numRuns` runs and PROPERTY_MS of generating. */
export function bounded(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, interruptAfterTimeLimit: PROPERTY_MS, markInterruptAsFailure: false };
}

/** JSON text written as-is into a body: numbers JSON.stringify cannot say (`1e999`, read as Infinity), deep nesting. */
export class RawNumber {
  constructor(readonly text: string) {}
}

const RAW_MARK = "\u0001raw:";

/** JSON text of `value`, RawNumbers (and RawJson) written literally. */
export function toJsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v) => (v instanceof RawNumber ? RAW_MARK + (raws.push(v.text) - 1) : v)) ?? "null";
  return text.replace(/"\\u0001raw:(\d+)"/g, (_m, i: string) => raws[Number(i)]!);
}

/** Objects or lists nested `depth` levels (≤ 200: deeper is refused at the parser, see core/nesting.ts). */
export function nested(depth: number, kind: "array" | "object" | "mixed", leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = kind === "array" || (kind === "mixed" && i % 2) ? [v] : { a: v };
  return v;
}

/**
 * JSON text nested `depth` levels, as a value written literally by toJsonText: deep values stay text, so neither
 * fast-check's printing nor our own code recurses over thousands of levels.
 */
export function nestedText(depth: number, kind: "array" | "object" | "mixed"): RawNumber {
  let open = "";
  let close = "";
  for (let i = 0; i < depth; i++) {
    const list = kind === "array" || (kind === "mixed" && i % 2 === 1);
    open += list ? "[" : '{"a":';
    close = (list ? "]" : "}") + close;
  }
  return new RawNumber(open + "1" + close);
}

/** Values that break naive code: wrong types, huge and odd numbers, NaN-like strings, unicode, long strings, deep nesting. */
export const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64,
    new RawNumber("1e999"), new RawNumber("-1e999"), new RawNumber("-0"), new RawNumber("1e-400"), new RawNumber("123456789012345678901234567890"),
    "", " ", "NaN", "Infinity", "-Infinity", "1e999", "-0", "0x10", "null", "undefined", "true", "[object Object]",
    "__proto__", "constructor", "toString", "hasOwnProperty", "\u0000", "\ud800", "\udfff\ud800", "😀👩‍👩‍👧", "\u202e\u202dabc", "Ω≈ç√∫", "ｆｕｌｌ", "\r\n\t",
    "a".repeat(70_000), "😀".repeat(20_000), "../../../etc/passwd", "%00%ff", "<script>", "'; DROP TABLE batches;--",
    [], {}, [null], [[]], [{}], { __proto__: null }, { constructor: { prototype: { polluted: 1 } } },
  ),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.integer({ min: 20, max: 200 }).chain((d) => fc.constantFrom("array", "object", "mixed").map((k) => nested(d, k as "array" | "object" | "mixed"))),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Property names to rename a field to. */
const names = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "prototype", "", "model", "custom_id", "MODEL", "requests", "body"));

type Path = (string | number)[];

/** Every path into `v` (the root included), objects' keys and lists' indexes. */
function pathsOf(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (typeof v === "object" && v !== null && !(v instanceof RawNumber)) for (const k of Object.keys(v)) pathsOf((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

/** Sets an own property, even `__proto__` (a plain assignment would change the prototype instead). */
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy keeping RawNumbers (structuredClone would make them plain objects). */
function copy(v: unknown): unknown {
  if (v instanceof RawNumber || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(copy);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) setOwn(out, k, copy((v as Record<string, unknown>)[k]));
  return out;
}

interface Mutation {
  at: number;
  kind: "drop" | "rename" | "replace" | "wrap" | "add" | "duplicate";
  value: unknown;
  name: string;
}

function apply(root: unknown, given: Mutation): unknown {
  // The hostile values are shared constants: insert copies, so a later mutation never changes a constant.
  const m = { ...given, value: copy(given.value) };
  const paths = pathsOf(root);
  const path = paths[m.at % paths.length]!;
  if (path.length === 0) {
    if (m.kind === "wrap") return [root];
    if (m.kind === "add" && typeof root === "object" && root !== null && !Array.isArray(root)) {
      setOwn(root as Record<string, unknown>, m.name, m.value);
      return root;
    }
    return m.kind === "replace" ? m.value : root;
  }
  const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], root);
  const key = path.at(-1)!;
  const current = parent[key];
  switch (m.kind) {
    case "drop":
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case "rename":
      if (!Array.isArray(parent)) {
        delete parent[key];
        setOwn(parent, m.name, current);
      }
      break;
    case "replace":
      if (Array.isArray(parent)) parent[key as number] = m.value;
      else setOwn(parent, key as string, m.value);
      break;
    case "wrap":
      parent[key] = [current];
      break;
    case "add":
      if (typeof current === "object" && current !== null && !Array.isArray(current)) setOwn(current, m.name, m.value);
      else if (Array.isArray(current)) current.push(m.value);
      break;
    case "duplicate":
      if (Array.isArray(parent)) parent.push(copy(current));
      break;
  }
  return root;
}

/** `valid` changed in 1 to 3 places: fields dropped, renamed, given hostile values, wrapped, added or duplicated. */
export function mutationsOf(valid: unknown): fc.Arbitrary<unknown> {
  const mutation = fc.record({ at: fc.nat(), kind: fc.constantFrom("drop", "rename", "replace", "replace", "wrap", "add", "duplicate"), value: hostile, name: names }) as fc.Arbitrary<Mutation>;
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => ms.reduce<unknown>((v, m) => apply(v, m), copy(valid)));
}

/** Bodies for a route whose valid body is `valid`: mostly mutations of it, some wholly random, some valid. */
export function bodiesFor(valid: unknown): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: mutationsOf(valid) }, { weight: 1, arbitrary: hostile }, { weight: 1, arbitrary: fc.constant(valid).map(copy) });
}

/** Text that is mostly not JSON: random, truncated or garbled JSON. */
export function rawTexts(valid: unknown): fc.Arbitrary<string> {
  const text = JSON.stringify(valid);
  return fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.nat({ max: text.length }).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat({ max: text.length }), fc.string({ maxLength: 3 })).map(([n, s]) => text.slice(0, n) + s + text.slice(n + 1)),
    fc.constantFrom("", "null", "[]", "\"\"", "{", "}", "{\"a\":}", "NaN", "{'a':1}", "\ufeff{}", "{} {}", "[".repeat(150) + "]".repeat(150)),
  );
}

/** An HTTP answer, body parsed when it is JSON. */
export interface Answer {
  status: number;
  text: string;
  json: any;
}

/**
 * Sends `body` (JSON text of a value, or `raw` text as-is) and reads the whole answer. A hang fails: no answer within
 * 15 s rejects.
 */
export async function send(url: string, body: { value: unknown } | { raw: string }, method = "POST"): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: "raw" in body ? body.raw : toJsonText(body.value),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json: any = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the shape checks say so
  }
  return { status: res.status, text, json };
}

export type Dialect = "openai" | "anthropic" | "google" | "weaviate";

/** Asserts a success, or a 4xx in `dialect`'s error shape; never a 5xx. */
export function expectHandled(a: Answer, dialect: Dialect): void {
  expect(a.status, `${a.status} ${a.text.slice(0, 500)}`).toBeLessThan(500);
  if (a.status < 400) return;
  expect(a.json, a.text.slice(0, 500)).toBeTypeOf("object");
  const e = a.json?.error;
  switch (dialect) {
    case "openai":
      expect(e, a.text.slice(0, 500)).toMatchObject({ message: expect.any(String), type: expect.any(String) });
      expect("param" in e && "code" in e, a.text.slice(0, 500)).toBe(true);
      expect(e.param === null || typeof e.param === "string").toBe(true);
      expect(e.code === null || typeof e.code === "string").toBe(true);
      break;
    case "anthropic":
      expect(a.json, a.text.slice(0, 500)).toMatchObject({ type: "error", error: { type: expect.any(String), message: expect.any(String) } });
      break;
    case "google":
      expect(e, a.text.slice(0, 500)).toMatchObject({ code: a.status, message: expect.any(String), status: expect.any(String) });
      break;
    case "weaviate":
      expect(Array.isArray(e) && e.length > 0, a.text.slice(0, 500)).toBe(true);
      for (const x of e) expect(x).toMatchObject({ message: expect.any(String) });
      break;
  }
}
