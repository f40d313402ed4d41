/**
 * GraphQL `Get` selections of Weaviate's complex property types (collections/complex-types.ts): `geoCoordinates`
 * (`{ latitude longitude }`), `phoneNumber` (`{ input internationalFormatted … }`), `object` / `object[]` (their
 * nested properties, to any depth) and `blob` (a scalar: the base64 string). Type names follow Weaviate's schema
 * (`GeoCoordinates`, `PhoneNumber`, `<Class><Prop>Object`), so its error messages read the same.
 */
import { GEO_FIELDS, PHONE_FIELDS } from "../../collections/complex-types.js";
import type { PropertyDef } from "../../collections/schema.js";

/** The part of a parsed GraphQL field these helpers read. */
export interface SelectedField {
  alias: string | null;
  name: string;
  selections: SelectedField[] | null;
}

const upper = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const typeName = (owner: string, prop: PropertyDef) =>
  prop.dataType[0] === "geoCoordinates" ? "GeoCoordinates" : prop.dataType[0] === "phoneNumber" ? "PhoneNumber" : `${owner}${upper(prop.name)}Object`;

/**
 * Checks a selection of a complex-typed property. @param owner the class name (or the enclosing object type's
 * prefix). @returns null when valid, else Weaviate's message and the field it is about.
 */
export function complexSelectionError(owner: string, prop: PropertyDef, s: SelectedField): { message: string; field: SelectedField } | null {
  const type = prop.dataType[0];
  if (type === "blob") return s.selections ? { message: `Field "${s.name}" must not have a selection since type "String" has no subfields.`, field: s } : null;
  const name = typeName(owner, prop);
  if (!s.selections) return { message: `Field "${s.name}" of type "${type === "object[]" ? `[${name}]` : name}" must have a sub selection.`, field: s };
  for (const sub of s.selections) {
    if (sub.name === "__typename") continue;
    if (type === "geoCoordinates" || type === "phoneNumber") {
      if (!(type === "geoCoordinates" ? GEO_FIELDS : PHONE_FIELDS).has(sub.name)) return { message: `Cannot query field "${sub.name}" on type "${name}".`, field: sub };
      if (sub.selections) return { message: `Field "${sub.name}" must not have a selection since it has no subfields.`, field: sub };
      continue;
    }
    const nested = prop.nestedProperties?.find((n) => n.name === sub.name);
    if (!nested) return { message: `Cannot query field "${sub.name}" on type "${name}".`, field: sub };
    if (nested.dataType[0] === "object" || nested.dataType[0] === "object[]" || nested.dataType[0] === "blob") {
      const err = complexSelectionError(name.replace(/Object$/, ""), nested, sub);
      if (err) return err;
    } else if (sub.selections) return { message: `Field "${sub.name}" must not have a selection since type "${nested.dataType[0]}" has no subfields.`, field: sub };
  }
  return null;
}

/** A stored complex value cut to the selected subfields (aliases honoured); absent values are null. */
export function projectComplex(prop: PropertyDef, value: unknown, s: SelectedField): unknown {
  if (value === undefined || value === null) return null;
  if (!s.selections || prop.dataType[0] === "blob") return value;
  if (Array.isArray(value)) return value.map((v) => projectComplex({ ...prop, dataType: ["object"] }, v, s));
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const sub of s.selections) {
    const key = sub.alias ?? sub.name;
    if (sub.name === "__typename") {
      out[key] = prop.dataType[0] === "geoCoordinates" ? "GeoCoordinates" : prop.dataType[0] === "phoneNumber" ? "PhoneNumber" : "Object";
      continue;
    }
    const nested = prop.nestedProperties?.find((n) => n.name === sub.name);
    out[key] = nested && sub.selections ? projectComplex(nested, o[sub.name], sub) : (o[sub.name] ?? null);
  }
  return out;
}
