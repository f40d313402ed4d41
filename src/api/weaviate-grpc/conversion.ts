import { isReferenceType, normalizePropertyName, type ClassDef, type PropertyDef } from "../../collections/schema.js";
import { GrpcInputError } from "./errors.js";
import { filterPath } from "./filter-targets.js";
import type { BatchObjectMsg, FiltersMsg, PropertiesMsg, Struct, StructValue, ValueMsg, VectorsMsg } from "./messages.js";

/** Message conversion: vectors, property values and filters from protobuf to the REST shapes, and results back. */

// ---------------------------------------------------------------- vectors and values

/** float32 little-endian bytes → numbers. */
export function floatsFromBytes(bytes: Buffer | undefined): number[] | null {
  if (!bytes || bytes.length === 0) return null;
  if (bytes.length % 4 !== 0) throw new GrpcInputError(`vector bytes: length ${bytes.length} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** Numbers → float32 little-endian bytes. */
export function floatsToBytes(v: ArrayLike<number>): Buffer {
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf;
}

/** The one (unnamed or "default") single vector of a `vectors` list; named others are an error. */
export function singleVector(vectors: VectorsMsg[] | undefined): { vector: number[] | null; named: Record<string, number[]> | null } {
  if (!vectors || vectors.length === 0) return { vector: null, named: null };
  const named: Record<string, number[]> = {};
  let vector: number[] | null = null;
  for (const v of vectors) {
    if (v.type === 2) throw new GrpcInputError("multi-vectors are not supported: OpenBatch keeps one vector per object");
    const floats = floatsFromBytes(v.vectorBytes) ?? [];
    if (!v.name || v.name === "default") vector = floats;
    else named[v.name] = floats;
  }
  return { vector, named: Object.keys(named).length ? named : null };
}

function fromStructValue(v: StructValue): unknown {
  if (v.structValue !== undefined) return fromStruct(v.structValue);
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(fromStructValue);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

function fromStruct(s: Struct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromStructValue(v);
  return out;
}

/** A BatchObject's properties as the REST body carries them (references as beacons). */
function fromProperties(p: PropertiesMsg | undefined): Record<string, unknown> {
  if (!p) return {};
  const out = fromStruct(p.nonRefProperties);
  for (const a of p.textArrayProperties ?? []) out[a.propName ?? ""] = a.values ?? [];
  for (const a of p.intArrayProperties ?? []) out[a.propName ?? ""] = a.values ?? [];
  for (const a of p.booleanArrayProperties ?? []) out[a.propName ?? ""] = a.values ?? [];
  for (const a of p.numberArrayProperties ?? []) {
    const bytes = a.valuesBytes;
    if (bytes && bytes.length) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      out[a.propName ?? ""] = Array.from({ length: Math.floor(bytes.length / 8) }, (_, i) => view.getFloat64(i * 8, true));
    } else out[a.propName ?? ""] = a.values ?? [];
  }
  for (const o of p.objectProperties ?? []) out[o.propName ?? ""] = fromProperties(o.value);
  for (const o of p.objectArrayProperties ?? []) out[o.propName ?? ""] = (o.values ?? []).map(fromProperties);
  for (const name of p.emptyListProps ?? []) out[name] = [];
  const beacon = (u: string, cls?: string) => (u.startsWith("weaviate://") ? u : cls ? `weaviate://localhost/${cls}/${u}` : `weaviate://localhost/${u}`);
  for (const r of p.singleTargetRefProps ?? []) {
    const name = r.propName ?? "";
    out[name] = [...((out[name] as unknown[]) ?? []), ...(r.uuids ?? []).map((u) => ({ beacon: beacon(u) }))];
  }
  for (const r of p.multiTargetRefProps ?? []) {
    const name = r.propName ?? "";
    out[name] = [...((out[name] as unknown[]) ?? []), ...(r.uuids ?? []).map((u) => ({ beacon: beacon(u, r.targetCollection) }))];
  }
  return out;
}

/** A BatchObject as `POST /v1/batch/objects` carries it. */
export function toRestObject(o: BatchObjectMsg): Record<string, unknown> {
  const out: Record<string, unknown> = { class: o.collection ?? "", properties: fromProperties(o.properties) };
  if (o.uuid) out.id = o.uuid;
  if (o.tenant) out.tenant = o.tenant;
  const { vector, named } = singleVector(o.vectors);
  const v = floatsFromBytes(o.vectorBytes) ?? (o.vector && o.vector.length ? o.vector : null) ?? vector;
  if (v) out.vector = v;
  if (named) out.vectors = named;
  return out;
}

const le64 = (n: number, bigint: boolean) => {
  const b = Buffer.alloc(8);
  if (bigint) b.writeBigInt64LE(BigInt(Math.trunc(n)));
  else b.writeDoubleLE(n);
  return b;
};

/**
 * A stored property value as a `Value`, typed by its data type (inferred from the value when the schema lacks it);
 * `dropBlobs` leaves nested blob fields out (all properties asked for).
 */
function toValue(v: unknown, dataType: string | undefined, nested: PropertyDef[] | undefined, dropBlobs: boolean): ValueMsg | null {
  if (v === null || v === undefined) return null;
  const type = dataType ?? inferType(v);
  // Complex types (complex-types.ts): nested objects typed by their nestedProperties.
  const props = nested ? { properties: nested } : null;
  switch (type) {
    case "geoCoordinates":
      return { geoValue: v };
    case "phoneNumber":
      return { phoneValue: v };
    case "blob":
      return { blobValue: String(v) };
    case "object":
      if (typeof v === "object" && !Array.isArray(v)) return { objectValue: propertiesOf(v as Record<string, unknown>, props, null, dropBlobs) };
      break;
    case "text":
      return { textValue: String(v) };
    case "int":
      return { intValue: Number(v) };
    case "number":
      return { numberValue: Number(v) };
    case "boolean":
      return { boolValue: Boolean(v) };
    case "date":
      return { dateValue: String(v) };
    case "uuid":
      return { uuidValue: String(v) };
  }
  if (Array.isArray(v)) {
    switch (type) {
      case "text[]":
        return { listValue: { textValues: { values: v.map(String) } } };
      case "int[]":
        return { listValue: { intValues: { values: Buffer.concat(v.map((x) => le64(Number(x), true))) } } };
      case "number[]":
        return { listValue: { numberValues: { values: Buffer.concat(v.map((x) => le64(Number(x), false))) } } };
      case "boolean[]":
        return { listValue: { boolValues: { values: v.map(Boolean) } } };
      case "date[]":
        return { listValue: { dateValues: { values: v.map(String) } } };
      case "uuid[]":
        return { listValue: { uuidValues: { values: v.map(String) } } };
      case "object[]":
        return { listValue: { objectValues: { values: v.map((x) => propertiesOf(x as Record<string, unknown>, props, null, dropBlobs)) } } };
    }
  }
  if (typeof v === "object" && !Array.isArray(v)) return { objectValue: propertiesOf(v as Record<string, unknown>, null, null, dropBlobs) };
  return { textValue: JSON.stringify(v) };
}

function inferType(v: unknown): string {
  if (typeof v === "string") return "text";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "boolean";
  if (Array.isArray(v)) {
    const first = v.find((x) => x !== null && x !== undefined);
    if (first === undefined || typeof first === "string") return "text[]";
    if (typeof first === "number") return "number[]";
    if (typeof first === "boolean") return "boolean[]";
    return "object[]";
  }
  return "object";
}

/**
 * Properties as a `Properties` message: non-reference properties only, those named in `only`, or with `only` null
 * all but `blob` ones (nested blob fields too), as Weaviate's getAllNonRefNonBlobProperties leaves them out of a
 * result unless they are named.
 */
export function toProperties(props: Record<string, unknown>, def: Pick<ClassDef, "properties"> | null, only: Set<string> | null = null): { fields: Record<string, ValueMsg> } {
  return propertiesOf(props, def, only, only === null);
}

function propertiesOf(props: Record<string, unknown>, def: Pick<ClassDef, "properties"> | null, only: Set<string> | null, dropBlobs: boolean): { fields: Record<string, ValueMsg> } {
  const fields: Record<string, ValueMsg> = {};
  for (const [name, value] of Object.entries(props)) {
    if (only && !only.has(name)) continue;
    const prop = def?.properties.find((p) => p.name === name);
    if (prop && isReferenceType(prop.dataType)) continue;
    if (dropBlobs && prop?.dataType[0] === "blob") continue;
    const v = toValue(value, prop?.dataType[0], prop?.nestedProperties, dropBlobs);
    if (v) fields[name] = v;
  }
  return { fields };
}

// ---------------------------------------------------------------- filters

const OPERATORS: Record<number, string> = {
  1: "Equal",
  2: "NotEqual",
  3: "GreaterThan",
  4: "GreaterThanEqual",
  5: "LessThan",
  6: "LessThanEqual",
  7: "And",
  8: "Or",
  9: "WithinGeoRange",
  10: "Like",
  11: "IsNull",
  12: "ContainsAny",
  13: "ContainsAll",
  14: "ContainsNone",
  15: "Not",
};

/**
 * gRPC `Filters` → the REST `where` filter (checked by the collections layer). A target through references
 * (`single_target` / `multi_target`, nested) becomes the path `[on, Class, …]`, a `count` the reference property
 * alone (reference-filters.ts); `classOf` gives the classes a path goes through (for their single target's name and
 * the value's type).
 */
export function toWhere(f: FiltersMsg, def: ClassDef | null, classOf?: (name: string) => ClassDef | null): Record<string, unknown> {
  const operator = OPERATORS[f.operator ?? 0];
  if (!operator) throw new GrpcInputError(`filters: unsupported operator ${f.operator ?? 0}`);
  if (operator === "And" || operator === "Or" || operator === "Not") return { operator, operands: (f.filters ?? []).map((x) => toWhere(x, def, classOf)) };
  const target = f.target && (f.target.property || f.target.singleTarget || f.target.multiTarget || f.target.count) ? filterPath(f.target, def, classOf) : f.on && f.on.length ? { path: f.on, leaf: f.on.length > 2 ? (classOf?.(f.on.at(-2)!) ?? null) : def } : null;
  if (!target) throw new GrpcInputError("filters: a filter needs a target (a property, a reference path or a reference count)");
  const { path, leaf } = target;
  const out: Record<string, unknown> = { operator, path };
  const name = path.at(-1)!;
  const type = name === "_id" || name === "id" ? "uuid" : leaf?.properties.find((p) => p.name === normalizePropertyName(name))?.dataType[0];
  const isDate = type === "date" || type === "date[]";
  if (f.valueText !== undefined) out[isDate ? "valueDate" : "valueText"] = f.valueText;
  else if (f.valueInt !== undefined) out.valueInt = f.valueInt;
  else if (f.valueNumber !== undefined) out.valueNumber = f.valueNumber;
  else if (f.valueBoolean !== undefined) out.valueBoolean = f.valueBoolean;
  else if (f.valueTextArray) out[isDate ? "valueDateArray" : "valueTextArray"] = f.valueTextArray.values ?? [];
  else if (f.valueIntArray) out.valueIntArray = f.valueIntArray.values ?? [];
  else if (f.valueNumberArray) out.valueNumberArray = f.valueNumberArray.values ?? [];
  else if (f.valueBooleanArray) out.valueBooleanArray = f.valueBooleanArray.values ?? [];
  else if (f.valueGeo) out.valueGeoRange = { geoCoordinates: { latitude: f.valueGeo.latitude ?? 0, longitude: f.valueGeo.longitude ?? 0 }, distance: { max: f.valueGeo.distance ?? 0 } };
  return out;
}
