import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JsonStreamParser } from "../src/api/json-stream.js";

/*
 * The incremental parser behind the Weaviate batch routes and the synchronous inference routes must give exactly what
 * JSON.parse gives for any JSON, however the bytes are cut into chunks, and refuse what JSON.parse refuses.
 */

/** Parses `text` cut at the given fractions of its byte length; splits the arrays under `objects` and `a`. */
function parseInChunks(text: string, cuts: number[]): unknown {
  const buf = Buffer.from(text);
  const p = new JsonStreamParser((t) => JSON.parse(t), new Set(["objects", "a"]));
  let last = 0;
  for (const c of cuts.map((x) => Math.floor(x * buf.length)).sort((a, b) => a - b).concat(buf.length)) {
    p.write(buf.subarray(last, c));
    last = c;
  }
  return p.end();
}

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 });
const texts = fc.oneof(
  fc.json(),
  fc.tuple(fc.jsonValue(), fc.boolean()).map(([v, pretty]) => JSON.stringify({ objects: Array.isArray(v) ? v : [v, v], a: [v, { v }], b: v }, null, pretty ? 2 : 0)),
  fc.jsonValue().map((v) => JSON.stringify([v, { x: v }, "\\\"q\u00e9\u{1f600}"])),
);

describe("JsonStreamParser", () => {
  it("gives what JSON.parse gives, however the body is cut into chunks", () => {
    fc.assert(
      fc.property(texts, cuts, (text, at) => {
        expect(parseInChunks(text, at)).toStrictEqual(JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses what is not JSON, and `__proto__` keys like the server's parser", () => {
    const bad = ['{"a":1,}', "[1,]", '{"a" 1}', '{"a":1}x', "[", '{"objects":[1 2]}', '{"objects":[{"a":1}', '"abc', '{"a":tru}', "{,}", "[,1]", '{"objects":[1,,2]}', "{1:2}", '{"__proto__":{}}', '{"a":"\\"}', "{}}", "[]]", '{"objects":[]]}'];
    for (const text of bad) {
      for (const at of [[], [0.5], [0.1, 0.9]]) expect(() => parseInChunks(text, at), text).toThrow();
    }
  });

  it("refuses nesting deeper than MAX_NESTING_DEPTH wherever it is, and accepts it up to that", () => {
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    expect(() => parseInChunks(`{"objects":[${nest(255)}]}`, [0.3])).toThrow(/nests objects or lists more than 256 levels/);
    expect(() => parseInChunks(`{"b":${nest(256)}}`, [0.3])).toThrow(/more than 256 levels/);
    expect(() => parseInChunks(nest(257), [0.3])).toThrow(/more than 256 levels/);
    expect(parseInChunks(`{"objects":[${nest(254)}]}`, [0.3])).toBeTruthy();
    expect(parseInChunks(nest(256), [0.7])).toBeTruthy();
  });

  it("tells a repeated root key, which JsonText must not carry upstream", () => {
    const p = new JsonStreamParser((t) => JSON.parse(t), new Set());
    p.write(Buffer.from('{"model":"a","input":"x","model":"b"}'));
    expect(p.end()).toStrictEqual({ model: "b", input: "x" });
    expect(p.duplicateKey).toBe(true);
  });
});
