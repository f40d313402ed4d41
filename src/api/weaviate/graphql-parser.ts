/**
 * The lexer and parser of the GraphQL subset `POST /v1/graphql` accepts (graphql.ts), and the readers of parsed
 * argument values shared by Get (graphql-get.ts) and Aggregate (graphql-aggregate.ts).
 */

// ------------------------------------------------------------------ parser

/** A parsed argument value. */
export type Value =
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "boolean"; value: boolean }
  | { kind: "null" }
  | { kind: "enum"; value: string }
  | { kind: "variable"; name: string }
  | { kind: "list"; values: Value[] }
  | { kind: "object"; fields: Map<string, Value> };

/** A parsed field: alias, name, arguments, sub-selections (null for a leaf), and where it starts. */
export interface Field {
  alias: string | null;
  name: string;
  args: Map<string, Value>;
  selections: Field[] | null;
  line: number;
  column: number;
  /** An inline fragment `... on Class { … }` (a reference's target class) is a Field named `...` with its class here. */
  on?: string;
}

/**
 * One operation of a document: its name (null when anonymous), its selections and its declared variables, each with
 * its default value (null when it has none: an unset variable is an absent argument).
 */
export interface Operation {
  name: string | null;
  selections: Field[];
  defaults: Map<string, Value>;
}

/** A GraphQL error: a message with the place it refers to. */
export class GraphQLError extends Error {
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

  /** The operations of a document, each `{…}` or `query Name($v: T = default) {…}`. */
  document(): Operation[] {
    const operations: Operation[] = [];
    do operations.push(this.operation());
    while (this.peek().kind !== "eof");
    return operations;
  }

  private operation(): Operation {
    const t = this.peek();
    let name: string | null = null;
    let defaults = new Map<string, Value>();
    if (t.kind === "name") {
      if (t.value === "mutation" || t.value === "subscription") throw new GraphQLError(`Schema is not configured for ${t.value}s.`, { line: t.line, column: t.column });
      if (t.value === "fragment") throw new GraphQLError("fragments are not supported by OpenBatch", { line: t.line, column: t.column });
      if (t.value !== "query") this.fail(t, '"{"');
      this.next();
      if (this.peek().kind === "name") name = this.next().value;
      if (this.isPunct("(")) defaults = this.variableDefinitions();
    } else if (!this.isPunct("{")) this.fail(t, '"{"');
    return { name, selections: this.selectionSet(), defaults };
  }

  /** `($a: Int = 2, $b: [String!]!)`: the types are read past (values are checked where used), defaults kept (null when none). */
  private variableDefinitions(): Map<string, Value> {
    const defaults = new Map<string, Value>();
    this.expect("(");
    do {
      this.expect("$");
      const n = this.name();
      this.expect(":");
      this.type();
      if (this.isPunct("=")) {
        this.next();
        defaults.set(n.value, this.value());
      } else defaults.set(n.value, { kind: "null" });
      if (this.isPunct("@")) throw new GraphQLError("directives are not supported by OpenBatch", { line: this.peek().line, column: this.peek().column });
    } while (!this.isPunct(")"));
    this.expect(")");
    return defaults;
  }

  private type(): void {
    if (this.isPunct("[")) {
      this.next();
      this.type();
      this.expect("]");
    } else this.name();
    if (this.isPunct("!")) this.next();
  }

  private selectionSet(): Field[] {
    this.expect("{");
    const fields: Field[] = [];
    while (!this.isPunct("}")) {
      const t = this.peek();
      if (t.kind === "punct" && t.value === "...") {
        this.next();
        const on = this.peek();
        if (on.kind !== "name" || on.value !== "on") throw new GraphQLError("named fragments are not supported by OpenBatch: use an inline fragment `... on Class { … }`", { line: on.line, column: on.column });
        this.next();
        const cls = this.name();
        fields.push({ alias: null, name: "...", on: cls.value, args: new Map(), selections: this.selectionSet(), line: t.line, column: t.column });
        continue;
      }
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

/** Parses a document of the supported subset into its operations. @throws GraphQLError on a syntax error. */
export function parseDocument(source: string): Operation[] {
  return new Parser(lex(source)).document();
}

/** Parses a query of the supported subset: the selections of its first operation. @throws GraphQLError on a syntax error. */
export function parseQuery(source: string): Field[] {
  return parseDocument(source)[0]!.selections;
}

/**
 * The operation a request runs: the one named `operationName`, or the document's only one. Names follow graphql-go's
 * rules and messages (one operation per name, an anonymous operation only alone).
 * @throws GraphQLError for an unknown name, several operations without a name, or a non-string operationName.
 */
export function selectOperation(operations: Operation[], operationName: unknown): Operation {
  const names = new Set<string>();
  for (const op of operations) {
    if (op.name === null && operations.length > 1) throw new GraphQLError("This anonymous operation must be the only defined operation.");
    if (op.name !== null && names.has(op.name)) throw new GraphQLError(`There can be only one operation named "${op.name}".`);
    if (op.name !== null) names.add(op.name);
  }
  if (operationName === undefined || operationName === null || operationName === "") {
    if (operations.length > 1) throw new GraphQLError("Must provide operation name if query contains multiple operations.");
    return operations[0]!;
  }
  if (typeof operationName !== "string") throw new GraphQLError("operationName must be a string");
  const op = operations.find((o) => o.name === operationName);
  if (!op) throw new GraphQLError(`Unknown operation named "${operationName}".`);
  return op;
}

/** A parsed value as plain JSON (enums as strings, variables substituted). */
export function toJson(v: Value, variables: Record<string, unknown>): unknown {
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

/** The key a field's answer goes under: its alias, else its name. */
export const keyOf = (f: Field) => f.alias ?? f.name;
/** Where a field starts in the query, for an error's `locations`. */
export const loc = (f: Field) => ({ line: f.line, column: f.column });

/** A `tenant:` argument (Get, Aggregate): a string, or absent. */
export function tenantArg(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new GraphQLError(`Argument "tenant" has invalid value ${JSON.stringify(v)}. Expected type "String".`);
  return v;
}

/** An Int argument that must be 0 or more. @throws GraphQLError otherwise, at field `f`. */
export function nonNegativeInt(v: unknown, name: string, f: Field): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new GraphQLError(`Argument "${name}" has invalid value ${JSON.stringify(v)}. Expected type "Int", found ${JSON.stringify(v)}.`, loc(f));
  return v;
}
