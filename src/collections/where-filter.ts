/**
 * Weaviate `where` filters, compiled to a predicate over an object's id and properties:
 * `{operator: "And"|"Or", operands: [...]}` or
 * `{path: ["prop"], operator: Equal|NotEqual|GreaterThan|GreaterThanEqual|LessThan|LessThanEqual|Like|IsNull|
 *   ContainsAny|ContainsAll, valueText|valueString|valueInt|valueNumber|valueBoolean|valueDate (…Array for Contains*)}`.
 * `path: ["id"]` filters on the object's uuid. Text is matched per token as the property's tokenization splits it
 * (Weaviate's default `word`: lower-cased runs of letters and digits; all the value's tokens must be present).
 * Conditions on references (a path through a reference, a reference count) are worked out beforehand by
 * reference-filters.ts (compileFilter, which every filtered operation calls) and handed in as `refs`.
 */
import { isComplexType } from "./complex-types.js";
import { unprocessable } from "./errors.js";
import { analyze } from "./inverted-index.js";
import { compileTimestampFilter, isTimestampPath, type TimestampTarget } from "./meta-filters.js";
import { compileGeoFilter, compileLengthFilter, isLengthPath } from "./extra-filters.js";
import type { ReferenceConditions } from "./reference-filters.js";
import { isReferenceType, normalizePropertyName, type ClassDef, type PropertyDef, type Tokenization } from "./schema.js";

/** What a filter sees of an object. */
export interface FilterTarget extends TimestampTarget {
  id: string;
  properties: Record<string, unknown>;
}

export type Predicate = (o: FilterTarget) => boolean;

const OPERATORS = ["And", "Or", "Not", "Equal", "NotEqual", "GreaterThan", "GreaterThanEqual", "LessThan", "LessThanEqual", "Like", "IsNull", "ContainsAny", "ContainsAll", "ContainsNone", "WithinGeoRange"] as const;
type Operator = (typeof OPERATORS)[number];

const VALUE_KEYS = ["valueText", "valueString", "valueInt", "valueNumber", "valueBoolean", "valueDate"] as const;
const ARRAY_VALUE_KEYS = ["valueTextArray", "valueStringArray", "valueIntArray", "valueNumberArray", "valueBooleanArray", "valueDateArray"] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Every key of Weaviate's WhereFilter input; null counts as absent, as it does there. */
const FILTER_KEYS = new Set<string>(["operator", "path", "operands", ...VALUE_KEYS, ...ARRAY_VALUE_KEYS, "valueGeoRange"]);
const ALL_VALUE_KEYS: readonly string[] = [...VALUE_KEYS, ...ARRAY_VALUE_KEYS, "valueGeoRange"];

/**
 * Refuses what a filter node carries beyond what its operator reads, instead of evaluating the node without it:
 * an unknown key (graphql-go's words for its WhereFilter input), a path or value on And/Or/Not, operands on a
 * comparison, more than one value, an array value outside Contains*, valueGeoRange outside WithinGeoRange.
 * @throws CollectionError 422 naming the key.
 */
function checkShape(filter: Record<string, unknown>, op: Operator): void {
  for (const k of Object.keys(filter)) if (filter[k] !== undefined && !FILTER_KEYS.has(k)) throw unprocessable(`invalid where filter: In field "${k}": Unknown field.`);
  const given = (k: string) => filter[k] !== undefined && filter[k] !== null;
  const values = ALL_VALUE_KEYS.filter(given);
  if (op === "And" || op === "Or" || op === "Not") {
    const extra = given("path") ? "path" : values[0];
    if (extra) throw unprocessable(`invalid where filter: operator ${op} combines operands: '${extra}' cannot be given with it`);
    return;
  }
  if (given("operands")) throw unprocessable(`invalid where filter: operator ${op} takes a path and a value, not operands`);
  if (values.length > 1) throw unprocessable(`invalid where filter: operator ${op} takes one value, got ${values.join(" and ")}`);
  const v = values[0];
  if (v === "valueGeoRange" && op !== "WithinGeoRange") throw unprocessable("invalid where filter: valueGeoRange is only valid with operator WithinGeoRange");
  if (v !== undefined && (ARRAY_VALUE_KEYS as readonly string[]).includes(v) && op !== "ContainsAny" && op !== "ContainsAll" && op !== "ContainsNone") {
    throw unprocessable(`invalid where filter: ${v} needs operator ContainsAny, ContainsAll or ContainsNone`);
  }
}

/** Splits text as a tokenization does. */
export function tokenize(text: string, tokenization: Tokenization | undefined): string[] {
  switch (tokenization ?? "word") {
    case "field":
      return [text.trim()];
    case "whitespace":
      return text.split(/\s+/).filter(Boolean);
    case "lowercase":
      return text.toLowerCase().split(/\s+/).filter(Boolean);
    case "trigram":
      return analyze(text, "trigram");
    default:
      return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  }
}

/** A Like pattern (`*` any run, `?` one character) as a RegExp over one token. */
function likeRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, caseInsensitive ? "iu" : "u");
}

/**
 * Compiles a filter for a class; `refs` holds the predicates of its reference conditions (reference-filters.ts).
 * @throws CollectionError 422 for an unknown operator, key or property, a key its operator does not read (checkShape),
 * a missing value, or a value of the wrong type.
 */
export function compileWhere(filter: unknown, def: ClassDef, refs?: ReferenceConditions): Predicate {
  if (!isObject(filter)) throw unprocessable("invalid where filter: must be an object");
  const op = filter.operator as Operator;
  if (!OPERATORS.includes(op)) throw unprocessable(`invalid where filter: unrecognized operator ${JSON.stringify(filter.operator ?? null)}`);
  checkShape(filter, op);
  if (op === "And" || op === "Or" || op === "Not") {
    if (!Array.isArray(filter.operands) || filter.operands.length === 0) throw unprocessable(`invalid where filter: operator ${op} needs operands`);
    const parts = filter.operands.map((o) => compileWhere(o, def, refs));
    if (op === "And") return (o) => parts.every((p) => p(o));
    if (op === "Or") return (o) => parts.some((p) => p(o));
    return (o) => !parts.some((p) => p(o));
  }
  if (!Array.isArray(filter.path) || filter.path.length === 0 || !filter.path.every((p) => typeof p === "string")) {
    throw unprocessable("invalid where filter: path must be an array of property names");
  }
  const path = filter.path as string[];
  const onReference = refs?.get(filter);
  if (onReference) return onReference;
  if (path.length > 1) throw unprocessable(`invalid where filter: path ${JSON.stringify(path)} goes through a reference: give ["<referenceProperty>", "<Class>", "<property>"] of an existing reference property`);
  const name = path[0]!;

  // The object's id.
  if (name === "id" || name === "_id") {
    const value = valueOf(filter, op);
    const values = (Array.isArray(value) ? value : [value]).map((v) => String(v).toLowerCase());
    const cmp = comparator(op, values, (x) => [x], "field");
    return (o) => cmp([o.id]);
  }

  // The object's creation / last update time (meta-filters.ts).
  if (isTimestampPath(name)) return compileTimestampFilter(name, op, filter);

  // Property length, `len(prop)` (extra-filters.ts).
  if (isLengthPath(name)) return compileLengthFilter(name, op, filter, def);

  const prop = def.properties.find((p) => p.name === normalizePropertyName(name));
  if (!prop) throw unprocessable(`no such prop with name '${normalizePropertyName(name)}' found in class '${def.class}' in the schema. Check your schema files for which properties in this class are available`);
  // Reached only when the filter was not compiled through compileFilter (reference-filters.ts).
  if (isReferenceType(prop.dataType)) throw unprocessable(`invalid where filter: reference property '${prop.name}' can be filtered on by its reference count (valueInt) or through a path ["${prop.name}", "<Class>", "<property>"]`);
  // object / geoCoordinates / phoneNumber / blob values are not compared otherwise.
  if (op === "WithinGeoRange") return compileGeoFilter(prop, filter);
  if (isComplexType(prop.dataType[0]) && op !== "IsNull") throw unprocessable(`invalid where filter: filtering with ${op} on property '${prop.name}' of type ${prop.dataType[0]} is not supported by OpenBatch`);
  if (op === "IsNull") {
    if (typeof filter.valueBoolean !== "boolean") throw unprocessable("invalid where filter: IsNull needs valueBoolean");
    const want = filter.valueBoolean;
    return (o) => (o.properties[prop.name] === undefined || o.properties[prop.name] === null) === want;
  }
  const value = valueOf(filter, op);
  const base = prop.dataType[0]!.replace("[]", "");
  const values = (Array.isArray(value) ? value : [value]).map((v) => coerce(v, base, prop));
  const cmp = comparator(op, values, (x) => (base === "text" ? tokenize(String(x), prop.tokenization) : [x]), prop.tokenization);
  return (o) => {
    const v = o.properties[prop.name];
    if (v === undefined || v === null) return op === "NotEqual" || op === "ContainsNone";
    return cmp(Array.isArray(v) ? v : [v]);
  };
}

/** The one value (or array, for Contains*) a filter carries. */
function valueOf(filter: Record<string, unknown>, op: Operator): unknown {
  const keys: readonly string[] = op === "ContainsAny" || op === "ContainsAll" || op === "ContainsNone" ? [...ARRAY_VALUE_KEYS, ...VALUE_KEYS] : VALUE_KEYS;
  const present = keys.filter((k) => filter[k] !== undefined && filter[k] !== null);
  if (present.length !== 1) throw unprocessable(`invalid where filter: operator ${op} needs exactly one of ${keys.join(", ")}`);
  const value = filter[present[0]!];
  const contains = op === "ContainsAny" || op === "ContainsAll" || op === "ContainsNone";
  if (Array.isArray(value) && !contains) throw unprocessable(`invalid where filter: operator ${op} compares one value, but ${present[0]} is a list (lists go with ContainsAny, ContainsAll or ContainsNone)`);
  if (Array.isArray(value) && value.length === 0) throw unprocessable(`invalid where filter: operator ${op} needs at least one value in ${present[0]}`);
  return value;
}

/** A filter value in the property's terms: numbers for int/number, epoch ms for dates, strings for text and uuid. */
function coerce(v: unknown, base: string, prop: PropertyDef): unknown {
  switch (base) {
    case "int":
    case "number":
      if (typeof v !== "number") throw unprocessable(`invalid where filter: property '${prop.name}' is ${prop.dataType[0]}, the value must be a number (valueInt or valueNumber)`);
      return v;
    case "boolean":
      if (typeof v !== "boolean") throw unprocessable(`invalid where filter: property '${prop.name}' is ${prop.dataType[0]}, the value must be valueBoolean`);
      return v;
    case "date": {
      const t = typeof v === "string" ? Date.parse(v) : NaN;
      if (Number.isNaN(t)) throw unprocessable(`invalid where filter: property '${prop.name}' is ${prop.dataType[0]}, the value must be an RFC3339 valueDate`);
      return t;
    }
    default:
      if (typeof v !== "string") throw unprocessable(`invalid where filter: property '${prop.name}' is ${prop.dataType[0]}, the value must be a string (valueText)`);
      return base === "uuid" ? v.toLowerCase() : v;
  }
}

/**
 * A comparison of a property's values (an array: one for scalars) with the filter's values. Text is compared per
 * token: Equal holds when every token of the filter value is among the property's tokens.
 */
function comparator(op: Operator, filterValues: unknown[], tokensOf: (x: unknown) => unknown[], tokenization: Tokenization | undefined): (propValues: unknown[]) => boolean {
  const isDate = (x: unknown) => typeof x === "string" && /^\d{4}-\d{2}-\d{2}T/.test(x);
  const norm = (x: unknown) => (typeof x === "number" || typeof x === "boolean" ? x : isDate(x) && typeof filterValues[0] === "number" ? Date.parse(x as string) : x);
  const propTokens = (values: unknown[]) => new Set(values.flatMap((v) => tokensOf(norm(v))));
  const filterTokens = filterValues.map((f) => tokensOf(f));
  const contains = (have: Set<unknown>, tokens: unknown[]) => tokens.length > 0 && tokens.every((t) => have.has(t));
  const order = (cmp: (a: number) => boolean) => (values: unknown[]) => {
    const f = filterValues[0] as number | string;
    return values.some((v) => {
      const x = norm(v) as number | string;
      return cmp(x < f ? -1 : x > f ? 1 : 0);
    });
  };
  switch (op) {
    case "Equal":
      return (values) => contains(propTokens(values), filterTokens[0]!);
    case "NotEqual":
      return (values) => !contains(propTokens(values), filterTokens[0]!);
    case "GreaterThan":
      return order((c) => c > 0);
    case "GreaterThanEqual":
      return order((c) => c >= 0);
    case "LessThan":
      return order((c) => c < 0);
    case "LessThanEqual":
      return order((c) => c <= 0);
    case "ContainsAny":
      return (values) => {
        const have = propTokens(values);
        return filterTokens.some((t) => contains(have, t));
      };
    case "ContainsAll":
      return (values) => {
        const have = propTokens(values);
        return filterTokens.every((t) => contains(have, t));
      };
    case "ContainsNone":
      return (values) => {
        const have = propTokens(values);
        return !filterTokens.some((t) => contains(have, t));
      };
    case "Like": {
      const ci = tokenization === undefined || tokenization === "word" || tokenization === "lowercase";
      const patterns = tokenization === "field" ? [String(filterValues[0])] : String(filterValues[0]).split(/\s+/).filter(Boolean);
      const res = patterns.map((p) => likeRegExp(ci ? p.toLowerCase() : p, ci));
      return (values) => {
        const tokens = [...propTokens(values)].map(String);
        return res.every((re) => tokens.some((t) => re.test(t)));
      };
    }
    default:
      throw unprocessable(`invalid where filter: operator ${op} cannot be used here`);
  }
}
