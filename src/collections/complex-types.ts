/**
 * Weaviate's non-scalar data types: `object` / `object[]` (with `nestedProperties`, nested to any depth),
 * `geoCoordinates`, `phoneNumber` and `blob` — their schema rules, value validation (with Weaviate's messages) and the
 * value stored. Scalars are checked by objects.ts; this file is what those types add on top.
 *
 * Stored forms (what REST returns): geo `{latitude, longitude}` (numbers); phone Weaviate's parsed form
 * `{input, defaultCountry?, internationalFormatted, countryCode, national, nationalFormatted, valid}`; blob the base64
 * string as given; objects as JSON with their nested properties validated (unknown nested names refused).
 */
import { parsePhoneNumberWithError, ParseError, type CountryCode } from "libphonenumber-js/max";
import { goType } from "./errors.js";
import type { PropertyDef } from "./schema.js";

/** Types that hold no class name and no scalar: they are not cross-references. */
export const COMPLEX_TYPES = ["object", "object[]", "geoCoordinates", "phoneNumber", "blob"] as const;
const COMPLEX = new Set<string>(COMPLEX_TYPES);
export const isComplexType = (t: string | undefined) => t !== undefined && COMPLEX.has(t);
export const isObjectType = (t: string | undefined) => t === "object" || t === "object[]";

/** Data types a nested property may have (Weaviate: no references, no geoCoordinates, no phoneNumber). */
export const NESTED_TYPES = new Set(["text", "text[]", "int", "int[]", "number", "number[]", "boolean", "boolean[]", "date", "date[]", "uuid", "uuid[]", "blob", "object", "object[]"]);

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const BASE64 = /^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)?$/;


/** Weaviate's parsed phone number (models.PhoneNumber). */
export interface PhoneNumberValue {
  input: string;
  defaultCountry?: string;
  internationalFormatted: string;
  countryCode: number;
  national: number;
  nationalFormatted: string;
  valid: boolean;
}

/** Go phonenumbers' wording for libphonenumber-js's parse errors (Weaviate prints Go's). */
const PHONE_ERRORS: Record<string, string> = {
  INVALID_COUNTRY: "invalid country code",
  NOT_A_NUMBER: "the string supplied did not seem to be a phone number",
  TOO_SHORT: "the string supplied is too short to be a phone number",
  TOO_LONG: "the string supplied is too long to be a phone number",
  INVALID_LENGTH: "the string supplied did not seem to be a phone number",
};

/**
 * Parses a phone number as Weaviate does (`{input, defaultCountry?}`; the country is upper-cased).
 * @returns the stored form, or Weaviate's reason.
 */
export function parsePhone(value: unknown): PhoneNumberValue | { error: string } {
  if (!isMap(value)) return { error: `phoneNumber must be a map, but got: ${goType(value)}` };
  if (value.input === undefined || value.input === null) return { error: "phoneNumber is missing required field 'input'" };
  if (typeof value.input !== "string") return { error: "phoneNumber.input must be a string" };
  let country = "";
  if (value.defaultCountry !== undefined && value.defaultCountry !== null) {
    if (typeof value.defaultCountry !== "string") return { error: "phoneNumber.defaultCountry must be a string" };
    country = value.defaultCountry.toUpperCase();
  }
  for (const k of Object.keys(value)) {
    // The REST answer's own fields may come back in (a GET then PUT): they are recomputed.
    if (!["input", "defaultCountry", "internationalFormatted", "countryCode", "national", "nationalFormatted", "valid"].includes(k)) return { error: `phoneNumber: unknown field '${k}'` };
  }
  try {
    const n = parsePhoneNumberWithError(value.input, country ? { defaultCountry: country as CountryCode } : undefined);
    const out: PhoneNumberValue = {
      input: value.input,
      internationalFormatted: n.formatInternational(),
      countryCode: Number(n.countryCallingCode),
      national: Number(n.nationalNumber),
      nationalFormatted: n.formatNational(),
      valid: n.isValid(),
    };
    if (country) out.defaultCountry = country;
    return out;
  } catch (err) {
    if (err instanceof ParseError) return { error: `invalid phone number: ${PHONE_ERRORS[err.message] ?? err.message}` };
    throw err;
  }
}

/** Validates `{latitude, longitude}`. @returns the stored form or Weaviate's reason. */
export function parseGeo(value: unknown): { latitude: number; longitude: number } | { error: string } {
  if (!isMap(value)) return { error: `geoCoordinates must be a map, but got: ${goType(value)}` };
  for (const k of Object.keys(value)) if (k !== "latitude" && k !== "longitude") return { error: `geoCoordinates: unknown field '${k}'` };
  const out: Record<string, number> = {};
  for (const [field, max] of [["latitude", 90], ["longitude", 180]] as const) {
    const v = value[field];
    if (v === undefined || v === null) return { error: `geoCoordinates is missing required field '${field}'` };
    if (typeof v !== "number") return { error: `invalid ${field}: must be json.Number or float, but got ${goType(v)}` };
    if (v < -max || v > max) return { error: `invalid ${field}: must be between -${max} and ${max}, but got ${v}` };
    out[field] = v;
  }
  return { latitude: out.latitude!, longitude: out.longitude! };
}

/**
 * Validates a value of a complex-typed property (recursing into nested properties).
 * @param checkScalar objects.ts's scalar check: null when fine, else the reason.
 * @returns the value to store, or the reason it is refused (without the "invalid … property" prefix).
 */
export function validateComplex(prop: Pick<PropertyDef, "name" | "dataType" | "nestedProperties">, value: unknown, checkScalar: (dataType: string, value: unknown) => string | null): { value: unknown } | { error: string } {
  const type = prop.dataType[0]!;
  switch (type) {
    case "geoCoordinates": {
      const g = parseGeo(value);
      return "error" in g ? g : { value: g };
    }
    case "phoneNumber": {
      const p = parsePhone(value);
      return "error" in p ? p : { value: p };
    }
    case "blob":
      if (typeof value !== "string") return { error: `not a blob base64 string, but ${goType(value)}` };
      if (!BASE64.test(value)) return { error: "not a valid blob base64 string" };
      return { value };
    case "object": {
      if (!isMap(value)) return { error: `not an object, but ${goType(value)}` };
      return validateNested(prop.nestedProperties ?? [], value, checkScalar);
    }
    case "object[]": {
      if (!Array.isArray(value)) return { error: `not an object array, but ${goType(value)}` };
      const out: unknown[] = [];
      for (const [i, x] of value.entries()) {
        if (!isMap(x)) return { error: `element ${i}: not an object, but ${goType(x)}` };
        const r = validateNested(prop.nestedProperties ?? [], x, checkScalar);
        if ("error" in r) return { error: `element ${i}: ${r.error}` };
        out.push(r.value);
      }
      return { value: out };
    }
  }
  const err = checkScalar(type, value);
  if (err !== null) return { error: err };
  return { value: type === "uuid" ? (value as string).toLowerCase() : type === "uuid[]" ? (value as string[]).map((u) => u.toLowerCase()) : value };
}

function validateNested(nested: PropertyDef[], value: Record<string, unknown>, checkScalar: (dataType: string, value: unknown) => string | null): { value: unknown } | { error: string } {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === null || v === undefined) continue;
    const p = nested.find((n) => n.name === key);
    if (!p) return { error: `nested property '${key}' not found in the schema (nested properties: ${nested.map((n) => n.name).join(", ")})` };
    const r = validateComplex(p, v, checkScalar);
    if ("error" in r) return { error: `nested property '${key}': ${r.error}` };
    out[key] = r.value;
  }
  return { value: out };
}

/** Subfields GraphQL serves on a geo / phone property. */
export const GEO_FIELDS = new Set(["latitude", "longitude"]);
export const PHONE_FIELDS = new Set(["input", "internationalFormatted", "nationalFormatted", "national", "valid", "countryCode", "defaultCountry"]);

/** A property definition as auto-schema infers it (the JSON `parseProperty` reads). */
export interface InferredProperty {
  dataType: string[];
  nestedProperties?: ({ name: string } & InferredProperty)[];
}

/**
 * Auto-schema's type for a JSON object or an array of them, as Weaviate infers it: `{latitude, longitude}` is
 * geoCoordinates, `{input[, defaultCountry]}` phoneNumber, any other object `object` with its fields inferred
 * (nested to any depth; an array of objects is `object[]` with the fields of all its elements).
 * @param scalar the scalar inference (text / date / uuid / number / boolean, or null for anything else).
 * @returns the definition, null when a nested value says nothing, or an error message.
 */
export function inferComplex(value: unknown, scalar: (v: unknown) => string | null): InferredProperty | { error: string } | null {
  if (isMap(value)) {
    const keys = Object.keys(value);
    if (keys.length === 2 && typeof value.latitude === "number" && typeof value.longitude === "number") return { dataType: ["geoCoordinates"] };
    if (typeof value.input === "string" && keys.every((k) => k === "input" || k === "defaultCountry")) return { dataType: ["phoneNumber"] };
    const nested = inferFields([value], scalar);
    return "error" in nested ? nested : { dataType: ["object"], nestedProperties: nested };
  }
  if (Array.isArray(value) && value.length > 0 && value.every(isMap)) {
    const nested = inferFields(value, scalar);
    return "error" in nested ? nested : { dataType: ["object[]"], nestedProperties: nested };
  }
  return null;
}

function inferFields(objects: Record<string, unknown>[], scalar: (v: unknown) => string | null): ({ name: string } & InferredProperty)[] | { error: string } {
  const out = new Map<string, { name: string } & InferredProperty>();
  for (const o of objects) {
    for (const [name, v] of Object.entries(o)) {
      if (v === null || v === undefined || out.has(name)) continue;
      const t = inferNestedValue(v, scalar);
      if (t === null) continue;
      if ("error" in t) return { error: `nested property '${name}': ${t.error}` };
      out.set(name, { name, ...t });
    }
  }
  if (out.size === 0) return { error: "cannot infer the nested properties of an empty object: create the property (with nestedProperties) first" };
  return [...out.values()];
}

/**
 * Auto-schema's type for one value inside an object (a nested field), as at creation: scalars and their arrays, or
 * `object` / `object[]` with their fields; a map that would be geoCoordinates / phoneNumber at the top level is an
 * `object` here (nested properties hold neither, as in Weaviate).
 * @returns the definition, null when the value says nothing (null, empty array), or an error message.
 */
export function inferNestedValue(v: unknown, scalar: (v: unknown) => string | null): InferredProperty | { error: string } | null {
  if (v === null || v === undefined) return null;
  let t: InferredProperty | { error: string } | null;
  if (Array.isArray(v)) {
    const first = v.find((x) => x !== null && x !== undefined);
    const s = first === undefined ? null : scalar(first);
    t = s ? { dataType: [`${s}[]`] } : first === undefined ? null : inferComplex(v, scalar);
  } else {
    const s = scalar(v);
    t = s ? { dataType: [s] } : inferComplex(v, scalar);
  }
  if (t === null || "error" in t) return t;
  if (t.dataType[0] === "geoCoordinates" || t.dataType[0] === "phoneNumber") {
    const nested = inferFields([v as Record<string, unknown>], scalar);
    return "error" in nested ? nested : { dataType: ["object"], nestedProperties: nested };
  }
  return t;
}
