import { ApiError } from "./errors.js";
import type { HttpClient } from "./http.js";
import type { Properties } from "./batcher.js";

/**
 * A Weaviate `where` filter: `{path: ["title"], operator: "Equal", valueText: "x"}`, or
 * `{operator: "And" | "Or", operands: [...]}`.
 */
export interface WhereFilter {
  operator: string;
  path?: string[];
  operands?: WhereFilter[];
  valueText?: string;
  valueString?: string;
  valueInt?: number;
  valueNumber?: number;
  valueBoolean?: boolean;
  valueDate?: string;
  valueTextArray?: string[];
  valueIntArray?: number[];
  valueNumberArray?: number[];
  valueBooleanArray?: boolean[];
  valueDateArray?: string[];
  [key: string]: unknown;
}

/** Options shared by the searches. */
export interface SearchOptions<P extends Properties = Properties> {
  /** Most objects returned (default 10). */
  limit?: number;
  where?: WhereFilter;
  /** Properties to return (default: every non-reference property of the class's schema). */
  returnProperties?: (keyof P & string)[];
  /** Only objects at most this far from the query. */
  distance?: number;
  /** Only objects at least this similar to the query (cosine only). */
  certainty?: number;
}

/** One search hit. */
export interface QueryObject<P extends Properties = Properties> {
  uuid: string;
  properties: P;
  /** Distance to the query in the class's metric. */
  distance?: number;
}

/** Searches of one collection through `POST /v1/graphql` `Get`. */
export class Query<P extends Properties = Properties> {
  constructor(
    private readonly http: HttpClient,
    private readonly collection: string,
    private readonly propertyNames: () => Promise<string[]>,
  ) {}

  /** Objects nearest to the concepts, embedded with the collection's vectorizer. */
  async nearText(concepts: string | string[], options: SearchOptions<P> = {}): Promise<QueryObject<P>[]> {
    const near: Record<string, unknown> = { concepts: Array.isArray(concepts) ? concepts : [concepts] };
    return this.get("nearText", near, options);
  }

  /** Objects nearest to the vector. */
  async nearVector(vector: number[], options: SearchOptions<P> = {}): Promise<QueryObject<P>[]> {
    return this.get("nearVector", { vector }, options);
  }

  /** Objects without a search (optionally filtered). */
  async fetchObjects(options: Omit<SearchOptions<P>, "distance" | "certainty"> = {}): Promise<QueryObject<P>[]> {
    return this.get(null, null, options);
  }

  private async get(operator: string | null, near: Record<string, unknown> | null, options: SearchOptions<P>): Promise<QueryObject<P>[]> {
    const args: string[] = [];
    if (operator && near) {
      if (options.distance !== undefined) near.distance = options.distance;
      if (options.certainty !== undefined) near.certainty = options.certainty;
      args.push(`${operator}:${graphqlValue(near)}`);
    }
    args.push(`limit:${Math.max(1, Math.floor(options.limit ?? 10))}`);
    if (options.where) args.push(`where:${graphqlValue(options.where)}`);
    const names = options.returnProperties ?? (await this.propertyNames());
    for (const n of names) if (!/^[_A-Za-z][_0-9A-Za-z]*$/.test(n)) throw new Error(`invalid property name for a query: ${JSON.stringify(n)}`);
    const query = `{ Get { ${this.collection}(${args.join(", ")}) { ${[...names, "_additional { id distance }"].join(" ")} } } }`;
    const res = await this.http.request<{ data?: { Get?: Record<string, unknown[] | null> }; errors?: { message?: string }[] }>("POST", "/v1/graphql", { body: { query } });
    const errors = res.body?.errors ?? [];
    if (errors.length) throw new ApiError(res.status, `graphql: ${errors.map((e) => e?.message ?? "error").join("; ")}`, res.body);
    const rows = res.body?.data?.Get?.[this.collection] ?? [];
    return rows.map((row) => {
      const { _additional, ...properties } = (row ?? {}) as { _additional?: { id?: string; distance?: number | null } } & Record<string, unknown>;
      const hit: QueryObject<P> = { uuid: _additional?.id ?? "", properties: properties as P };
      if (typeof _additional?.distance === "number") hit.distance = _additional.distance;
      return hit;
    });
  }
}

/**
 * A JS value as a GraphQL argument literal: object keys bare, `operator` values as enums (Equal, And, …), strings
 * quoted. e.g. `{path:["title"], operator:Equal, valueText:"x"}`.
 */
export function graphqlValue(value: unknown, key?: string): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") {
    if (key === "operator") {
      if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(value)) throw new Error(`invalid where operator: ${JSON.stringify(value)}`);
      return value;
    }
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`not a finite number in a query: ${value}`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map((v) => graphqlValue(v)).join(",")}]`;
  if (typeof value === "object") {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => {
        if (!/^[_A-Za-z][_0-9A-Za-z]*$/.test(k)) throw new Error(`invalid argument name in a query: ${JSON.stringify(k)}`);
        return `${k}:${graphqlValue(v, k)}`;
      });
    return `{${fields.join(", ")}}`;
  }
  throw new Error(`cannot put a ${typeof value} in a query`);
}
