import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import type { Batcher } from "../client/batcher.js";
import { connect } from "../client/client.js";
import { BatchProgress } from "./progress.js";

/** Options of `openbatch import`. */
export interface ImportOptions {
  /** Server root, e.g. http://127.0.0.1:8080. */
  url: string;
  apiKey?: string;
  /** `dynamic`, `fixed[:<size>[:<concurrency>]]` or `rate:<objectsPerMinute>`. */
  batch: string;
  /** Field holding the object's vector (removed from the properties). */
  vectorField?: string;
  /** Field holding the object's id (removed from the properties): a UUID is used as is, anything else becomes a UUIDv5 of it. */
  idField?: string;
  /** Vectorizer of the class when the import has to create it (default: the server's). */
  vectorizer?: string;
  /** Report progress on stderr (default true). */
  progress?: boolean;
}

/** A batching mode as `--batch` names it. */
export type BatchSpec = { kind: "dynamic" } | { kind: "fixed"; size: number; concurrency: number } | { kind: "rate"; perMinute: number };

/** Parses `--batch`: `dynamic`, `fixed`, `fixed:200`, `fixed:200:4`, `rate:600`. @throws on anything else. */
export function parseBatchSpec(spec: string): BatchSpec {
  const [kind, ...rest] = spec.trim().split(":");
  const int = (v: string | undefined, fallback: number, what: string) => {
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--batch ${spec}: ${what} must be a positive integer`);
    return n;
  };
  if (kind === "dynamic" && rest.length === 0) return { kind: "dynamic" };
  if ((kind === "fixed" || kind === "fixed_size" || kind === "fixedSize") && rest.length <= 2) return { kind: "fixed", size: int(rest[0], 100, "the batch size"), concurrency: int(rest[1], 2, "the concurrency") };
  if ((kind === "rate" || kind === "rate_limit" || kind === "rateLimit") && rest.length === 1) return { kind: "rate", perMinute: int(rest[0], 0, "objects per minute") };
  throw new Error(`--batch ${spec}: expected dynamic, fixed:<size>:<concurrency> or rate:<objectsPerMinute>`);
}

/** One item of the input: its 1-based position, and its parsed value or why it could not be read. */
type Item = { index: number; value: unknown } | { index: number; error: string };

/** Whether the file is a JSON array (else JSON Lines): by extension, else by its first non-blank character. */
export async function isJsonArrayFile(path: string): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson") return false;
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(4096);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return false;
      const text = buf.subarray(0, bytesRead).toString("utf8").replace(/^\uFEFF/, "");
      const first = text.match(/\S/);
      if (first) return first[0] === "[";
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/**
 * The elements of a top-level JSON array, streamed: an incremental scanner tracks strings and nesting and hands each
 * complete element's text to `JSON.parse`, so memory holds one element at a time however large the file.
 * @param parse false to only count elements (yields null values). @param chunkBytes read size (tests use tiny ones).
 */
export async function* jsonArrayElements(path: string, parse = true, chunkBytes = 1 << 20): AsyncGenerator<Item> {
  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: chunkBytes });
  let started = false;
  let ended = false;
  let inElement = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let partial = "";
  let index = 0;
  const emit = (text: string): Item => {
    index++;
    if (!parse) return { index, value: null };
    try {
      return { index, value: JSON.parse(text) };
    } catch (err) {
      return { index, error: `invalid JSON: ${(err as Error).message}` };
    }
  };
  for await (const chunk of stream as AsyncIterable<string>) {
    if (ended) break;
    let start = 0;
    const items: Item[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (inString) {
        if (escaped) escaped = false;
        else if (c === 0x5c) escaped = true;
        else if (c === 0x22) {
          inString = false;
          if (depth === 0) {
            items.push(emit(partial + chunk.slice(start, i + 1)));
            partial = "";
            inElement = false;
          }
        }
        continue;
      }
      const blank = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff;
      if (!started) {
        if (blank) continue;
        if (c !== 0x5b) throw new Error(`${path}: not a JSON array (starts with ${JSON.stringify(chunk[i])})`);
        started = true;
        continue;
      }
      if (!inElement) {
        if (blank || c === 0x2c) continue;
        if (c === 0x5d) {
          ended = true;
          break;
        }
        inElement = true;
        start = i;
        partial = "";
      }
      if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (depth === 0) {
          // `]` closing the array right after a bare scalar
          items.push(emit(partial + chunk.slice(start, i)));
          partial = "";
          inElement = false;
          ended = true;
          break;
        }
        depth--;
        if (depth === 0) {
          items.push(emit(partial + chunk.slice(start, i + 1)));
          partial = "";
          inElement = false;
        }
      } else if (depth === 0 && (blank || c === 0x2c)) {
        items.push(emit(partial + chunk.slice(start, i)));
        partial = "";
        inElement = false;
      }
    }
    if (inElement) partial += chunk.slice(start);
    yield* items;
  }
  stream.destroy();
  if (!started) return;
  if (!ended) throw new Error(`${path}: the JSON array is not closed (truncated file?)`);
}

/** The lines of a JSON Lines file (blank lines skipped), streamed. */
export async function* jsonLines(path: string, parse = true): AsyncGenerator<Item> {
  const rl = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let index = 0;
  for await (const line of rl) {
    if (!line.trim()) continue;
    index++;
    if (!parse) {
      yield { index, value: null };
      continue;
    }
    try {
      yield { index, value: JSON.parse(line) };
    } catch (err) {
      yield { index, error: `invalid JSON: ${(err as Error).message}` };
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAMESPACE_DNS = Buffer.from("6ba7b8109dad11d180b400c04fd430c8", "hex");

/** UUIDv5 of a value in the DNS namespace, as the Weaviate Python client's `generate_uuid5(value)`. */
export function uuid5(value: unknown): string {
  const name = typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
  const hash = createHash("sha1").update(NAMESPACE_DNS).update(name, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * `openbatch import <Class> <file>`: streams a JSON array or JSONL file of objects into a collection through client
 * batching, with a progress bar; creates the class when missing (its properties come from the server's auto-schema);
 * prints every failed object with the server's message at the end.
 * @returns the exit code: 0 when every object was imported, 1 otherwise.
 */
export async function importFile(collectionName: string, path: string, options: ImportOptions): Promise<number> {
  const spec = parseBatchSpec(options.batch);
  const array = await isJsonArrayFile(path);
  const read = (parse: boolean) => (array ? jsonArrayElements(path, parse) : jsonLines(path, parse));
  let total = 0;
  for await (const _ of read(false)) total++;

  const client = connect({ url: options.url, apiKey: options.apiKey });
  const collection = client.collections.use(collectionName);
  if (!(await client.collections.exists(collection.name))) {
    await client.collections.create({ name: collection.name, vectorizer: options.vectorizer });
    process.stderr.write(`Created class ${collection.name}${options.vectorizer ? ` (vectorizer ${options.vectorizer})` : ""}; its properties come from auto-schema.\n`);
  }
  const batcher: Batcher =
    spec.kind === "dynamic" ? collection.batch.dynamic() : spec.kind === "fixed" ? collection.batch.fixedSize(spec.size, spec.concurrency) : collection.batch.rateLimit(spec.perMinute);

  const invalid: { index: number; message: string }[] = [];
  const renamed = new Map<string, string>();
  const progress = options.progress === false ? null : new BatchProgress();
  const report = (status: string) => {
    const s = batcher.stats;
    progress?.update({ status, total, done: s.succeeded + s.failed + invalid.length, failed: s.failed + invalid.length });
  };
  const ticker = progress ? setInterval(() => report("importing"), 250) : null;
  let fatal: Error | null = null;
  try {
    for await (const item of read(true)) {
      if ("error" in item) {
        invalid.push({ index: item.index, message: item.error });
        continue;
      }
      const obj = toObject(item.value, options, renamed);
      if (typeof obj === "string") {
        invalid.push({ index: item.index, message: obj });
        continue;
      }
      await batcher.add(obj.properties, { uuid: obj.uuid, vector: obj.vector });
    }
  } catch (err) {
    fatal = err as Error;
  }
  try {
    await batcher.close();
  } catch (err) {
    fatal ??= err as Error;
  }
  if (ticker) clearInterval(ticker);
  report(fatal ? "stopped" : "done");
  progress?.stop();

  if (renamed.size) process.stderr.write(`Fields renamed to valid property names: ${[...renamed].map(([a, b]) => `${JSON.stringify(a)} → ${b}`).join(", ")}\n`);
  const s = batcher.stats;
  const failures = batcher.failedObjects;
  if (invalid.length || failures.length) {
    process.stderr.write(`Failed (${invalid.length + failures.length}):\n`);
    for (const f of invalid) process.stderr.write(`  item ${f.index}: ${f.message}\n`);
    for (const f of failures) process.stderr.write(`  ${f.originalUuid} ${preview(f.object.properties)}: ${f.message}\n`);
  }
  if (fatal) process.stderr.write(`openbatch import: stopped: ${fatal.message}\n`);
  process.stderr.write(`Imported ${s.succeeded} of ${total} objects into ${collection.name}; ${s.failed + invalid.length} failed${fatal ? `, ${total - s.succeeded - s.failed - invalid.length} not sent` : ""}.\n`);
  return fatal || invalid.length || failures.length ? 1 : 0;
}

const PROPERTY_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const RESERVED = new Set(["id", "_id", "_additional", "meta"]);

/**
 * A field name as a valid property name (letters, digits and `_`, not starting with a digit; not id, _id, _additional,
 * meta): each run of other characters becomes `_` ("Air Date" → "Air_Date"), a leading digit gets a `_` before it, a reserved name a `_` after.
 */
export function propertyName(key: string): string {
  if (PROPERTY_NAME.test(key) && !RESERVED.has(key)) return key;
  let name = key.replace(/[^_0-9A-Za-z]+/g, "_") || "_";
  if (/^[0-9]/.test(name)) name = `_${name}`;
  return RESERVED.has(name) ? `${name}_` : name;
}

/** The properties, uuid and vector of one input item, or why it cannot be imported. */
function toObject(value: unknown, options: ImportOptions, renamed: Map<string, string>): { properties: Record<string, unknown>; uuid?: string; vector?: number[] } | string {
  if (!value || typeof value !== "object" || Array.isArray(value)) return `not a JSON object: ${preview(value)}`;
  const properties: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key === options.idField || key === options.vectorField) {
      properties[key] = v;
      continue;
    }
    const name = propertyName(key);
    if (name !== key && !renamed.has(key) && renamed.size < 100) renamed.set(key, name);
    properties[name] = v;
  }
  let uuid: string | undefined;
  let vector: number[] | undefined;
  if (options.idField) {
    const id = properties[options.idField];
    if (id === undefined || id === null || id === "") return `no id in field '${options.idField}'`;
    delete properties[options.idField];
    uuid = typeof id === "string" && UUID.test(id) ? id.toLowerCase() : uuid5(id);
  }
  if (options.vectorField) {
    const v = properties[options.vectorField];
    if (v !== undefined && v !== null) {
      if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isFinite(x))) return `field '${options.vectorField}' is not an array of numbers`;
      vector = v as number[];
    }
    delete properties[options.vectorField];
  }
  return { properties, uuid, vector };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
