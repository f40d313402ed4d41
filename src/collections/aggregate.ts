import type { Caller } from "./access.js";
import type { CollectionContext } from "./collection-context.js";
import type { SearchQuery } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { isReferenceType, normalizePropertyName, type ClassDef } from "./schema.js";
import { filteredObjects } from "./filter-plan.js";
import { compileFilter } from "./reference-filters.js";

/*
 * Aggregation of a class's objects (GraphQL `Aggregate`): `meta { count }` and per-property metrics by data type,
 * optionally grouped by one property, over the objects a `where` filter lets through or the `objectLimit` nearest of a
 * search (nearVector, nearText, nearObject, hybrid). Metrics as Weaviate names them:
 *   int, number: count, type, sum, mean, median (mean of the two middle values for an even count), mode (most
 *     frequent; the smallest among ties), maximum, minimum;
 *   text: count, type, topOccurrences(limit, default 5) {value occurs} (whole values, most frequent first, ties by
 *     value);
 *   boolean: count, type, totalTrue, totalFalse, percentageTrue, percentageFalse (fractions 0..1);
 *   date: count, type, median, mode, maximum, minimum (RFC 3339);
 *   references: type, pointingTo.
 * Array properties count each element. Null or missing values are left out of every metric.
 */

/** The metrics asked of one property (`topOccurrencesLimit` for text). */
export interface AggregateField {
  property: string;
  metrics: string[];
  topOccurrencesLimit?: number;
}

/** What to aggregate. `search` (without limit) selects the objects by a search, `objectLimit` of them. */
export interface AggregateQuery {
  class: string;
  /** The tenant of a multi-tenant class (its partition is aggregated; tenants.ts). */
  tenant?: string;
  where?: unknown;
  search?: Omit<SearchQuery, "class" | "limit" | "where">;
  objectLimit?: number;
  groupBy?: string;
  /** Most groups returned (Weaviate's `limit` of a grouped Aggregate). */
  limit?: number;
  fields: AggregateField[];
}

/** One row of the answer: the group's value (grouped only), its count and the fields' metrics by property and name. */
export interface AggregateRow {
  groupedBy?: { path: string[]; value: unknown };
  count: number;
  properties: Record<string, Record<string, unknown>>;
}

const METRICS: Record<string, string[]> = {
  int: ["count", "type", "sum", "mean", "median", "mode", "maximum", "minimum"],
  number: ["count", "type", "sum", "mean", "median", "mode", "maximum", "minimum"],
  text: ["count", "type", "topOccurrences"],
  boolean: ["count", "type", "totalTrue", "totalFalse", "percentageTrue", "percentageFalse"],
  date: ["count", "type", "median", "mode", "maximum", "minimum"],
  uuid: ["count", "type"],
  ref: ["type", "pointingTo"],
};

/** Which metrics a property's data type has (`ref` for references). */
export function metricsOf(def: ClassDef, property: string): { base: string; metrics: string[] } {
  const prop = def.properties.find((p) => p.name === normalizePropertyName(property));
  if (!prop) throw unprocessable(`no such prop with name '${property}' found in class '${def.class}' in the schema`);
  const base = isReferenceType(prop.dataType) ? "ref" : prop.dataType[0]!.replace("[]", "");
  return { base, metrics: METRICS[base] ?? [] };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mode = (xs: number[]) => {
  const counts = new Map<number, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  let best = NaN, n = 0;
  for (const [x, c] of counts) if (c > n || (c === n && x < best)) (best = x), (n = c);
  return best;
};

function metricsFor(def: ClassDef, field: AggregateField, values: unknown[]): Record<string, unknown> {
  const { base, metrics } = metricsOf(def, field.property);
  const prop = def.properties.find((p) => p.name === normalizePropertyName(field.property))!;
  for (const m of field.metrics) if (!metrics.includes(m)) throw unprocessable(`aggregate: metric '${m}' does not apply to property '${prop.name}' of type ${prop.dataType.join(",")} (it has ${metrics.join(", ")})`);
  const flat = values.flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => v !== null && v !== undefined);
  const out: Record<string, unknown> = {};
  const nums = base === "date" ? flat.map((v) => Date.parse(String(v))) : flat.map(Number);
  const iso = (t: number) => new Date(t).toISOString();
  for (const m of field.metrics) {
    switch (m) {
      case "count":
        out.count = flat.length;
        break;
      case "type":
        out.type = base === "ref" ? "cref" : prop.dataType[0];
        break;
      case "pointingTo":
        out.pointingTo = prop.dataType;
        break;
      case "sum":
        out.sum = flat.length ? nums.reduce((a, b) => a + b, 0) : null;
        break;
      case "mean":
        out.mean = flat.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null;
        break;
      case "median":
        out.median = flat.length ? (base === "date" ? iso(median(nums)) : median(nums)) : null;
        break;
      case "mode":
        out.mode = flat.length ? (base === "date" ? iso(mode(nums)) : mode(nums)) : null;
        break;
      case "maximum":
        out.maximum = flat.length ? (base === "date" ? iso(Math.max(...nums)) : Math.max(...nums)) : null;
        break;
      case "minimum":
        out.minimum = flat.length ? (base === "date" ? iso(Math.min(...nums)) : Math.min(...nums)) : null;
        break;
      case "totalTrue":
        out.totalTrue = flat.filter((v) => v === true).length;
        break;
      case "totalFalse":
        out.totalFalse = flat.filter((v) => v === false).length;
        break;
      case "percentageTrue":
        out.percentageTrue = flat.length ? flat.filter((v) => v === true).length / flat.length : null;
        break;
      case "percentageFalse":
        out.percentageFalse = flat.length ? flat.filter((v) => v === false).length / flat.length : null;
        break;
      case "topOccurrences": {
        const counts = new Map<string, number>();
        for (const v of flat) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
        out.topOccurrences = [...counts]
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, field.topOccurrencesLimit ?? 5)
          .map(([value, occurs]) => ({ value, occurs }));
        break;
      }
    }
  }
  return out;
}

type SearchFn = (ctx: CollectionContext, caller: Caller, q: SearchQuery) => Promise<{ id: string; properties: Record<string, unknown> }[]>;

/**
 * Aggregates a class (see the file comment).
 * @throws CollectionError 422 for an unknown class or property, a metric the type has not, a bad filter, a search
 * without objectLimit, groupBy on an array or reference property; 403 when `caller` may not read the class.
 */
export async function aggregate(ctx: CollectionContext, caller: Caller, q: AggregateQuery, search: SearchFn): Promise<AggregateRow[]> {
  const st = ctx.requireClass(q.class, caller, "read");
  const def = st.def;
  for (const f of q.fields) metricsOf(def, f.property);
  let objects: { properties: Record<string, unknown> }[];
  if (q.search) {
    if (q.objectLimit === undefined) throw unprocessable("aggregate: a search (nearVector, nearText, nearObject, hybrid) needs objectLimit");
    objects = await search(ctx, caller, { ...q.search, class: def.class, where: q.where, limit: q.objectLimit });
  } else {
    if (q.objectLimit !== undefined) throw unprocessable("aggregate: objectLimit needs a search (nearVector, nearText, nearObject, hybrid)");
    objects = [];
    if (q.where === undefined || q.where === null) await ctx.scan(st, null, (o) => (objects.push({ properties: o.properties }), true));
    else objects = await filteredObjects(ctx, st, q.where, await compileFilter(ctx, caller, st, q.where), -Infinity, Infinity, false);
  }
  const rowOf = (list: { properties: Record<string, unknown> }[]): AggregateRow => ({
    count: list.length,
    properties: Object.fromEntries(q.fields.map((f) => [f.property, metricsFor(def, f, list.map((o) => o.properties[normalizePropertyName(f.property)]))])),
  });
  if (!q.groupBy) return [rowOf(objects)];
  const { base } = metricsOf(def, q.groupBy);
  const prop = def.properties.find((p) => p.name === normalizePropertyName(q.groupBy!))!;
  if (base === "ref") throw unprocessable("aggregate: groupBy on a reference property is not supported by OpenBatch");
  const groups = new Map<string, { value: unknown; list: typeof objects }>();
  for (const o of objects) {
    const v = o.properties[prop.name];
    for (const x of Array.isArray(v) ? v : [v]) {
      if (x === null || x === undefined) continue;
      const key = JSON.stringify(x);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { value: x, list: [] }));
      g.list.push(o);
    }
  }
  const rows = [...groups.values()].sort((a, b) => b.list.length - a.list.length || (String(a.value) < String(b.value) ? -1 : 1));
  return rows.slice(0, q.limit ?? rows.length).map((g) => ({ groupedBy: { path: [prop.name], value: g.value }, ...rowOf(g.list) }));
}
