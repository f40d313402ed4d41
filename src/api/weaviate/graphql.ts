import type { FastifyPluginAsync } from "fastify";
import { CollectionError } from "../../collections/errors.js";
import { MAX_NESTING_DEPTH, nestsDeeperThan } from "../../core/nesting.js";
import type { AggregateField, AggregateQuery, Caller, CollectionService, SearchQuery, SearchResult } from "../../collections/collection-service.js";
import { isReferenceType, vectorSlots, type ClassDef } from "../../collections/schema.js";
import { isComplexType } from "../../collections/complex-types.js";
import { complexSelectionError, projectComplex } from "./graphql-complex.js";
import { parseBm25Arg, parseHybridArg, parseSortArg } from "./search-args.js";
import { groupedEntries, groupSelectionError, parseGroupByArg } from "./graphql-group-by.js";
import { checkGroupBy, GROUP_BY_CANDIDATES } from "../../collections/group-by.js";
import { metricsOf } from "../../collections/aggregate.js";

/**
 * `POST /v1/graphql` with the subset of Weaviate's GraphQL that clients use for search, parsed by hand:
 * `{ Get { Class(nearVector:{vector:[…], distance?, certainty?} | nearText:{concepts:[…], …} | nearObject:{id},
 * where:{…}, limit:N, offset:N, after:"uuid") { prop … _additional { id distance certainty vector creationTimeUnix
 * lastUpdateTimeUnix score explainScore } } } }` (and bm25 / hybrid / sort / autocut, search-args.ts) and
 * `{ Aggregate { Class(where, groupBy, nearVector / nearText / nearObject / hybrid + objectLimit) { meta { count }
 * groupedBy { value path } prop { metrics } } } }` (aggregate.ts). Operation names,
 * variables, aliases and commas are understood; fragments and references are not. Answers are
 * `{data:{Get:{Class:[…]}}, errors?:[{message, locations?, path?}]}`, always with status 200.
 */

// ------------------------------------------------------------------ parser

type Value =
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "boolean"; value: boolean }
  | { kind: "null" }
  | { kind: "enum"; value: string }
  | { kind: "variable"; name: string }
  | { kind: "list"; values: Value[] }
  | { kind: "object"; fields: Map<string, Value> };

interface Field {
  alias: string | null;
  name: string;
  args: Map<string, Value>;
  selections: Field[] | null;
  line: number;
  column: number;
}

/** A GraphQL error: a message with the place it refers to. */
class GraphQLError extends Error {
  constructor(
    message: string,
    readonly location?: { line: number; column: number },
    readonly path?: string[],
  ) {
    super(message);
  }
}

type Token = { kind: "punct" | "name" | "number" | "string" | "eof"; value: string; line: number; column: number };

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0, line = 1, lineStart = 0;
  const at = (start: number) => ({ line, column: start - lineStart + 1 });
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\n") {
      i++, line++, (lineStart = i);
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "," || c === "\ufeff") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < source.length && source[i] !== "\n") i++;
      continue;
    }
    const start = i;
    if (source.startsWith("...", i)) {
      tokens.push({ kind: "punct", value: "...", ...at(start) });
      i += 3;
      continue;
    }
    if ("{}()[]:!$=@|&".includes(c)) {
      tokens.push({ kind: "punct", value: c, ...at(start) });
      i++;
      continue;
    }
    if (/[_A-Za-z]/.test(c)) {
      while (i < source.length && /[_0-9A-Za-z]/.test(source[i]!)) i++;
      tokens.push({ kind: "name", value: source.slice(start, i), ...at(start) });
      continue;
    }
    if (/[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(source.slice(i));
      if (!m || m[0] === "-") throw new GraphQLError(`Syntax Error GraphQL request (${line}:${start - lineStart + 1}) Invalid number`, at(start));
      i += m[0].length;
      tokens.push({ kind: "number", value: m[0], ...at(start) });
      continue;
    }
    if (c === '"') {
      if (source.startsWith('"""', i)) {
        const end = source.indexOf('"""', i + 3);
        if (end < 0) throw new GraphQLError(`Syntax Error GraphQL request (${line}:${start - lineStart + 1}) Unterminated string`, at(start));
        const text = source.slice(i + 3, end);
        tokens.push({ kind: "string", value: text, ...at(start) });
        for (const ch of text) if (ch === "\n") line++;
        i = end + 3;
        continue;
      }
      let j = i + 1;
      let value = "";
      for (;;) {
        if (j >= source.length || source[j] === "\n") throw new GraphQLError(`Syntax Error GraphQL request (${line}:${start - lineStart + 1}) Unterminated string`, at(start));
        const ch = source[j]!;
        if (ch === '"') break;
        if (ch === "\\") {
          const e = source[j + 1];
          const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
          if (e !== undefined && e in simple) (value += simple[e]), (j += 2);
          else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(source.slice(j + 2, j + 6))) (value += String.fromCharCode(parseInt(source.slice(j + 2, j + 6), 16))), (j += 6);
          else throw new GraphQLError(`Syntax Error GraphQL request (${line}:${j - lineStart + 1}) Invalid character escape sequence`, at(j));
          continue;
        }
        value += ch;
        j++;
      }
      tokens.push({ kind: "string", value, ...at(start) });
      i = j + 1;
      continue;
    }
    throw new GraphQLError(`Syntax Error GraphQL request (${line}:${start - lineStart + 1}) Unexpected character ${JSON.stringify(c)}`, at(start));
  }
  tokens.push({ kind: "eof", value: "<EOF>", ...at(i) });
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.pos]!;
  }
  private next(): Token {
    return this.tokens[this.pos++]!;
  }
  private fail(t: Token, what: string): never {
    throw new GraphQLError(`Syntax Error GraphQL request (${t.line}:${t.column}) Expected ${what}, found ${t.kind === "eof" ? "EOF" : JSON.stringify(t.value)}`, { line: t.line, column: t.column });
  }
  private expect(value: string): Token {
    const t = this.next();
    if (t.kind !== "punct" || t.value !== value) this.fail(t, JSON.stringify(value));
    return t;
  }
  private isPunct(value: string): boolean {
    const t = this.peek();
    return t.kind === "punct" && t.value === value;
  }
  private name(): Token {
    const t = this.next();
    if (t.kind !== "name") this.fail(t, "Name");
    return t;
  }

  /** The one operation of a document: `{…}` or `query Name($v: T = default) {…}`. */
  document(): Field[] {
    const t = this.peek();
    if (t.kind === "name") {
      if (t.value === "mutation" || t.value === "subscription") throw new GraphQLError(`Schema is not configured for ${t.value}s.`, { line: t.line, column: t.column });
      if (t.value !== "query") this.fail(t, '"{"');
      this.next();
      if (this.peek().kind === "name") this.next();
      if (this.isPunct("(")) this.skipBalanced("(", ")");
    }
    const selections = this.selectionSet();
    const end = this.peek();
    if (end.kind !== "eof") {
      if (end.kind === "name" && end.value === "fragment") throw new GraphQLError("fragments are not supported by OpenBatch", { line: end.line, column: end.column });
      this.fail(end, "EOF");
    }
    return selections;
  }

  private skipBalanced(open: string, close: string): void {
    let depth = 0;
    do {
      const t = this.next();
      if (t.kind === "eof") this.fail(t, JSON.stringify(close));
      if (t.kind === "punct" && t.value === open) depth++;
      if (t.kind === "punct" && t.value === close) depth--;
    } while (depth > 0);
  }

  private selectionSet(): Field[] {
    this.expect("{");
    const fields: Field[] = [];
    while (!this.isPunct("}")) {
      const t = this.peek();
      if (t.kind === "punct" && t.value === "...") throw new GraphQLError("fragments (including `... on Class`) are not supported by OpenBatch", { line: t.line, column: t.column });
      fields.push(this.field());
    }
    this.expect("}");
    if (fields.length === 0) this.fail(this.tokens[this.pos - 1]!, "Name");
    return fields;
  }

  private field(): Field {
    let nameTok = this.name();
    let alias: string | null = null;
    if (this.isPunct(":")) {
      this.next();
      alias = nameTok.value;
      nameTok = this.name();
    }
    const args = new Map<string, Value>();
    if (this.isPunct("(")) {
      this.next();
      while (!this.isPunct(")")) {
        const n = this.name();
        this.expect(":");
        args.set(n.value, this.value());
      }
      this.expect(")");
    }
    while (this.isPunct("@")) {
      const t = this.peek();
      throw new GraphQLError("directives are not supported by OpenBatch", { line: t.line, column: t.column });
    }
    const selections = this.isPunct("{") ? this.selectionSet() : null;
    return { alias, name: nameTok.value, args, selections, line: nameTok.line, column: nameTok.column };
  }

  private value(): Value {
    const t = this.next();
    if (t.kind === "string") return { kind: "string", value: t.value };
    if (t.kind === "number") return { kind: "number", value: Number(t.value) };
    if (t.kind === "name") {
      if (t.value === "true" || t.value === "false") return { kind: "boolean", value: t.value === "true" };
      if (t.value === "null") return { kind: "null" };
      return { kind: "enum", value: t.value };
    }
    if (t.kind === "punct" && t.value === "$") return { kind: "variable", name: this.name().value };
    if (t.kind === "punct" && t.value === "[") {
      const values: Value[] = [];
      while (!this.isPunct("]")) values.push(this.value());
      this.next();
      return { kind: "list", values };
    }
    if (t.kind === "punct" && t.value === "{") {
      const fields = new Map<string, Value>();
      while (!this.isPunct("}")) {
        const n = this.name();
        this.expect(":");
        fields.set(n.value, this.value());
      }
      this.next();
      return { kind: "object", fields };
    }
    this.fail(t, "a value");
  }
}

/** Parses a query of the supported subset. @throws GraphQLError on a syntax error. */
export function parseQuery(source: string): Field[] {
  return new Parser(lex(source)).document();
}

/** A parsed value as plain JSON (enums as strings, variables substituted). */
function toJson(v: Value, variables: Record<string, unknown>): unknown {
  switch (v.kind) {
    case "string":
    case "number":
    case "boolean":
    case "enum":
      return v.value;
    case "null":
      return null;
    case "variable":
      if (!(v.name in variables)) throw new GraphQLError(`Variable "$${v.name}" is not defined.`);
      return variables[v.name];
    case "list":
      return v.values.map((x) => toJson(x, variables));
    case "object":
      return Object.fromEntries([...v.fields].map(([k, x]) => [k, toJson(x, variables)]));
  }
}

// ------------------------------------------------------------------ execution

/** Weaviate's default and largest page of results. */
const DEFAULT_LIMIT = 10;
const MAX_RESULTS = 10_000;

const ADDITIONAL = new Set(["id", "distance", "certainty", "vector", "vectors", "creationTimeUnix", "lastUpdateTimeUnix", "score", "explainScore", "group"]);
const GET_ARGS = new Set(["nearVector", "nearText", "nearObject", "where", "limit", "offset", "after", "bm25", "hybrid", "sort", "autocut", "tenant", "groupBy"]);

interface GraphQLAnswer {
  data: Record<string, unknown> | null;
  errors?: { message: string; locations?: { line: number; column: number }[]; path?: string[] }[];
}

const errorEntry = (e: GraphQLError) => ({ message: e.message, ...(e.location ? { locations: [e.location] } : {}), ...(e.path ? { path: e.path } : {}) });
const keyOf = (f: Field) => f.alias ?? f.name;
const loc = (f: Field) => ({ line: f.line, column: f.column });

/** A `tenant:` argument (Get, Aggregate): a string, or absent. */
function tenantArg(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new GraphQLError(`Argument "tenant" has invalid value ${JSON.stringify(v)}. Expected type "String".`);
  return v;
}

function nonNegativeInt(v: unknown, name: string, f: Field): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new GraphQLError(`Argument "${name}" has invalid value ${JSON.stringify(v)}. Expected type "Int", found ${JSON.stringify(v)}.`, loc(f));
  return v;
}

/**
 * Runs a query against the collections as `caller` (owner fingerprint of its key; null with auth off). Never throws:
 * problems are `errors`, a class the caller may not read among them (Weaviate's 403 message, the query not run).
 */
export async function executeQuery(service: CollectionService, caller: Caller, query: unknown, variables: unknown): Promise<GraphQLAnswer> {
  if (typeof query !== "string" || !query.trim()) return { data: null, errors: [{ message: "query must be a non-empty string" }] };
  // The parser and the where-filter reader recurse: refuse deep selections and filters before they overflow the stack.
  if (nestsDeeperThan(query)) return { data: null, errors: [{ message: `the query nests selections, arguments or filters more than ${MAX_NESTING_DEPTH} levels deep` }] };
  const vars = typeof variables === "object" && variables !== null && !Array.isArray(variables) ? (variables as Record<string, unknown>) : {};
  let fields: Field[];
  try {
    fields = parseQuery(query);
  } catch (err) {
    if (err instanceof GraphQLError) return { data: null, errors: [errorEntry(err)] };
    throw err;
  }
  // Validation (unknown classes, fields, arguments) fails the whole query, as graphql-go does.
  try {
    for (const f of fields) validateRoot(service, caller, f);
  } catch (err) {
    if (err instanceof GraphQLError) return { data: null, errors: [errorEntry(err)] };
    throw err;
  }
  const data: Record<string, unknown> = {};
  const errors: GraphQLError[] = [];
  for (const root of fields) {
    const out: Record<string, unknown> = {};
    data[keyOf(root)] = out;
    for (const f of root.selections!) {
      const path = [keyOf(root), keyOf(f)];
      try {
        out[keyOf(f)] = root.name === "Get" ? await runGet(service, caller, f, vars) : await runAggregate(service, caller, f, vars);
      } catch (err) {
        out[keyOf(f)] = null;
        if (err instanceof GraphQLError) errors.push(new GraphQLError(err.message, err.location ?? loc(f), path));
        else if (err instanceof CollectionError) errors.push(new GraphQLError(err.message, loc(f), path));
        else throw err;
      }
    }
  }
  return errors.length ? { data, errors: errors.map(errorEntry) } : { data };
}

function validateRoot(service: CollectionService, caller: Caller, root: Field): void {
  if (root.name !== "Get" && root.name !== "Aggregate") throw new GraphQLError(`Cannot query field "${root.name}" on type "WeaviateObj".`, loc(root));
  if (!root.selections) throw new GraphQLError(`Field "${root.name}" of type "${root.name}Obj" must have a sub selection.`, loc(root));
  const type = root.name === "Get" ? "GetObjectsObj" : "AggregateObjectsObj";
  for (const f of root.selections) {
    let def: ClassDef | null;
    try {
      def = service.getClass(caller, f.name);
    } catch (err) {
      // A class the caller may not read: Weaviate's 403 message, as a GraphQL error.
      if (err instanceof CollectionError) throw new GraphQLError(err.message, loc(f));
      throw err;
    }
    if (!def || def.class !== f.name) throw new GraphQLError(`Cannot query field "${f.name}" on type "${type}".`, loc(f));
    if (!f.selections) throw new GraphQLError(`Field "${f.name}" of type "[${f.name}]" must have a sub selection.`, loc(f));
    const allowedArgs = root.name === "Get" ? GET_ARGS : new Set(["where", "limit", "groupBy", "objectLimit", "nearVector", "nearText", "nearObject", "hybrid", "tenant"]);
    for (const a of f.args.keys()) if (!allowedArgs.has(a)) throw new GraphQLError(`Unknown argument "${a}" on field "${f.name}" of type "${type}".`, loc(f));
    if (root.name === "Get") validateGetSelections(def, f.selections);
    else validateAggregateSelections(def, f.selections);
  }
}

function validateGetSelections(def: ClassDef, selections: Field[]): void {
  for (const s of selections) {
    if (s.name === "__typename") continue;
    if (s.name === "_additional") {
      if (!s.selections) throw new GraphQLError(`Field "_additional" of type "${def.class}AdditionalProperties" must have a sub selection.`, loc(s));
      for (const a of s.selections) if (!ADDITIONAL.has(a.name)) throw new GraphQLError(`Cannot query field "${a.name}" on type "${def.class}AdditionalProperties".`, loc(a));
      // `group { … hits { … } }` of a grouped Get (graphql-group-by.ts).
      for (const a of s.selections) {
        if (a.name !== "group") continue;
        const e = groupSelectionError(def.class, a);
        if (e) throw new GraphQLError(e.message, loc(e.field as Field));
        const hits = a.selections!.find((h) => h.name === "hits");
        if (hits) validateGetSelections(def, hits.selections!);
      }
      // `vectors { <name> … }`: the named vectors asked for, each one of the class's.
      for (const a of s.selections) {
        if (a.name !== "vectors") continue;
        if (!a.selections) throw new GraphQLError(`Field "vectors" of type "${def.class}AdditionalVectors" must have a sub selection.`, loc(a));
        const names = vectorSlots(def).map((v) => v.name);
        for (const v of a.selections) if (v.name !== "__typename" && !names.includes(v.name)) throw new GraphQLError(`Cannot query field "${v.name}" on type "${def.class}AdditionalVectors".`, loc(v));
      }
      continue;
    }
    const prop = def.properties.find((p) => p.name === s.name);
    if (!prop) throw new GraphQLError(`Cannot query field "${s.name}" on type "${def.class}".`, loc(s));
    if (isReferenceType(prop.dataType)) {
      if (!s.selections) throw new GraphQLError(`Field "${s.name}" of type "[${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj]" must have a sub selection.`, loc(s));
      throw new GraphQLError("resolving references in queries is not supported by OpenBatch: get the referencing object with GET /v1/objects/{class}/{id}", loc(s));
    }
    if (isComplexType(prop.dataType[0])) {
      const err = complexSelectionError(def.class, prop, s);
      if (err) throw new GraphQLError(err.message, loc(err.field as Field));
      continue;
    }
    if (s.selections) throw new GraphQLError(`Field "${s.name}" must not have a selection since type "${prop.dataType[0]}" has no subfields.`, loc(s));
  }
}

function validateAggregateSelections(def: ClassDef, selections: Field[]): void {
  for (const s of selections) {
    if (s.name === "__typename") continue;
    if (s.name === "meta") {
      for (const m of s.selections ?? []) if (m.name !== "count" && m.name !== "__typename") throw new GraphQLError(`Cannot query field "${m.name}" on type "AggregateMetaObject".`, loc(m));
      continue;
    }
    if (s.name === "groupedBy") {
      for (const m of s.selections ?? []) if (m.name !== "value" && m.name !== "path" && m.name !== "__typename") throw new GraphQLError(`Cannot query field "${m.name}" on type "AggregateGroupedBy".`, loc(m));
      continue;
    }
    let metrics: string[];
    try {
      metrics = metricsOf(def, s.name).metrics;
    } catch {
      throw new GraphQLError(`Cannot query field "${s.name}" on type "Aggregate${def.class}".`, loc(s));
    }
    if (!s.selections) throw new GraphQLError(`Field "${s.name}" of type "Aggregate${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj" must have a sub selection.`, loc(s));
    for (const m of s.selections) {
      if (m.name === "__typename") continue;
      if (!metrics.includes(m.name)) throw new GraphQLError(`Cannot query field "${m.name}" on type "Aggregate${def.class}${s.name.charAt(0).toUpperCase() + s.name.slice(1)}Obj".`, loc(m));
      if (m.name === "topOccurrences") {
        for (const a of m.args.keys()) if (a !== "limit") throw new GraphQLError(`Unknown argument "${a}" on field "topOccurrences".`, loc(m));
        for (const t of m.selections ?? []) if (t.name !== "value" && t.name !== "occurs" && t.name !== "__typename") throw new GraphQLError(`Cannot query field "${t.name}" on type "TextPropertyAggregateTopOccurrences".`, loc(t));
      } else if (m.args.size) throw new GraphQLError(`Unknown argument "${[...m.args.keys()][0]}" on field "${m.name}".`, loc(m));
    }
  }
}

async function runGet(service: CollectionService, caller: Caller, f: Field, vars: Record<string, unknown>): Promise<unknown[]> {
  const arg = (name: string) => (f.args.has(name) ? toJson(f.args.get(name)!, vars) : undefined);
  const limit = arg("limit") === undefined || arg("limit") === null ? DEFAULT_LIMIT : nonNegativeInt(arg("limit"), "limit", f);
  const offset = arg("offset") === undefined || arg("offset") === null ? 0 : nonNegativeInt(arg("offset"), "offset", f);
  if (limit + offset > MAX_RESULTS) throw new GraphQLError(`query maximum results exceeded: offset + limit must be at most ${MAX_RESULTS}`);
  const near = ["nearVector", "nearText", "nearObject", "bm25", "hybrid"].filter((n) => f.args.has(n));
  if (near.length > 1) throw new GraphQLError(`found more than one search operator (${near.join(", ")}): use one`);
  const q: SearchQuery = { class: f.name, limit, offset };
  const where = arg("where");
  if (where !== undefined && where !== null) q.where = where;
  const after = arg("after");
  if (typeof after === "string") {
    if (near.length || where !== undefined) throw new GraphQLError("the cursor (after) cannot be combined with a search or a where filter");
    q.after = after;
  }
  const thresholds = (o: Record<string, unknown>, op: string) => {
    if (o.distance !== undefined && o.distance !== null) {
      if (typeof o.distance !== "number") throw new GraphQLError(`${op}: distance must be a number`);
      q.distance = o.distance;
    }
    if (o.certainty !== undefined && o.certainty !== null) {
      if (typeof o.certainty !== "number") throw new GraphQLError(`${op}: certainty must be a number`);
      q.certainty = o.certainty;
    }
  };
  // Fields a near* argument may carry; any other (moveTo, moveAwayFrom, autocorrect, …) is refused, never ignored.
  const NEAR_FIELDS: Record<string, string[]> = { nearVector: ["vector", "distance", "certainty", "targetVectors"], nearText: ["concepts", "distance", "certainty", "targetVectors"], nearObject: ["id", "beacon", "distance", "certainty", "targetVectors"] };
  const objectArg = (name: string) => {
    const v = arg(name);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new GraphQLError(`Argument "${name}" must be an object.`, loc(f));
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (o[k] !== undefined && o[k] !== null && !NEAR_FIELDS[name]!.includes(k)) throw new GraphQLError(`${name}: '${k}' is not supported by OpenBatch`);
    const t = o.targetVectors;
    if (t !== undefined && t !== null) {
      if (!Array.isArray(t) || t.length !== 1 || typeof t[0] !== "string") throw new GraphQLError(`${name}: targetVectors must name one vector (several at once are not supported by OpenBatch)`);
      q.targetVector = t[0];
    }
    return o;
  };
  if (near[0] === "nearVector") {
    const o = objectArg("nearVector");
    if (!Array.isArray(o.vector) || o.vector.length === 0 || !o.vector.every((x) => typeof x === "number")) throw new GraphQLError("nearVector: vector must be a non-empty list of numbers");
    q.vector = o.vector as number[];
    thresholds(o, "nearVector");
  } else if (near[0] === "nearText") {
    const o = objectArg("nearText");
    const concepts = typeof o.concepts === "string" ? [o.concepts] : o.concepts;
    if (!Array.isArray(concepts) || concepts.length === 0 || !concepts.every((x) => typeof x === "string")) throw new GraphQLError("nearText: concepts must be a non-empty list of strings");
    q.concepts = concepts as string[];
    thresholds(o, "nearText");
  } else if (near[0] === "nearObject") {
    const o = objectArg("nearObject");
    const id = typeof o.id === "string" ? o.id : typeof o.beacon === "string" ? o.beacon.split("/").at(-1) : undefined;
    if (!id) throw new GraphQLError("nearObject: give the object's id (or beacon)");
    q.nearObject = id;
    thresholds(o, "nearObject");
  }
  // Keyword, hybrid and sorted searches (search-args.ts).
  if (near[0] === "bm25") q.bm25 = parseBm25Arg(arg("bm25"));
  else if (near[0] === "hybrid") {
    const h = parseHybridArg(arg("hybrid"));
    q.hybrid = h.hybrid;
    if (h.targetVector) q.targetVector = h.targetVector;
  }
  if (arg("sort") !== undefined && arg("sort") !== null) q.sort = parseSortArg(arg("sort"));
  if (arg("autocut") !== undefined && arg("autocut") !== null) q.autocut = nonNegativeInt(arg("autocut"), "autocut", f);
  const wantsVector = f.selections!.some((s) => s.name === "_additional" && s.selections!.some((a) => a.name === "vector" || a.name === "vectors"));
  q.tenant = tenantArg(arg("tenant"));
  q.includeVector = wantsVector;
  // groupBy (graphql-group-by.ts): a wider search, then one entry per group.
  const groupBy = arg("groupBy") === undefined || arg("groupBy") === null ? null : parseGroupByArg(arg("groupBy"));
  let groupProperty = "";
  if (groupBy) {
    if (!(q.vector || q.concepts || q.nearObject || q.hybrid || q.bm25)) throw new GraphQLError("groupBy needs a search (nearVector, nearText, nearObject, hybrid, bm25)");
    if (offset) throw new GraphQLError("groupBy cannot be combined with offset");
    groupProperty = checkGroupBy(service.getClass(caller, f.name)!, groupBy.property, groupBy.groups, groupBy.objectsPerGroup);
    q.limit = Math.max(q.limit, GROUP_BY_CANDIDATES);
  }
  const results = await service.search(caller, q);
  const def = f.selections!.some((s) => s.selections && s.name !== "_additional") || groupBy ? service.getClass(caller, f.name) : null;
  if (groupBy) return groupedEntries(results, groupBy, groupProperty, f.selections!, (h, sel) => renderHit(h, sel as Field[], f.name, def)).map((r) => renderHit(r, f.selections!, f.name, def));
  return results.map((r) => renderHit(r, f.selections!, f.name, def));
}

function renderHit(r: SearchResult, selections: Field[], cls: string, def?: ClassDef | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of selections) {
    if (s.name === "__typename") out[keyOf(s)] = cls;
    else if (s.name === "_additional") {
      const add: Record<string, unknown> = {};
      for (const a of s.selections!) {
        const v =
          a.name === "id" ? r.id
          : a.name === "distance" ? r.distance
          : a.name === "certainty" ? r.certainty
          : a.name === "vector" ? r.vector
          : a.name === "vectors" ? Object.fromEntries(a.selections!.map((v) => [keyOf(v), v.name === "__typename" ? `${cls}AdditionalVectors` : (r.vectors?.[v.name] ?? null)]))
          : a.name === "score" ? (r.score === undefined ? null : String(r.score))
          : a.name === "explainScore" ? (r.explainScore ?? null)
          : a.name === "group" ? ((r as SearchResult & { group?: unknown }).group ?? null)
          : a.name === "creationTimeUnix" ? String(r.creationTimeUnix)
          : String(r.lastUpdateTimeUnix);
        add[keyOf(a)] = v ?? null;
      }
      out[keyOf(s)] = add;
    } else if (s.selections) {
      // geoCoordinates / phoneNumber / object: cut to the selected subfields (graphql-complex.ts).
      const prop = def?.properties.find((p) => p.name === s.name);
      out[keyOf(s)] = prop ? projectComplex(prop, r.properties[s.name], s) : (r.properties[s.name] ?? null);
    } else out[keyOf(s)] = r.properties[s.name] ?? null;
  }
  return out;
}

async function runAggregate(service: CollectionService, caller: Caller, f: Field, vars: Record<string, unknown>): Promise<unknown[]> {
  const arg = (name: string) => (f.args.has(name) ? toJson(f.args.get(name)!, vars) : undefined);
  const fields: AggregateField[] = [];
  for (const s of f.selections!) {
    if (s.name === "__typename" || s.name === "meta" || s.name === "groupedBy") continue;
    const top = s.selections!.find((m) => m.name === "topOccurrences");
    const limit = top?.args.has("limit") ? nonNegativeInt(toJson(top.args.get("limit")!, vars), "limit", top) : undefined;
    fields.push({ property: s.name, metrics: s.selections!.filter((m) => m.name !== "__typename").map((m) => m.name), ...(limit !== undefined ? { topOccurrencesLimit: limit } : {}) });
  }
  const q: AggregateQuery = { class: f.name, fields };
  q.tenant = tenantArg(arg("tenant"));
  const where = arg("where");
  if (where !== undefined && where !== null) q.where = where;
  const groupBy = arg("groupBy");
  if (groupBy !== undefined && groupBy !== null) {
    const path = Array.isArray(groupBy) ? groupBy : [groupBy];
    if (path.length !== 1 || typeof path[0] !== "string") throw new GraphQLError("groupBy: give one property name, as [\"prop\"]");
    q.groupBy = path[0];
  }
  if (arg("limit") !== undefined && arg("limit") !== null) q.limit = nonNegativeInt(arg("limit"), "limit", f);
  if (arg("objectLimit") !== undefined && arg("objectLimit") !== null) q.objectLimit = nonNegativeInt(arg("objectLimit"), "objectLimit", f);
  const near = ["nearVector", "nearText", "nearObject", "hybrid"].filter((n) => f.args.has(n));
  if (near.length > 1) throw new GraphQLError(`found more than one search operator (${near.join(", ")}): use one`);
  if (near.length) {
    const o = arg(near[0]!);
    if (typeof o !== "object" || o === null || Array.isArray(o)) throw new GraphQLError(`Argument "${near[0]}" must be an object.`, loc(f));
    const v = o as Record<string, unknown>;
    const search: NonNullable<AggregateQuery["search"]> = {};
    if (near[0] === "hybrid") {
      const h = parseHybridArg(v);
      search.hybrid = h.hybrid;
      if (h.targetVector) search.targetVector = h.targetVector;
    } else {
      for (const k of Object.keys(v)) if (!["vector", "concepts", "id", "distance", "certainty", "targetVectors"].includes(k)) throw new GraphQLError(`${near[0]}: field '${k}' is not supported by OpenBatch in Aggregate`);
      const t = v.targetVectors;
      if (t !== undefined && t !== null) {
        if (!Array.isArray(t) || t.length !== 1 || typeof t[0] !== "string") throw new GraphQLError(`${near[0]}: targetVectors must name one vector (several at once are not supported by OpenBatch)`);
        search.targetVector = t[0];
      }
      if (near[0] === "nearVector") {
        if (!Array.isArray(v.vector) || !v.vector.every((x) => typeof x === "number")) throw new GraphQLError("nearVector: vector must be a non-empty list of numbers");
        search.vector = v.vector as number[];
      } else if (near[0] === "nearText") {
        const c = typeof v.concepts === "string" ? [v.concepts] : v.concepts;
        if (!Array.isArray(c) || !c.every((x) => typeof x === "string")) throw new GraphQLError("nearText: concepts must be a non-empty list of strings");
        search.concepts = c as string[];
      } else {
        if (typeof v.id !== "string") throw new GraphQLError("nearObject: give the object's id");
        search.nearObject = v.id;
      }
      if (typeof v.distance === "number") search.distance = v.distance;
      if (typeof v.certainty === "number") search.certainty = v.certainty;
    }
    q.search = search;
  }
  const rows = await service.aggregate(caller, q);
  return rows.map((r) => {
    const row: Record<string, unknown> = {};
    for (const s of f.selections!) {
      if (s.name === "__typename") row[keyOf(s)] = `Aggregate${f.name}`;
      else if (s.name === "meta") row[keyOf(s)] = Object.fromEntries((s.selections ?? []).map((m) => [keyOf(m), m.name === "count" ? r.count : "AggregateMetaObject"]));
      else if (s.name === "groupedBy") row[keyOf(s)] = r.groupedBy ? Object.fromEntries((s.selections ?? []).map((m) => [keyOf(m), m.name === "value" ? String(r.groupedBy!.value) : m.name === "path" ? r.groupedBy!.path : "AggregateGroupedBy"])) : null;
      else {
        const metrics = r.properties[s.name] ?? {};
        row[keyOf(s)] = Object.fromEntries(
          s.selections!.map((m) => {
            const v = metrics[m.name];
            if (m.name === "topOccurrences" && Array.isArray(v)) return [keyOf(m), v.map((t: Record<string, unknown>) => Object.fromEntries((m.selections ?? []).map((x) => [keyOf(x), t[x.name] ?? null])))];
            return [keyOf(m), v ?? null];
          }),
        );
      }
    }
    return row;
  });
}

/** `POST /v1/graphql` and `POST /v1/graphql/batch`. */
export const weaviateGraphqlRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  const body = (b: unknown) => (typeof b === "object" && b !== null ? (b as { query?: unknown; variables?: unknown }) : {});
  app.post("/v1/graphql", async (req) => {
    const b = body(req.body);
    return executeQuery(collections, req.caller, b.query, b.variables);
  });
  app.post("/v1/graphql/batch", async (req) => {
    if (!Array.isArray(req.body)) throw new CollectionError(422, "the body must be an array of {query} objects");
    const answers = [];
    for (const q of req.body) answers.push(await executeQuery(collections, req.caller, body(q).query, body(q).variables));
    return answers;
  });
};
