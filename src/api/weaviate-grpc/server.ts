import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Caller, CollectionService, SearchQuery, SearchResult } from "../../collections/collection-service.js";
import { CollectionError } from "../../collections/errors.js";
import { isReferenceType, normalizePropertyName, type ClassDef, type PropertyDef } from "../../collections/schema.js";
import { OpenBatchError } from "../../core/errors.js";
import type { ApiKeyAuth } from "../auth.js";
import { aggregateRpc, type AggregateRequestMsg } from "./aggregate.js";
import { MalformedRequest, malformedStatus, withMalformedRequests } from "./malformed.js";
import { selectObjectProperties, type ObjectPropertiesRequestMsg } from "./nested-properties.js";
import { checkGroupBy, GROUP_BY_CANDIDATES, groupHits } from "../../collections/group-by.js";
import { applySearchOptions, UnimplementedSearchOption, type SearchOptionsMsg } from "./search-options.js";

/** Settings of the Weaviate gRPC endpoint. */
export interface WeaviateGrpcOptions {
  collections: CollectionService;
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** Checks `authorization: Bearer <key>` metadata; absent or with no keys: auth off. */
  auth?: ApiKeyAuth;
}

/** A running gRPC endpoint. */
export interface WeaviateGrpcServer {
  /** The port it listens on. */
  port: number;
  close(): Promise<void>;
}

/** Largest request accepted (insertMany sends whole batches in one message). */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/** Results of a search that sets no limit (Weaviate's QUERY_DEFAULTS_LIMIT). */
const DEFAULT_LIMIT = 10;

// ---------------------------------------------------------------- decoded messages (the subset we read and write)

interface StructValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: Struct;
  listValue?: { values?: StructValue[] };
}
interface Struct {
  fields?: Record<string, StructValue>;
}
export interface VectorsMsg {
  name?: string;
  vectorBytes?: Buffer;
  type?: number;
}
interface PropertiesMsg {
  nonRefProperties?: Struct;
  singleTargetRefProps?: { uuids?: string[]; propName?: string }[];
  multiTargetRefProps?: { uuids?: string[]; propName?: string; targetCollection?: string }[];
  numberArrayProperties?: { values?: number[]; propName?: string; valuesBytes?: Buffer }[];
  intArrayProperties?: { values?: number[]; propName?: string }[];
  textArrayProperties?: { values?: string[]; propName?: string }[];
  booleanArrayProperties?: { values?: boolean[]; propName?: string }[];
  objectProperties?: { value?: PropertiesMsg; propName?: string }[];
  objectArrayProperties?: { values?: PropertiesMsg[]; propName?: string }[];
  emptyListProps?: string[];
}
interface BatchObjectMsg {
  uuid?: string;
  vector?: number[];
  properties?: PropertiesMsg;
  collection?: string;
  tenant?: string;
  vectorBytes?: Buffer;
  vectors?: VectorsMsg[];
}
export interface FiltersMsg {
  operator?: number;
  on?: string[];
  filters?: FiltersMsg[];
  valueText?: string;
  valueInt?: number;
  valueBoolean?: boolean;
  valueNumber?: number;
  valueTextArray?: { values?: string[] };
  valueIntArray?: { values?: number[] };
  valueBooleanArray?: { values?: boolean[] };
  valueNumberArray?: { values?: number[] };
  valueGeo?: { latitude?: number; longitude?: number; distance?: number };
  target?: { property?: string };
}
interface TargetsMsg {
  targetVectors?: string[];
  combination?: number;
  weightsForTargets?: Buffer[];
}
/** Fields of a near* message naming the vectors searched. */
export interface TargetedMsg {
  targetVectors?: string[];
  targets?: TargetsMsg;
  selection?: Buffer;
}
interface SearchRequestMsg extends SearchOptionsMsg {
  collection?: string;
  tenant?: string;
  properties?: { nonRefProperties?: string[]; returnAllNonrefProperties?: boolean; refProperties?: Buffer[]; objectProperties?: ObjectPropertiesRequestMsg[] };
  metadata?: { uuid?: boolean; vector?: boolean; creationTimeUnix?: boolean; lastUpdateTimeUnix?: boolean; distance?: boolean; certainty?: boolean; score?: boolean; explainScore?: boolean; isConsistent?: boolean; vectors?: string[] };
  limit?: number;
  offset?: number;
  after?: string;
  filters?: FiltersMsg;
  nearVector?: TargetedMsg & {
    vector?: number[];
    certainty?: number;
    distance?: number;
    vectorBytes?: Buffer;
    vectors?: VectorsMsg[];
    vectorPerTarget?: Record<string, Buffer>;
    vectorForTargets?: { name?: string; vectorBytes?: Buffer; vectors?: VectorsMsg[] }[];
  };
  nearObject?: TargetedMsg & { id?: string; certainty?: number; distance?: number };
  nearText?: TargetedMsg & { query?: string[]; certainty?: number; distance?: number; moveTo?: Buffer; moveAway?: Buffer };
  // Sent only to be refused (UNIMPLEMENTED).
  groupBy?: { path?: string[]; numberOfGroups?: number; objectsPerGroup?: number };
  nearImage?: Buffer;
  nearAudio?: Buffer;
  nearVideo?: Buffer;
  nearDepth?: Buffer;
  nearThermal?: Buffer;
  nearImu?: Buffer;
  generative?: Buffer;
  rerank?: Buffer;
  boost?: Buffer;
}
interface BatchDeleteRequestMsg {
  collection?: string;
  filters?: FiltersMsg;
  verbose?: boolean;
  dryRun?: boolean;
  tenant?: string;
}
/** A result property value: one of the `Value` kinds. */
type ValueMsg = Record<string, unknown>;

// ---------------------------------------------------------------- protos

/** The folder of our .proto files: next to this module (src, tsx) or, from dist, in the shipped src. */
function protoDir(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const dir of [here, join(here, "../../../src/api/weaviate-grpc")]) if (existsSync(join(dir, "weaviate.proto"))) return dir;
  throw new Error(`weaviate.proto not found next to ${here}`);
}

interface Services {
  weaviate: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

let services: Services | null = null;
function loadServices(): Services {
  if (services) return services;
  const dir = protoDir();
  const def = protoLoader.loadSync([join(dir, "weaviate.proto"), join(dir, "health.proto")], {
    keepCase: false,
    longs: Number,
    enums: Number,
    defaults: false,
    arrays: true,
    objects: false,
    oneofs: false,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    weaviate: { v1: { Weaviate: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  services = { weaviate: pkg.weaviate.v1.Weaviate.service, health: pkg.grpc.health.v1.Health.service };
  return services;
}

// ---------------------------------------------------------------- errors

/** A gRPC status for an error of ours. */
function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const message = err instanceof Error ? err.message : String(err);
  let code = grpc.status.INTERNAL;
  if (err instanceof GrpcUnimplementedError || err instanceof UnimplementedSearchOption) return { code: grpc.status.UNIMPLEMENTED, details: message };
  const status = err instanceof CollectionError || err instanceof OpenBatchError ? err.status : err instanceof GrpcInputError ? 400 : 500;
  if (status === 400 || status === 422) code = grpc.status.INVALID_ARGUMENT;
  else if (status === 401) code = grpc.status.UNAUTHENTICATED;
  else if (status === 403) code = grpc.status.PERMISSION_DENIED;
  else if (status === 404) code = grpc.status.NOT_FOUND;
  else if (status === 429) code = grpc.status.RESOURCE_EXHAUSTED;
  return { code, details: message };
}

/** A request we cannot serve (an unsupported option). */
export class GrpcInputError extends Error {}
/** An option of the Weaviate API OpenBatch does not implement: UNIMPLEMENTED, naming it. */
export class GrpcUnimplementedError extends Error {}

// ---------------------------------------------------------------- vectors and values

/** float32 little-endian bytes → numbers. */
export function floatsFromBytes(bytes: Buffer | undefined): number[] | null {
  if (!bytes || bytes.length === 0) return null;
  if (bytes.length % 4 !== 0) throw new GrpcInputError(`vector bytes: length ${bytes.length} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function floatsToBytes(v: ArrayLike<number>): Buffer {
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
function toRestObject(o: BatchObjectMsg): Record<string, unknown> {
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

/** A stored property value as a `Value`, typed by its data type (inferred from the value when the schema lacks it). */
function toValue(v: unknown, dataType: string | undefined, nested?: PropertyDef[]): ValueMsg | null {
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
      if (typeof v === "object" && !Array.isArray(v)) return { objectValue: toProperties(v as Record<string, unknown>, props) };
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
        return { listValue: { objectValues: { values: v.map((x) => toProperties(x as Record<string, unknown>, props)) } } };
    }
  }
  if (typeof v === "object" && !Array.isArray(v)) return { objectValue: toProperties(v as Record<string, unknown>, null) };
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

/** Properties as a `Properties` message: non-reference properties only, those named in `only` (null: all). */
function toProperties(props: Record<string, unknown>, def: Pick<ClassDef, "properties"> | null, only: Set<string> | null = null): { fields: Record<string, ValueMsg> } {
  const fields: Record<string, ValueMsg> = {};
  for (const [name, value] of Object.entries(props)) {
    if (only && !only.has(name)) continue;
    const prop = def?.properties.find((p) => p.name === name);
    if (prop && isReferenceType(prop.dataType)) continue;
    const v = toValue(value, prop?.dataType[0], prop?.nestedProperties);
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

/** gRPC `Filters` → the REST `where` filter (checked by the collections layer). */
export function toWhere(f: FiltersMsg, def: ClassDef | null): Record<string, unknown> {
  const operator = OPERATORS[f.operator ?? 0];
  if (!operator) throw new GrpcInputError(`filters: unsupported operator ${f.operator ?? 0}`);
  if (operator === "And" || operator === "Or" || operator === "Not") return { operator, operands: (f.filters ?? []).map((x) => toWhere(x, def)) };
  const path = f.target?.property ? [f.target.property] : f.on && f.on.length ? f.on : null;
  if (!path) throw new GrpcInputError("filters: only filters on a property of the collection are supported (no reference targets)");
  const out: Record<string, unknown> = { operator, path };
  const name = path[0]!;
  const type = name === "_id" || name === "id" ? "uuid" : def?.properties.find((p) => p.name === normalizePropertyName(name))?.dataType[0];
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

// ---------------------------------------------------------------- handlers

const seconds = (start: number) => (performance.now() - start) / 1000;

/** BatchObjects: every object through `batchObjects`; the reply lists the failures only. */
async function batchObjects(collections: CollectionService, caller: Caller, req: { objects?: BatchObjectMsg[] }): Promise<unknown> {
  const start = performance.now();
  const objects = req.objects ?? [];
  if (objects.length === 0) return { took: 0, errors: [] };
  const errors: { index: number; error: string }[] = [];
  const rest: Record<string, unknown>[] = [];
  const at: number[] = [];
  objects.forEach((o, index) => {
    try {
      rest.push(toRestObject(o));
      at.push(index);
    } catch (err) {
      errors.push({ index, error: (err as Error).message });
    }
  });
  if (rest.length) {
    const results = await collections.batchObjects(caller, rest);
    results.forEach((r, k) => {
      if (r.error !== null) errors.push({ index: at[k]!, error: r.error });
    });
  }
  errors.sort((a, b) => a.index - b.index);
  return { took: seconds(start), errors };
}

/** Search: nearVector / nearText / nearObject / listing, filters, limit, offset, cursor; properties and metadata as asked. */
async function search(collections: CollectionService, caller: Caller, req: SearchRequestMsg): Promise<unknown> {
  const start = performance.now();
  refuseUnimplemented(req);
  const def = collections.getClass(caller, req.collection ?? "");
  const meta = req.metadata ?? {};
  const wantVector = meta.vector === true || (meta.vectors ?? []).length > 0;
  // The tenant of a multi-tenant class (refused on another, required on one: collections/tenants.ts).
  const q: SearchQuery = { class: req.collection ?? "", ...(req.tenant ? { tenant: req.tenant } : {}), limit: req.limit || DEFAULT_LIMIT, offset: req.offset || undefined, after: req.after || undefined, includeVector: wantVector };
  if (req.filters) q.where = toWhere(req.filters, def);
  applySearchOptions(req, q);
  const near = req.nearVector ?? req.nearText ?? req.nearObject;
  const target = near ? targetOf(near) : undefined;
  if (target !== undefined) q.targetVector = target;
  if (req.nearVector) {
    const nv = req.nearVector;
    let v = floatsFromBytes(nv.vectorBytes) ?? (nv.vector && nv.vector.length ? nv.vector : null) ?? singleVector(nv.vectors).vector;
    // A vector per target (one target served): {name: vector}.
    const perTarget = [
      ...Object.entries(nv.vectorPerTarget ?? {}).map(([name, bytes]) => ({ name, v: floatsFromBytes(bytes) })),
      ...(nv.vectorForTargets ?? []).map((t) => ({ name: t.name ?? "", v: floatsFromBytes(t.vectorBytes) ?? singleVector(t.vectors).vector })),
    ];
    if (perTarget.length > 1) throw new GrpcUnimplementedError("nearVector: a search over several target vectors (multi-target search) is not supported by OpenBatch: search one target vector at a time");
    if (perTarget.length === 1) {
      if (target !== undefined && target !== perTarget[0]!.name) throw new GrpcInputError(`nearVector: the vector is given for target ${perTarget[0]!.name}, but the search targets ${target}`);
      q.targetVector = perTarget[0]!.name;
      v = perTarget[0]!.v;
    }
    if (!v) throw new GrpcInputError("nearVector: no vector given");
    q.vector = v;
  } else if (req.nearText) {
    const concepts = req.nearText.query ?? [];
    if (concepts.length === 0) throw new GrpcInputError("nearText: no concepts given");
    q.concepts = concepts;
  } else if (req.nearObject) {
    if (!req.nearObject.id) throw new GrpcInputError("nearObject: no id given");
    q.nearObject = req.nearObject.id;
  }
  if (near?.distance !== undefined) q.distance = near.distance;
  if (near?.certainty !== undefined) q.certainty = near.certainty;

  // groupBy (group-by.ts): a wider search, then its hits in groups.
  const g = req.groupBy;
  const grouping = g && def ? { property: checkGroupBy(def, g.path?.[0] ?? "", g.numberOfGroups ?? 0, g.objectsPerGroup ?? 0), groups: g.numberOfGroups!, per: g.objectsPerGroup! } : null;
  if (grouping) {
    if (!(q.vector || q.concepts || q.nearObject || q.hybrid || q.bm25)) throw new GrpcInputError("groupBy needs a search (nearVector, nearText, nearObject, hybrid, bm25)");
    if ((g!.path ?? []).length !== 1) throw new GrpcInputError("groupBy: path must name one property");
    q.limit = Math.max(q.limit, GROUP_BY_CANDIDATES);
    q.offset = undefined;
  }
  const hits = await collections.search(caller, q);
  const named = def?.vectorConfig !== undefined;
  const wantNames = new Set(meta.vectors ?? []);
  /** The vectors of a hit as the client reads them: `vectorBytes` for a legacy class, named `vectors` otherwise. */
  const vectorFields = (h: SearchResult) => {
    if (!wantVector) return {};
    if (!named) return h.vector ? { vectorBytes: floatsToBytes(h.vector) } : {};
    const list = Object.entries(h.vectors ?? {})
      .filter(([name]) => meta.vector === true || wantNames.has(name))
      .map(([name, v]) => ({ name, vectorBytes: floatsToBytes(v), type: 1 }));
    return list.length ? { vectors: list } : {};
  };
  const props = req.properties;
  const only = !props || props.returnAllNonrefProperties ? null : new Set((props.nonRefProperties ?? []).map(normalizePropertyName));
  // Nested fields of object properties asked for (nested-properties.ts), returned besides `only`.
  const nestedReq = props?.objectProperties ?? [];
  const nonRefProps = (h: SearchResult) => {
    const sel = selectObjectProperties(h.properties, nestedReq);
    return toProperties(sel.props, def, only && sel.names.length ? new Set([...only, ...sel.names.map(normalizePropertyName)]) : only);
  };
  const render = (h: SearchResult) => ({
    properties: { nonRefProps: nonRefProps(h), targetCollection: h.class, refPropsRequested: false },
    metadata: {
      id: h.id,
      ...(meta.creationTimeUnix ? { creationTimeUnix: h.creationTimeUnix, creationTimeUnixPresent: true } : {}),
      ...(meta.lastUpdateTimeUnix ? { lastUpdateTimeUnix: h.lastUpdateTimeUnix, lastUpdateTimeUnixPresent: true } : {}),
      ...(meta.distance && h.distance !== null ? { distance: h.distance, distancePresent: true } : {}),
      ...(meta.certainty && h.certainty !== null ? { certainty: h.certainty, certaintyPresent: true } : {}),
      ...(meta.score && h.score !== undefined ? { score: h.score, scorePresent: true } : {}),
      ...(meta.explainScore && h.explainScore !== undefined ? { explainScore: h.explainScore, explainScorePresent: true } : {}),
      ...(meta.isConsistent ? { isConsistent: true, isConsistentPresent: true } : {}),
      ...vectorFields(h),
    },
  });
  if (grouping) {
    const groupByResults = groupHits(hits, grouping.property, grouping.groups, grouping.per).map((x) => ({
      name: x.name,
      minDistance: x.minDistance,
      maxDistance: x.maxDistance,
      numberOfObjects: x.numberOfObjects,
      objects: x.hits.map(render),
    }));
    return { took: seconds(start), results: [], groupByResults };
  }
  const results = hits.map(render);
  return { took: seconds(start), results };
}

/** The one target vector a near* search names (absent: none named). @throws GrpcUnimplementedError for several. */
export function targetOf(near: TargetedMsg): string | undefined {
  const names = [...new Set([...(near.targetVectors ?? []), ...(near.targets?.targetVectors ?? [])])];
  if (near.selection && near.selection.length) throw new GrpcUnimplementedError("search: diversity selection (MMR) is not supported by OpenBatch");
  if (names.length > 1) throw new GrpcUnimplementedError(`search: a search over several target vectors (${names.join(", ")}) is not supported by OpenBatch: search one target vector at a time`);
  if (near.targets?.weightsForTargets?.length) throw new GrpcUnimplementedError("search: weights for target vectors are not supported by OpenBatch");
  return names[0];
}

/** Search options the client can send that OpenBatch does not implement: UNIMPLEMENTED naming the first one set. */
function refuseUnimplemented(req: SearchRequestMsg): void {
  const sent = (b: Buffer | Buffer[] | undefined) => (Array.isArray(b) ? b.length > 0 : b !== undefined && b !== null);
  const options: [keyof SearchRequestMsg, string][] = [
    ["nearImage", "nearImage"],
    ["nearAudio", "nearAudio"],
    ["nearVideo", "nearVideo"],
    ["nearDepth", "nearDepth"],
    ["nearThermal", "nearThermal"],
    ["nearImu", "nearIMU"],
    ["generative", "generative search (generate)"],
    ["rerank", "rerank"],
    ["boost", "boost"],
  ];
  for (const [field, name] of options) if (sent(req[field] as Buffer | Buffer[] | undefined)) throw new GrpcUnimplementedError(`search: ${name} is not supported by OpenBatch`);
  if (sent(req.properties?.refProperties)) throw new GrpcUnimplementedError("search: returnReferences is not supported by OpenBatch over gRPC");
  if (sent(req.nearText?.moveTo) || sent(req.nearText?.moveAway)) throw new GrpcUnimplementedError("nearText: moveTo / moveAway are not supported by OpenBatch");
}

const uuidBytes = (id: string) => Buffer.from(id.replace(/-/g, ""), "hex");

/** TenantsGet: the tenants of a multi-tenant collection (all, or those named), status ACTIVE (7) or INACTIVE (8). */
async function tenantsGet(collections: CollectionService, caller: Caller, req: { collection?: string; names?: { values?: string[] } }): Promise<unknown> {
  const start = performance.now();
  const all = collections.listTenants(caller, req.collection ?? "");
  const wanted = req.names ? new Set(req.names.values ?? []) : null;
  const tenants = all.filter((t) => !wanted || wanted.has(t.name)).map((t) => ({ name: t.name, activityStatus: t.activityStatus === "ACTIVE" ? 7 : 8 }));
  return { took: seconds(start), tenants };
}

/** BatchDelete: objects of a collection matching a filter (or a dry run). */
async function batchDelete(collections: CollectionService, caller: Caller, req: BatchDeleteRequestMsg): Promise<unknown> {
  const start = performance.now();
  if (!req.filters) throw new GrpcInputError("batch delete: filters must be set");
  const def = collections.getClass(caller, req.collection ?? "");
  const r = await collections.deleteObjects(caller, { class: req.collection ?? "", tenant: req.tenant || undefined, where: toWhere(req.filters, def), dryRun: req.dryRun === true, verbose: req.verbose === true });
  return {
    took: seconds(start),
    failed: r.failed,
    matches: r.matches,
    successful: r.successful,
    objects: r.objects.map((o) => ({ uuid: uuidBytes(o.id), successful: o.status !== "FAILED", ...(o.errors ? { error: o.errors.error.map((e) => e.message).join("; ") } : {}) })),
  };
}

/**
 * Starts Weaviate's gRPC API for the official clients (weaviate-client v3, Python v4): `grpc.health.v1.Health/Check`
 * (SERVING, no key needed) and `weaviate.v1.Weaviate/BatchObjects`, `Search`, `BatchDelete` over the collections,
 * with the key in `authorization: Bearer <key>` metadata when auth is on. Other methods answer UNIMPLEMENTED.
 * Each call runs as the key's owner (collections/access.ts): a collection it may not read or write answers
 * PERMISSION_DENIED (objects of BatchObjects fail one by one).
 */
export async function startWeaviateGrpc(options: WeaviateGrpcOptions): Promise<WeaviateGrpcServer> {
  const { collections, auth } = options;
  const svc = loadServices();
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES });

  const unary =
    <Req>(fn: (caller: Caller, req: Req) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> =>
    (call, callback) => {
      let caller: Caller = null;
      try {
        if (auth?.enabled) {
          const value = call.metadata.get("authorization")[0];
          caller = auth.authenticate({ authorization: typeof value === "string" ? value : value?.toString() });
        }
      } catch (err) {
        callback(toStatus(err));
        return;
      }
      // Bytes that did not decode: the caller's fault, INVALID_ARGUMENT (answered after auth, so only to a key holder).
      if (call.request instanceof MalformedRequest) {
        callback(malformedStatus(call.request));
        return;
      }
      // On a shared store, first catch up with what other API servers wrote (a no-op on the embedded one).
      collections
        .sync()
        .then(() => fn(caller, call.request))
        .then(
        (reply) => callback(null, reply),
        (err: unknown) => callback(toStatus(err)),
      );
    };

  server.addService(svc.health, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: 1 }),
  });
  server.addService(withMalformedRequests(svc.weaviate), {
    BatchObjects: unary((caller, req: { objects?: BatchObjectMsg[] }) => batchObjects(collections, caller, req)),
    Search: unary((caller, req: SearchRequestMsg) => search(collections, caller, req)),
    BatchDelete: unary((caller, req: BatchDeleteRequestMsg) => batchDelete(collections, caller, req)),
    TenantsGet: unary((caller, req: { collection?: string; names?: { values?: string[] } }) => tenantsGet(collections, caller, req)),
    Aggregate: unary((caller, req: AggregateRequestMsg) => aggregateRpc(collections, caller, req)),
  });

  const host = options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
