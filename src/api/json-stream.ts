import type { FastifyInstance, FastifyRequest } from "fastify";
import { errorCodes } from "fastify";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { invalidRequest } from "../core/errors.js";
import { JsonText } from "../core/json-text.js";
import { MAX_NESTING_DEPTH } from "../core/nesting.js";

/*
 * Large JSON bodies parsed without stalling the event loop.
 *
 * Fastify's JSON parser reads the whole body, then JSON.parse runs on it at once: 160 ms on the loop for a 26 MB batch
 * of 20,000 vectors, during which no other request or tenant is served. Here the body is scanned as it arrives, in
 * slices of SLICE_BYTES with the loop free between them: the top-level structure (the root object's keys, the root
 * array) is walked by a small byte scanner, and each value under it (each batch object, each embeddings input) is cut
 * out and parsed by the server's own JSON parser (native JSON.parse, `__proto__` refused), so every value is exactly
 * what that parser makes of it.
 *
 * Why not a streaming JSON library: @streamparser/json (a pure-JS tokenizer) took 1.9 s for that 26 MB batch, seven
 * times JSON.parse; only the structure is walked in JS here, the values are parsed natively.
 */

/** Bytes parsed between two yields to the event loop (a few ms of work). */
const SLICE_BYTES = 512 * 1024;

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** What each scanner state waits for. */
const enum S {
  /** The root value's first byte (after an optional BOM and spaces). */
  Root,
  /** A key or `}` right after `{`. */
  KeyOrEnd,
  /** A key after `,`. */
  Key,
  Colon,
  /** A key's value. */
  Value,
  /** `,` or `}` after a value of the root object. */
  ObjectNext,
  /** An element or `]` right after `[`. */
  ElementOrEnd,
  /** An element after `,`. */
  Element,
  /** `,` or `]` after an element. */
  ArrayNext,
  /** Only spaces may follow the root value. */
  Done,
}

/** Where a value being cut out goes once parsed. */
const enum Target {
  Root,
  Key,
  Field,
  Element,
}

/** The index of the first `byte` in `chunk` from `from`, or the chunk's length when there is none. */
function indexOrEnd(chunk: Buffer, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at < 0 ? chunk.length : at;
}

/** The body is not valid JSON: the framework's own error, which framework-errors.ts renders in each dialect. */
const invalidJson = () => new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();

/** The body nests deeper than MAX_NESTING_DEPTH: the same error the server's JSON parser gives. */
const tooDeep = () => invalidRequest(`The request body nests objects or lists more than ${MAX_NESTING_DEPTH} levels deep.`, null, "nesting_too_deep");

/**
 * An incremental JSON parser for one body: `write` the bytes as they come, then `end()` gives the value. The root
 * object's keys and the elements of the root array, or of the arrays under `splitKeys`, are parsed one by one by
 * `parse`; everything else is parsed whole by it. Memory beyond the value: the value being cut out.
 */
export class JsonStreamParser {
  private state = S.Root;
  private atStart = true;
  private root: unknown = undefined;
  private rootObject: Record<string, unknown> | null = null;
  /** The array elements are pushed to (the root array, or the current split key's). */
  private array: unknown[] | null = null;
  private arrayIsRoot = false;
  private key = "";
  private seen = new Set<string>();
  /** Whether the root object had a key twice. */
  duplicateKey = false;

  // The value being cut out: its kind, its bytes so far (earlier chunks), and where it goes.
  private inValue = false;
  private target = Target.Root;
  private kind: "container" | "string" | "primitive" = "primitive";
  private parts: Buffer[] = [];
  private depth = 0;
  private baseDepth = 0;
  private inString = false;
  private escape = false;

  constructor(
    /** The server's JSON parser for one value's text. @throws for text that is not JSON. */
    private readonly parse: (text: string) => unknown,
    /** Keys of the root object whose array value is parsed element by element. */
    private readonly splitKeys: ReadonlySet<string>,
    private readonly maxDepth: number = MAX_NESTING_DEPTH,
  ) {}

  /** Parses the next bytes. @throws FST_ERR_CTP_INVALID_JSON_BODY, or OpenBatchError 400 `nesting_too_deep`. */
  write(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    if (this.atStart) {
      this.atStart = false;
      // A UTF-8 byte-order mark is skipped, as secure-json-parse does. (A BOM split over chunks is not: clients do not.)
      if (n >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    while (i < n) {
      if (this.inValue) {
        i = this.scanValue(chunk, i);
        continue;
      }
      const c = chunk[i]!;
      if (isSpace(c)) {
        i++;
        continue;
      }
      switch (this.state) {
        case S.Root:
          if (c === OPEN_OBJECT) {
            this.rootObject = Object.create(Object.prototype) as Record<string, unknown>;
            this.root = this.rootObject;
            this.state = S.KeyOrEnd;
            this.checkDepth(1);
          } else if (c === OPEN_ARRAY) {
            this.array = [];
            this.arrayIsRoot = true;
            this.root = this.array;
            this.state = S.ElementOrEnd;
            this.checkDepth(1);
          } else {
            this.begin(chunk, i, Target.Root, 0);
            continue;
          }
          i++;
          break;
        case S.KeyOrEnd:
        case S.Key:
          if (c === CLOSE_OBJECT && this.state === S.KeyOrEnd) this.state = S.Done;
          else if (c === QUOTE) {
            this.begin(chunk, i, Target.Key, 1);
            continue;
          } else throw invalidJson();
          i++;
          break;
        case S.Colon:
          if (c !== COLON) throw invalidJson();
          this.state = S.Value;
          i++;
          break;
        case S.Value:
          if (c === OPEN_ARRAY && this.splitKeys.has(this.key)) {
            this.array = [];
            this.arrayIsRoot = false;
            this.rootObject![this.key] = this.array;
            this.state = S.ElementOrEnd;
            this.checkDepth(2);
            i++;
          } else this.begin(chunk, i, Target.Field, 1);
          break;
        case S.ObjectNext:
          if (c === COMMA) this.state = S.Key;
          else if (c === CLOSE_OBJECT) this.state = S.Done;
          else throw invalidJson();
          i++;
          break;
        case S.ElementOrEnd:
        case S.Element:
          if (c === CLOSE_ARRAY && this.state === S.ElementOrEnd) {
            this.state = this.arrayIsRoot ? S.Done : S.ObjectNext;
            i++;
          } else this.begin(chunk, i, Target.Element, this.arrayIsRoot ? 1 : 2);
          break;
        case S.ArrayNext:
          if (c === COMMA) this.state = S.Element;
          else if (c === CLOSE_ARRAY) this.state = this.arrayIsRoot ? S.Done : S.ObjectNext;
          else throw invalidJson();
          i++;
          break;
        case S.Done:
          throw invalidJson();
      }
    }
    // A value still being cut out keeps its bytes of this chunk (copied: the chunk may be a view of a reused buffer).
    if (this.inValue) this.parts.push(Buffer.from(chunk.subarray(this.valueStart)));
    this.valueStart = 0;
  }

  /** Where the value being cut out starts in the current chunk. */
  private valueStart = 0;

  /** Starts cutting out the value whose first byte is `chunk[i]`, nested `baseDepth` levels deep. */
  private begin(chunk: Buffer, i: number, target: Target, baseDepth: number): void {
    const c = chunk[i]!;
    this.inValue = true;
    this.target = target;
    this.valueStart = i;
    this.parts = [];
    this.baseDepth = baseDepth;
    this.inString = false;
    this.escape = false;
    this.depth = 0;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) this.kind = "container";
    else if (c === QUOTE) this.kind = "string";
    else if (target === Target.Key) throw invalidJson();
    else this.kind = "primitive";
    if (this.kind === "string") {
      // The opening quote is consumed here so the scan below looks for the closing one.
      this.inString = true;
      this.skipOpen = true;
    }
  }

  private skipOpen = false;

  /** Scans the value being cut out from `chunk[i]`; finishes it when it ends in this chunk. @returns the next index. */
  private scanValue(chunk: Buffer, i: number): number {
    const n = chunk.length;
    let quoteAt = -1;
    let backslashAt = -1;
    if (this.skipOpen) {
      this.skipOpen = false;
      i++;
    }
    while (i < n) {
      if (this.escape) {
        this.escape = false;
        i++;
        continue;
      }
      if (this.inString) {
        // Jump to the next quote or backslash (native search: strings can be tens of KB). Each position is searched
        // for again only once passed, so a string full of escapes stays linear.
        if (quoteAt < i) quoteAt = indexOrEnd(chunk, QUOTE, i);
        if (backslashAt < i) backslashAt = indexOrEnd(chunk, BACKSLASH, i);
        if (backslashAt < quoteAt) {
          this.escape = true;
          i = backslashAt + 1;
          continue;
        }
        if (quoteAt === n) return n;
        this.inString = false;
        i = quoteAt + 1;
        if (this.kind === "string") return this.finish(chunk, i);
        continue;
      }
      if (this.kind === "primitive") {
        const c = chunk[i]!;
        if (isSpace(c) || c === COMMA || c === CLOSE_ARRAY || c === CLOSE_OBJECT) return this.finish(chunk, i);
        i++;
        continue;
      }
      // Inside a container, outside strings: most bytes are digits, commas and letters, none of them a bracket or a
      // quote; a tight loop skips them (this scan is most of the parser's own time on vector batches).
      let j = i;
      while (j < n) {
        const b = chunk[j]!;
        if (b === QUOTE || b === OPEN_ARRAY || b === CLOSE_ARRAY || b === OPEN_OBJECT || b === CLOSE_OBJECT) break;
        j++;
      }
      if (j === n) return n;
      const b = chunk[j]!;
      i = j + 1;
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_OBJECT || b === OPEN_ARRAY) this.checkDepth(this.baseDepth + ++this.depth);
      else if (--this.depth === 0) return this.finish(chunk, i);
    }
    return n;
  }

  /** The value being cut out ends before `chunk[end]`: parses it and puts it where it goes. @returns `end`. */
  private finish(chunk: Buffer, end: number): number {
    const tail = chunk.subarray(this.valueStart, end);
    const text = this.parts.length ? Buffer.concat([...this.parts, tail]).toString("utf8") : tail.toString("utf8");
    this.inValue = false;
    this.parts = [];
    this.valueStart = 0;
    this.place(text);
    return end;
  }

  private place(text: string): void {
    const value = this.parse(text);
    switch (this.target) {
      case Target.Root:
        this.root = value;
        this.state = S.Done;
        break;
      case Target.Key:
        this.key = value as string;
        // The server's parser refuses a `__proto__` key; a key parsed on its own is just a string, so check here.
        if (this.key === "__proto__") throw invalidJson();
        if (this.seen.has(this.key)) this.duplicateKey = true;
        this.seen.add(this.key);
        this.state = S.Colon;
        break;
      case Target.Field:
        this.rootObject![this.key] = value;
        this.state = S.ObjectNext;
        break;
      case Target.Element:
        this.array!.push(value);
        this.state = S.ArrayNext;
        break;
    }
  }

  private checkDepth(depth: number): void {
    if (depth > this.maxDepth) throw tooDeep();
  }

  /** The body ended. @returns its value. @throws FST_ERR_CTP_INVALID_JSON_BODY when it is incomplete. */
  end(): unknown {
    // A primitive root (`42`, `true`) ends with the body.
    if (this.inValue && this.kind === "primitive" && this.target === Target.Root) {
      const text = Buffer.concat(this.parts).toString("utf8");
      this.inValue = false;
      this.place(text);
    }
    if (this.state !== S.Done || this.inValue) throw invalidJson();
    return this.root;
  }
}

/** Options of a streaming JSON body parser (see jsonStreamParser). */
export interface JsonStreamOptions {
  /** Root-object keys whose array value is parsed element by element (e.g. `objects` of a Weaviate batch). */
  splitKeys: readonly string[];
  /**
   * Also keep the body's text: the parser then gives a JsonText (text and value) for a root object without a repeated
   * key, so a body forwarded upstream need not be re-encoded; otherwise the bare value.
   */
  keepText?: boolean;
}

/**
 * Replaces, in `app`'s plugin scope only, the server's `application/json` parser with one that parses the body as it
 * arrives, in slices with the event loop free between them (JsonStreamParser). It answers what the server's parser
 * answers: `{}` for an empty body, 400 for a body that is not JSON or nests deeper than MAX_NESTING_DEPTH, 413 past
 * the route's body limit (checked on content-length first, then on the bytes), 400 when fewer or more bytes come than
 * content-length says; values are parsed by the server's own parser (`app.getDefaultJsonParser`), `__proto__` refused.
 */
export function useStreamingJson(app: FastifyInstance, options: JsonStreamOptions): void {
  const defaultParser = app.getDefaultJsonParser("error", "ignore");
  const parse = (text: string): unknown => {
    let out: unknown;
    defaultParser({} as FastifyRequest, text, (err, value) => {
      if (err) throw err;
      out = value;
    });
    return out;
  };
  const splitKeys = new Set(options.splitKeys);
  const fallbackLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", (req: FastifyRequest, payload: Readable) =>
    readJsonBody(payload, {
      parser: new JsonStreamParser(parse, splitKeys),
      limit: req.routeOptions.bodyLimit ?? fallbackLimit,
      contentLength: req.headers["content-length"] === undefined ? null : Number(req.headers["content-length"]),
      keepText: options.keepText === true,
    }),
  );
}

/** Reads `payload` into `parser`, SLICE_BYTES at a time with a yield to the event loop between slices. */
function readJsonBody(payload: Readable, o: { parser: JsonStreamParser; limit: number; contentLength: number | null; keepText: boolean }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (o.contentLength !== null && o.contentLength > o.limit) return reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    const pending: Buffer[] = [];
    const decoder = o.keepText ? new StringDecoder("utf8") : null;
    let text = "";
    let received = 0;
    let budget = SLICE_BYTES;
    let waiting = false;
    let ended = false;
    let settled = false;

    const cleanup = () => {
      payload.removeListener("data", onData);
      payload.removeListener("end", onEnd);
      payload.removeListener("error", onError);
    };
    // On failure the rest of the body is read and dropped (as Fastify does), so the error can still be answered.
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      payload.resume();
      reject(err);
    };
    const finish = () => {
      settled = true;
      cleanup();
      if (o.contentLength !== null && !Number.isNaN(o.contentLength) && received !== o.contentLength) return reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      if (received === 0) return resolve({});
      try {
        const value = o.parser.end();
        if (decoder && !o.parser.duplicateKey && typeof value === "object" && value !== null && !Array.isArray(value)) {
          const whole = text + decoder.end();
          // The value was parsed without the byte-order mark; the text goes upstream without it too.
          resolve(new JsonText(whole.charCodeAt(0) === 0xfeff ? whole.slice(1) : whole, value));
        } else resolve(value);
      } catch (err) {
        reject(err);
      }
    };
    const drain = () => {
      while (pending.length && !settled) {
        if (budget <= 0) {
          if (!waiting) {
            waiting = true;
            payload.pause();
            setImmediate(() => {
              waiting = false;
              budget = SLICE_BYTES;
              if (settled) return;
              payload.resume();
              drain();
            });
          }
          return;
        }
        let c = pending[0]!;
        if (c.length > budget) {
          pending[0] = c.subarray(budget);
          c = c.subarray(0, budget);
        } else pending.shift();
        budget -= c.length;
        try {
          o.parser.write(c);
        } catch (err) {
          return fail(err);
        }
        if (decoder) text += decoder.write(c);
      }
      if (ended && !pending.length && !waiting && !settled) finish();
    };
    function onData(chunk: Buffer | string) {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      received += buf.length;
      if (received > o.limit) return fail(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      pending.push(buf);
      drain();
    }
    function onEnd() {
      ended = true;
      drain();
    }
    function onError(err: Error & { statusCode?: number }) {
      if (!(typeof err.statusCode === "number" && err.statusCode >= 400)) err.statusCode = 400;
      fail(err);
    }
    payload.on("data", onData);
    payload.on("end", onEnd);
    payload.on("error", onError);
    payload.resume();
  });
}
