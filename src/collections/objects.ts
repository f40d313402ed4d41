import { randomUUID } from "node:crypto";
import { goType, goValue } from "./errors.js";
import { validateComplex } from "./complex-types.js";
import { parseTargetBeacon } from "./references.js";
import { isReferenceType, isRfc3339, isUuid, normalizeClassName, normalizePropertyName, VECTORIZER, type ClassDef, type PropertyDef } from "./schema.js";

/** One object of `POST /v1/batch/objects` after its envelope was checked (its properties are checked against the class later). */
export interface ObjectEnvelope {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  /** The legacy `vector` (or `vectors.default`, which is the same vector). */
  vector: Float32Array | null;
  /** Named vectors given in `vectors`, `default` excepted. */
  vectors: Record<string, Float32Array>;
}

/** A reference given inline in an object's properties (`prop: [{beacon}]`); `to_class` null until resolved. */
export interface InlineReference {
  property: string;
  to_class: string;
  to_id: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A vector of numbers as a Float32Array; null for an empty one. @returns an error message when it is not one. */
function parseVector(raw: unknown, what: string): Float32Array | null | { error: string } {
  if (!Array.isArray(raw) || !raw.every((x) => typeof x === "number" && Number.isFinite(x))) {
    if (Array.isArray(raw) && raw.length > 0 && Array.isArray(raw[0])) return { error: `${what}: multi-vectors are not supported by OpenBatch` };
    return { error: `${what} must be an array of numbers` };
  }
  return raw.length > 0 ? Float32Array.from(raw as number[]) : null;
}

/**
 * Checks an object's envelope: class, id (a UUID; generated when absent), properties, `vector` and named `vectors`
 * (`vectors.default` is the legacy `vector`: both may be given when they are equal, as some clients send), no tenant.
 * @returns the envelope, or an error message in Weaviate's words.
 */
export function parseEnvelope(raw: unknown): ObjectEnvelope | { error: string } {
  if (!isObject(raw)) return { error: `object must be a JSON object, but got ${goType(raw)}` };
  if (typeof raw.class !== "string" || raw.class === "") return { error: "object has an empty class" };
  const cls = normalizeClassName(raw.class);
  let id: string;
  if (raw.id === undefined || raw.id === null || raw.id === "") id = randomUUID();
  else if (typeof raw.id === "string" && isUuid(raw.id)) id = raw.id.toLowerCase();
  else return { error: `id in body must be of type uuid: ${JSON.stringify(raw.id)}` };
  if (typeof raw.tenant === "string" && raw.tenant !== "") return { error: `class ${cls} has multi-tenancy disabled, but request was with tenant` };
  const properties = raw.properties ?? {};
  if (!isObject(properties)) return { error: `could not recognize object's properties: ${goValue(properties)}` };
  let vector: Float32Array | null = null;
  if (raw.vector !== undefined && raw.vector !== null) {
    const v = parseVector(raw.vector, "vector");
    if (v && "error" in v) return v;
    vector = v;
  }
  const vectors: Record<string, Float32Array> = {};
  if (raw.vectors !== undefined && raw.vectors !== null) {
    if (!isObject(raw.vectors)) return { error: "vectors must be an object of named vectors: {name: [numbers]}" };
    for (const [name, value] of Object.entries(raw.vectors)) {
      if (value === null || value === undefined) continue;
      const v = parseVector(value, `vectors.${name}`);
      if (v && "error" in v) return v;
      if (!v) continue;
      if (name === "default") {
        if (vector && (vector.length !== v.length || vector.some((x, i) => x !== v[i]))) return { error: "vector and vectors.default differ: they name the same vector, give one" };
        vector = v;
      } else vectors[name] = v;
    }
  }
  return { class: cls, id, properties, vector, vectors };
}

/**
 * Validates an object's properties against its class, with Weaviate's messages. Nulls are dropped; names get a
 * lower-case first letter; references are split off. @returns the properties to store and the references, or an error.
 */
export function validateProperties(def: ClassDef, input: Record<string, unknown>): { properties: Record<string, unknown>; references: InlineReference[] } | { error: string } {
  const properties: Record<string, unknown> = {};
  const references: InlineReference[] = [];
  const cls = def.class;
  for (const [key, value] of Object.entries(input)) {
    if (value === null || value === undefined) continue;
    const name = normalizePropertyName(key);
    const prop = def.properties.find((p) => p.name === name);
    if (!prop) return { error: `no such prop with name '${name}' found in class '${cls}' in the schema. Check your schema files for which properties in this class are available` };
    if (isReferenceType(prop.dataType)) {
      const refs = validateReferences(def, prop, value);
      if ("error" in refs) return refs;
      references.push(...refs);
      continue;
    }
    // Scalars here; object / geoCoordinates / phoneNumber / blob (and nested scalars) in complex-types.ts.
    // UUIDs are kept lower-case, as Weaviate returns them.
    const checked = validateComplex(prop, value, checkValue);
    if ("error" in checked) return { error: `invalid ${TYPE_WORDS[prop.dataType[0]!] ?? prop.dataType[0]} property '${name}' on class '${cls}': ${checked.error}` };
    properties[name] = checked.value;
  }
  return { properties, references };
}

/** How Weaviate names each type in its messages. */
const TYPE_WORDS: Record<string, string> = {
  text: "text",
  int: "integer",
  number: "number",
  boolean: "boolean",
  date: "date",
  uuid: "uuid",
  "text[]": "text array",
  "int[]": "integer array",
  "number[]": "number array",
  "boolean[]": "boolean array",
  "date[]": "date array",
  "uuid[]": "uuid array",
  object: "object",
  "object[]": "object array",
  geoCoordinates: "geoCoordinates",
  phoneNumber: "phoneNumber",
  blob: "blob",
};

/** @returns null when `value` fits `dataType`, else Weaviate's reason. */
function checkValue(dataType: string, value: unknown): string | null {
  switch (dataType) {
    case "text":
      return typeof value === "string" ? null : `not a string, but ${goType(value)}`;
    case "int":
      return typeof value === "number" && Number.isInteger(value) ? null : `requires an integer, the given value is '${goValue(value)}'`;
    case "number":
      return typeof value === "number" ? null : `requires a float, the given value is '${goValue(value)}'`;
    case "boolean":
      return typeof value === "boolean" ? null : `not a bool, but ${goType(value)}`;
    case "date":
      return typeof value === "string" && isRfc3339(value) ? null : `requires a string with a RFC3339 formatted date, but the given value is '${goValue(value)}'`;
    case "uuid":
      return typeof value === "string" && isUuid(value) ? null : `requires a string of UUID format, but the given value is '${goValue(value)}'`;
  }
  // Arrays: Weaviate's own wording.
  const element = dataType.slice(0, -2);
  const word = { text: "text", int: "integer", number: "integer", boolean: "boolean", date: "date", uuid: "uuid" }[element]!;
  const article = element === "int" || element === "number" ? "an" : "a";
  if (!Array.isArray(value)) return `not ${article} ${word} array, but ${goType(value)}`;
  for (const x of value) if (checkValue(element, x) !== null) return `invalid ${word} array value: ${goValue(value)}`;
  return null;
}

/** Inline references of a cross-reference property: `[{beacon}, …]` (an `href` is ignored). */
function validateReferences(def: ClassDef, prop: PropertyDef, value: unknown): InlineReference[] | { error: string } {
  if (isObject(value)) return { error: `invalid cref: reference must be an array, but got a map: ${goValue(value)}` };
  if (!Array.isArray(value)) return { error: `invalid cref: invalid ref type. Needs to be []map, got ${goType(value)}` };
  const out: InlineReference[] = [];
  for (const ref of value) {
    if (!isObject(ref)) return { error: `invalid cref: multiple references in ${def.class}.${prop.name} should be a list of maps, but we got: ${goType(ref)}` };
    if (typeof ref.beacon !== "string") {
      return { error: `invalid cref: only direct references supported at the moment, concept references not supported yet:  class '${def.class}' with property '${prop.name}' requires exactly 1 argument: 'beacon' is missing, check your input schema` };
    }
    const target = parseTargetBeacon(ref.beacon);
    if ("error" in target) return { error: `invalid cref: invalid reference: ${target.error}` };
    let toClass = target.class;
    if (toClass === null) {
      if (prop.dataType.length > 1) return { error: `invalid cref: property '${prop.name}' references several classes (${prop.dataType.join(", ")}): name the class in the beacon` };
      toClass = prop.dataType[0]!;
    }
    if (!prop.dataType.includes(toClass)) return { error: `invalid cref: class '${toClass}' is not a valid target of property '${prop.name}' of class '${def.class}' (it references ${prop.dataType.join(", ")})` };
    out.push({ property: prop.name, to_class: toClass, to_id: target.id });
  }
  return out;
}

/** "JeopardyQuestion" → "jeopardy question", as Weaviate's vectorizers spell class and property names. */
const camelCaseToLower = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();

/**
 * The text a `text2vec` module embeds for an object, as Weaviate builds it: the class name (unless
 * `vectorizeClassName` is false), then each text / text[] property in name order (only `sourceProperties` when
 * given; skipped when the property's config for `module` says `skip`), prefixed by its name when
 * `vectorizePropertyName`, joined by spaces.
 */
export function vectorizerText(def: ClassDef, properties: Record<string, unknown>, vectorizeClassName: boolean, module: string = VECTORIZER, sourceProperties: string[] | null = null): string {
  const parts: string[] = vectorizeClassName ? [camelCaseToLower(def.class)] : [];
  const only = sourceProperties ? new Set(sourceProperties.map(normalizePropertyName)) : null;
  const props = [...def.properties].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const p of props) {
    if (p.dataType[0] !== "text" && p.dataType[0] !== "text[]") continue;
    if (only && !only.has(p.name)) continue;
    const cfg = (p.moduleConfig?.[module] ?? {}) as { skip?: unknown; vectorizePropertyName?: unknown };
    if (cfg.skip === true) continue;
    const value = properties[p.name];
    const text = typeof value === "string" ? value : Array.isArray(value) ? value.filter((x) => typeof x === "string").join(" ") : "";
    if (!text) continue;
    parts.push(cfg.vectorizePropertyName === true ? `${camelCaseToLower(p.name)} ${text}` : text);
  }
  return parts.join(" ");
}
