import { unprocessable } from "./errors.js";

/*
 * `where` filters on an object's timestamps: `path: ["_creationTimeUnix"]` / `["_lastUpdateTimeUnix"]` with
 * valueText (unix ms as digits, or an RFC 3339 date, which the official clients send), valueDate, valueInt or
 * valueNumber (unix ms). Operators: Equal, NotEqual, GreaterThan[Equal], LessThan[Equal], ContainsAny, ContainsNone,
 * ContainsAll (over the value list), IsNull (never null).
 */

/** What a timestamp filter sees of an object (unix ms). */
export interface TimestampTarget {
  created_at?: number;
  updated_at?: number;
}

const TIMESTAMP_PATHS: Record<string, "created_at" | "updated_at"> = { _creationTimeUnix: "created_at", _lastUpdateTimeUnix: "updated_at" };

/** Whether a filter path names an object timestamp. */
export const isTimestampPath = (name: string) => name in TIMESTAMP_PATHS;

function toMs(v: unknown): number {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string") {
    if (/^\d+$/.test(v)) return Number(v);
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw unprocessable(`invalid where filter: a timestamp filter needs unix milliseconds or an RFC3339 date, got ${JSON.stringify(v)}`);
}

/**
 * Compiles a filter on `_creationTimeUnix` / `_lastUpdateTimeUnix`.
 * @throws CollectionError 422 for a missing or unreadable value or an operator that does not apply (Like).
 */
export function compileTimestampFilter(name: string, op: string, filter: Record<string, unknown>): (o: TimestampTarget) => boolean {
  const field = TIMESTAMP_PATHS[name]!;
  if (op === "IsNull") {
    if (typeof filter.valueBoolean !== "boolean") throw unprocessable("invalid where filter: IsNull needs valueBoolean");
    const want = filter.valueBoolean;
    return () => want === false;
  }
  const keys = ["valueText", "valueDate", "valueInt", "valueNumber", "valueTextArray", "valueDateArray", "valueIntArray", "valueNumberArray"];
  const present = keys.filter((k) => filter[k] !== undefined && filter[k] !== null);
  if (present.length !== 1) throw unprocessable(`invalid where filter: operator ${op} on ${name} needs exactly one value (valueText, valueDate, valueInt or valueNumber)`);
  const raw = filter[present[0]!];
  const values = (Array.isArray(raw) ? raw : [raw]).map(toMs);
  const v0 = values[0]!;
  const cmp: Record<string, (t: number) => boolean> = {
    Equal: (t) => t === v0,
    NotEqual: (t) => t !== v0,
    GreaterThan: (t) => t > v0,
    GreaterThanEqual: (t) => t >= v0,
    LessThan: (t) => t < v0,
    LessThanEqual: (t) => t <= v0,
    ContainsAny: (t) => values.includes(t),
    ContainsAll: (t) => values.every((x) => x === t),
    ContainsNone: (t) => !values.includes(t),
  };
  const test = cmp[op];
  if (!test) throw unprocessable(`invalid where filter: operator ${op} cannot be used on ${name}`);
  return (o) => {
    const t = o[field];
    return t !== undefined && test(t);
  };
}
