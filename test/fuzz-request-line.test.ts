import { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BatchValidationError } from "../src/core/batch.js";
import { isValidationError, RequestLineValidator, type ParsedRequestLine } from "../src/core/request-line.js";
import { ingestRequestFile } from "../src/engine/ingest.js";
import type { Store } from "../src/store/store.js";
import { bounded, mutationsOf, rawTexts, TEST_MS, toJsonText } from "./support/fuzz.js";
import { startServer, uploadJsonl, type TestServer } from "./support/harness.js";

/** Every code a line (or a file) can fail with, as the README lists them. */
const CODES = new Set(["invalid_json_line", "missing_required_parameter", "invalid_value", "mismatched_url", "mismatched_model", "duplicate_custom_id", "too_many_tasks", "empty_file"]);

const validLine = (i: number) => ({ custom_id: `req-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: `q ${i}` }], max_tokens: 8 } });

/** One line of a file: valid, mutated, raw garbage, or blank. */
const line: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 50 }).map((i) => JSON.stringify(validLine(i))) },
  { weight: 4, arbitrary: mutationsOf(validLine(0)).map(toJsonText) },
  { weight: 2, arbitrary: rawTexts(validLine(0)).map((t) => t.replace(/[\r\n]/g, " ")) },
  { weight: 1, arbitrary: fc.constantFrom("", "   ", "\t") },
);

/** What a line check may give: null (blank), a validation error at that line, or a parsed line. */
function expectWellFormed(r: ParsedRequestLine | BatchValidationError | null, lineNo: number): void {
  if (r === null) return;
  if (isValidationError(r)) {
    expect(CODES.has(r.code), r.code).toBe(true);
    expect(r.line).toBe(lineNo);
    expect(typeof r.message).toBe("string");
    return;
  }
  expect(r.line).toBe(lineNo);
  expect(typeof r.custom_id === "string" && r.custom_id.length > 0).toBe(true);
  const body = JSON.parse(r.body);
  expect(typeof body === "object" && body !== null && !Array.isArray(body)).toBe(true);
}

describe("fuzz: the JSONL request-line validator", () => {
  it("any text as a line: null, a coded error at that line, or a parsed line; never a throw", () => {
    const text = fc.oneof(line, fc.string({ unit: "binary", maxLength: 300 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)));
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 20 }), (lines) => {
        const v = new RequestLineValidator("/v1/chat/completions", 10);
        lines.forEach((t, i) => expectWellFormed(v.check(t, i + 1), i + 1));
      }),
      bounded(2000),
    );
  }, TEST_MS);

  it("a file of random lines: errors with in-range lines (≤ 100), or every line stored; never a throw", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 40 }), fc.constantFrom("\n", "\r\n"), async (lines, eol) => {
        const inserted: ParsedRequestLine[] = [];
        let deleted = false;
        // Only what ingest calls: inserts in chunks, and a delete when the file is refused.
        const store = {
          insertItems: async (_id: string, items: ParsedRequestLine[]) => void inserted.push(...items),
          deleteItems: async () => void (deleted = true),
        } as unknown as Store;
        const text = lines.join(eol);
        const r = await ingestRequestFile(store, "batch_x", Readable.from([Buffer.from(text)]), "/v1/chat/completions", 30);
        const nonBlank = lines.filter((l) => l.trim() !== "").length;
        if (r.errors.length > 0) {
          expect(r.errors.length).toBeLessThanOrEqual(100);
          expect(r.count).toBe(0);
          expect(deleted || inserted.length === 0).toBe(true);
          for (const e of r.errors) {
            expect(CODES.has(e.code), e.code).toBe(true);
            if (e.line !== null) expect(e.line >= 1 && e.line <= lines.length).toBe(true);
          }
        } else {
          expect(r.count).toBe(nonBlank);
          expect(inserted.map((i) => i.line)).toEqual(lines.flatMap((l, i) => (l.trim() === "" ? [] : [i + 1])));
        }
      }),
      bounded(500),
    );
  }, TEST_MS);
});

describe("fuzz: input files through POST /v1/files and POST /v1/batches", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({});
  });
  afterAll(async () => {
    await server.close();
  });

  it("a batch from a file of random lines is created (in_progress or failed with coded errors), never a 5xx", async () => {
    const client = server.client();
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 0, maxLength: 15 }), async (lines) => {
        const file = await uploadJsonl(client, lines.join("\n"));
        const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
        expect(["validating", "in_progress", "failed", "finalizing", "completed"]).toContain(batch.status);
        if (batch.status === "failed") {
          expect(batch.errors?.data?.length).toBeGreaterThan(0);
          for (const e of batch.errors!.data!) expect(CODES.has(e.code!), e.code!).toBe(true);
        }
      }),
      bounded(60),
    );
  }, TEST_MS);
});
