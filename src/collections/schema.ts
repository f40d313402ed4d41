import { inferComplex, isComplexType, isObjectType, NESTED_TYPES, type InferredProperty } from "./complex-types.js";
import { unprocessable } from "./errors.js";
import {
  DEFAULT_VECTOR,
  MODULES,
  namedSlot,
  parseIndexConfig,
  parseModuleConfig,
  parseVectorConfig,
  renderIndexConfig,
  type IndexType,
  type NamedVectorDef,
  type VectorIndexConfig,
  type VectorSlot,
} from "./vector-config.js";

export { DEFAULT_MODEL, DISTANCES, VECTORIZER, type Distance, type VectorIndexConfig } from "./vector-config.js";

/** Scalar data types (and their arrays). A data type that is not one of these names a class: a cross-reference. */
export const PRIMITIVE_TYPES = ["text", "text[]", "int", "int[]", "number", "number[]", "boolean", "boolean[]", "date", "date[]", "uuid", "uuid[]"] as const;
export type PrimitiveType = (typeof PRIMITIVE_TYPES)[number];
const PRIMITIVES = new Set<string>(PRIMITIVE_TYPES);
/** Deprecated spellings Weaviate still accepts. */
const ALIASES: Record<string, PrimitiveType> = { string: "text", "string[]": "text[]" };

export const TOKENIZATIONS = ["word", "lowercase", "whitespace", "field", "trigram"] as const;
export type Tokenization = (typeof TOKENIZATIONS)[number];

/** A property of a class, as `GET /v1/schema` renders it. */
export interface PropertyDef {
  name: string;
  dataType: string[];
  description?: string;
  /** Text properties only. */
  tokenization?: Tokenization;
  indexFilterable: boolean;
  indexSearchable: boolean;
  indexRangeFilters: boolean;
  moduleConfig?: Record<string, unknown>;
  /** `object` / `object[]` only: their fields, nested to any depth (complex-types.ts). */
  nestedProperties?: PropertyDef[];
}

/**
 * A class (collection) as stored. `renderClass` gives Weaviate's JSON of it. A class with named vectors has
 * `vectorConfig`; its top-level `vectorizer` / `vectorIndexType` / `vectorIndexConfig` then mirror its first named
 * vector (read by the dashboard) and are left out of the JSON, as Weaviate leaves them out.
 */
export interface ClassDef {
  class: string;
  description?: string;
  vectorizer: string;
  moduleConfig: Record<string, Record<string, unknown>>;
  vectorIndexType: IndexType;
  vectorIndexConfig: VectorIndexConfig;
  vectorConfig?: Record<string, NamedVectorDef>;
  properties: PropertyDef[];
  invertedIndexConfig: Record<string, unknown>;
  multiTenancyConfig: { enabled: boolean; autoTenantCreation: boolean; autoTenantActivation: boolean };
  replicationConfig: { factor: number; asyncEnabled: boolean; deletionStrategy: string };
  shardingConfig: Record<string, unknown>;
  /** Shards set READONLY (`PUT /v1/schema/{class}/shards/{shard}`, shards.ts), by shard name; not in the class JSON. */
  shardStatus?: Record<string, "READONLY">;
}

/** The vectors of a class: `default` for a legacy class, one per named vector otherwise. */
export function vectorSlots(def: ClassDef): VectorSlot[] {
  if (def.vectorConfig) return Object.entries(def.vectorConfig).map(([name, v]) => namedSlot(name, v));
  return [
    {
      name: DEFAULT_VECTOR,
      module: def.vectorizer,
      config: def.moduleConfig[def.vectorizer] ?? {},
      indexType: def.vectorIndexType,
      indexConfig: def.vectorIndexConfig,
      sourceProperties: null,
    },
  ];
}

/**
 * The slot a search or write names (`targetVector`); null/undefined picks the only one, or `default`.
 * @throws CollectionError 422 in Weaviate's words when the name is unknown or needed.
 */
export function slotOf(def: ClassDef, name: string | null | undefined): VectorSlot {
  const slots = vectorSlots(def);
  if (name === null || name === undefined || name === "") {
    const only = slots.length === 1 ? slots[0]! : slots.find((s) => s.name === DEFAULT_VECTOR);
    if (!only) throw unprocessable(`multiple vectors exist for class ${def.class}: name the target vector (one of ${slots.map((s) => s.name).join(", ")})`);
    return only;
  }
  const slot = slots.find((s) => s.name === name);
  if (!slot) throw unprocessable(`target vector ${JSON.stringify(name)} not found in class ${def.class}: its vectors are ${slots.map((s) => s.name).join(", ")}`);
  return slot;
}

/** Weaviate's JSON of a class (`GET /v1/schema/{class}`): every config block it returns, named vectors as `vectorConfig`. */
export function renderClass(def: ClassDef): Record<string, unknown> {
  const { vectorizer, vectorIndexType, vectorIndexConfig, vectorConfig, shardStatus: _s, ...rest } = def;
  const out: Record<string, unknown> = { class: def.class };
  if (def.description !== undefined) out.description = def.description;
  if (vectorConfig) {
    out.vectorConfig = Object.fromEntries(
      Object.entries(vectorConfig).map(([name, v]) => [name, { vectorizer: v.vectorizer, vectorIndexType: v.vectorIndexType, vectorIndexConfig: renderIndexConfig(v.vectorIndexType, v.vectorIndexConfig) }]),
    );
  } else {
    out.vectorizer = vectorizer;
    out.vectorIndexType = vectorIndexType;
    out.vectorIndexConfig = renderIndexConfig(vectorIndexType, vectorIndexConfig);
  }
  return { ...out, ...rest, class: def.class };
}

const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,230}$/;
const CLASS_NAME = /^[A-Z][_0-9A-Za-z]{0,254}$/;
const RESERVED_PROPERTIES = new Set(["_additional", "_id", "id"]);

/** Weaviate stores class names with an upper-case first letter (`question` is `Question`). */
export const normalizeClassName = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);
/** …and property names with a lower-case first letter. */
export const normalizePropertyName = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);

/** Whether a data type names a class (a cross-reference property). */
export const isReferenceType = (dataType: readonly string[]) => dataType.length > 0 && !PRIMITIVES.has(dataType[0]!) && !isComplexType(dataType[0]);

/** A property by name (first letter case-insensitive, as Weaviate). */
export const propertyOf = (def: ClassDef, name: string) => def.properties.find((p) => p.name === normalizePropertyName(name));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Top-level keys of a class body we read. */
const CLASS_KEYS = new Set([
  "class", "description", "vectorizer", "moduleConfig", "vectorIndexType", "vectorIndexConfig", "vectorConfig", "properties",
  "invertedIndexConfig", "multiTenancyConfig", "replicationConfig", "shardingConfig",
]);
/**
 * Keys the official TypeScript client sends beside the class (its own config object spread into the body) whose
 * content it also sends in the Weaviate fields: `vectorizers` (as `vectorConfig`), `references` (as `properties`),
 * `generative` / `reranker` (as `moduleConfig`, checked there). Weaviate ignores them; so do we.
 */
const CLIENT_ECHO_KEYS = new Set(["vectorizers", "references", "generative", "reranker"]);

const DEFAULT_INVERTED = { bm25: { b: 0.75, k1: 1.2 }, cleanupIntervalSeconds: 60, stopwords: { preset: "en", additions: null, removals: null }, indexTimestamps: false, indexPropertyLength: false, indexNullState: false };
const DEFAULT_SHARDING = { virtualPerPhysical: 128, desiredCount: 1, actualCount: 1, desiredVirtualCount: 128, actualVirtualCount: 128, key: "_id", strategy: "hash", function: "murmur3" };

/**
 * Validates a class body of `POST /v1/schema` and fills in Weaviate's defaults: named vectors (`vectorConfig`) or
 * the legacy single vector (`vectorizer`, `moduleConfig`, `vectorIndexType`, `vectorIndexConfig`), every config block
 * Weaviate returns, and the properties.
 * @param classExists whether a class of that (normalized) name exists, for cross-reference targets.
 * @throws CollectionError 422 with Weaviate-style messages, naming what OpenBatch does not serve.
 */
export function parseClass(body: unknown, classExists: (name: string) => boolean): ClassDef {
  if (!isObject(body)) throw unprocessable("class definition must be a JSON object");
  if (typeof body.class !== "string" || !body.class) throw unprocessable("'' is not a valid class name");
  const name = normalizeClassName(body.class);
  if (!CLASS_NAME.test(name)) throw unprocessable(`'${body.class}' is not a valid class name`);
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || v === null || CLASS_KEYS.has(k) || CLIENT_ECHO_KEYS.has(k)) continue;
    throw unprocessable(`class "${name}": field '${k}' is not supported by OpenBatch`);
  }

  if (body.moduleConfig !== undefined && body.moduleConfig !== null && !isObject(body.moduleConfig)) throw unprocessable("moduleConfig must be an object");
  const moduleConfig: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries((body.moduleConfig as Record<string, unknown> | undefined) ?? {})) {
    if (!isObject(v)) throw unprocessable(`moduleConfig.${k} must be an object`);
    if (/^(generative|reranker|qna|ner|sum|spellcheck|multi2vec|img2vec|ref2vec|text2vec)-/.test(k) && !MODULES[k]) {
      throw unprocessable(`moduleConfig: module ${JSON.stringify(k)} is not served by OpenBatch (it serves ${Object.keys(MODULES).join(", ")})`);
    }
    moduleConfig[k] = { ...v };
  }

  let vectorizer: string;
  let vectorIndexType: IndexType;
  let vectorIndexConfig: VectorIndexConfig;
  let vectorConfig: Record<string, NamedVectorDef> | undefined;
  const legacyGiven = (body.vectorizer !== undefined && body.vectorizer !== null && body.vectorizer !== "" && body.vectorizer !== "none") || (body.vectorIndexConfig !== undefined && body.vectorIndexConfig !== null);
  if (body.vectorConfig !== undefined && body.vectorConfig !== null) {
    if (legacyGiven) throw unprocessable("a class with named vectors (vectorConfig) cannot also set vectorizer or vectorIndexConfig: give each named vector its own");
    vectorConfig = parseVectorConfig(body.vectorConfig);
    const first = Object.values(vectorConfig)[0]!;
    vectorizer = Object.keys(first.vectorizer)[0]!;
    vectorIndexType = first.vectorIndexType;
    vectorIndexConfig = first.vectorIndexConfig;
  } else {
    vectorizer = body.vectorizer === undefined || body.vectorizer === null || body.vectorizer === "" ? "none" : String(body.vectorizer);
    if (typeof body.vectorizer !== "string" && body.vectorizer !== undefined && body.vectorizer !== null) throw unprocessable("vectorizer must be a module name");
    if (vectorizer !== "none") moduleConfig[vectorizer] = parseModuleConfig(vectorizer, moduleConfig[vectorizer], `moduleConfig.${vectorizer}`);
    else parseModuleConfig("none", undefined, "vectorizer");
    ({ type: vectorIndexType, config: vectorIndexConfig } = parseIndexConfig(body.vectorIndexType, body.vectorIndexConfig));
  }

  if (body.properties !== undefined && body.properties !== null && !Array.isArray(body.properties)) throw unprocessable("properties must be an array");
  const properties: PropertyDef[] = [];
  const selfExists = (n: string) => n === name || classExists(n);
  for (const raw of (body.properties as unknown[] | undefined) ?? []) {
    const prop = parseProperty(raw, name, selfExists);
    if (properties.some((p) => p.name === prop.name)) throw unprocessable(`class "${name}": conflict for property "${prop.name}": already in use or provided multiple times`);
    properties.push(prop);
  }
  for (const slot of vectorConfig ? Object.entries(vectorConfig).map(([n, v]) => namedSlot(n, v)) : []) {
    for (const p of slot.sourceProperties ?? []) {
      if (!properties.some((q) => q.name === normalizePropertyName(p))) throw unprocessable(`vectorConfig.${slot.name}: source property '${p}' is not a property of class "${name}"`);
    }
  }

  const def: ClassDef = {
    class: name,
    vectorizer,
    moduleConfig,
    vectorIndexType,
    vectorIndexConfig,
    ...(vectorConfig ? { vectorConfig } : {}),
    properties,
    invertedIndexConfig: parseInverted(body.invertedIndexConfig),
    multiTenancyConfig: parseMultiTenancy(body.multiTenancyConfig),
    replicationConfig: parseReplication(body.replicationConfig),
    shardingConfig: parseSharding(body.shardingConfig),
  };
  if (typeof body.description === "string") def.description = body.description;
  return def;
}

/** `invertedIndexConfig` with Weaviate's defaults; bm25 k1/b and stopwords as given. */
function parseInverted(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return structuredClone(DEFAULT_INVERTED);
  if (!isObject(raw)) throw unprocessable("invertedIndexConfig must be an object");
  const out: Record<string, unknown> = structuredClone(DEFAULT_INVERTED);
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    if (k === "bm25") {
      if (!isObject(v)) throw unprocessable("invertedIndexConfig.bm25 must be an object");
      for (const [bk, bv] of Object.entries(v)) {
        if (bk !== "b" && bk !== "k1") throw unprocessable(`invertedIndexConfig.bm25: unknown field '${bk}'`);
        if (typeof bv !== "number" || bv < 0) throw unprocessable(`invertedIndexConfig.bm25.${bk} must be a number >= 0`);
      }
      out.bm25 = { ...(out.bm25 as object), ...v };
    } else if (k === "stopwords") {
      if (!isObject(v)) throw unprocessable("invertedIndexConfig.stopwords must be an object");
      for (const sk of Object.keys(v)) if (!["preset", "additions", "removals"].includes(sk)) throw unprocessable(`invertedIndexConfig.stopwords: unknown field '${sk}'`);
      if (v.preset !== undefined && v.preset !== null && v.preset !== "en" && v.preset !== "none") throw unprocessable(`invertedIndexConfig.stopwords.preset: unknown preset ${JSON.stringify(v.preset)}, use "en" or "none"`);
      for (const list of ["additions", "removals"]) {
        const l = v[list];
        if (l !== undefined && l !== null && !(Array.isArray(l) && l.every((x) => typeof x === "string"))) throw unprocessable(`invertedIndexConfig.stopwords.${list} must be an array of words`);
      }
      out.stopwords = { preset: v.preset ?? "en", additions: v.additions ?? null, removals: v.removals ?? null };
    } else if (k === "cleanupIntervalSeconds") {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw unprocessable("invertedIndexConfig.cleanupIntervalSeconds must be an integer >= 0");
      out[k] = v;
    } else if (k === "indexTimestamps" || k === "indexPropertyLength" || k === "indexNullState") {
      if (typeof v !== "boolean") throw unprocessable(`invertedIndexConfig.${k} must be a boolean`);
      out[k] = v;
    } else throw unprocessable(`invertedIndexConfig: field '${k}' is not supported by OpenBatch`);
  }
  return out;
}

function parseMultiTenancy(raw: unknown): ClassDef["multiTenancyConfig"] {
  const out = { enabled: false, autoTenantCreation: false, autoTenantActivation: false };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) throw unprocessable("multiTenancyConfig must be an object");
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    if (!(k in out)) throw unprocessable(`multiTenancyConfig: unknown field '${k}'`);
    if (typeof v !== "boolean") throw unprocessable(`multiTenancyConfig.${k} must be a boolean`);
    // Tenants are served (tenants.ts); creating or activating them implicitly on import is not.
    if (v && k !== "enabled") throw unprocessable(`multiTenancyConfig.${k}: automatic tenant creation and activation are not supported by OpenBatch: create tenants with POST /v1/schema/{class}/tenants`);
    out[k as keyof typeof out] = v;
  }
  return out;
}

function parseReplication(raw: unknown): ClassDef["replicationConfig"] {
  const out = { factor: 1, asyncEnabled: false, deletionStrategy: "NoAutomatedResolution" };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) throw unprocessable("replicationConfig must be an object");
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    if (k === "factor") {
      if (v !== 1) throw unprocessable(`replicationConfig.factor: OpenBatch is a single node, so the replication factor can only be 1 (got ${JSON.stringify(v)})`);
    } else if (k === "asyncEnabled") {
      if (v !== false) throw unprocessable("replicationConfig.asyncEnabled: async replication is not supported by OpenBatch (a single node)");
    } else if (k === "deletionStrategy") {
      if (!["NoAutomatedResolution", "DeleteOnConflict", "TimeBasedResolution"].includes(v as string)) throw unprocessable(`replicationConfig.deletionStrategy: unknown strategy ${JSON.stringify(v)}`);
      out.deletionStrategy = v as string;
    } else throw unprocessable(`replicationConfig: unknown field '${k}'`);
  }
  return out;
}

function parseSharding(raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...DEFAULT_SHARDING };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) throw unprocessable("shardingConfig must be an object");
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    if (!(k in DEFAULT_SHARDING)) throw unprocessable(`shardingConfig: unknown field '${k}'`);
    if (k === "desiredCount" && v !== 1) throw unprocessable(`shardingConfig.desiredCount: OpenBatch keeps each collection in one shard (got ${JSON.stringify(v)})`);
    if (typeof v !== typeof (DEFAULT_SHARDING as Record<string, unknown>)[k]) throw unprocessable(`shardingConfig.${k} has the wrong type`);
    if (k === "virtualPerPhysical") {
      out.virtualPerPhysical = v;
      out.desiredVirtualCount = out.actualVirtualCount = v;
    } else if (k !== "actualCount" && k !== "actualVirtualCount") out[k] = v;
  }
  return out;
}

/** Keys of a property definition we read (`textAnalyzer` is refused when set). */
const PROPERTY_KEYS = new Set(["name", "dataType", "description", "indexFilterable", "indexSearchable", "indexRangeFilters", "indexInverted", "tokenization", "moduleConfig", "nestedProperties"]);

/**
 * Validates one property definition.
 * @param classExists whether a (normalized) class name exists, for cross-reference targets.
 * @param nestedIn the object property's path when `raw` is one of its `nestedProperties` (they may not be
 *   references, geoCoordinates or phoneNumber, as in Weaviate).
 */
export function parseProperty(raw: unknown, className: string, classExists: (name: string) => boolean, nestedIn?: string): PropertyDef {
  if (!isObject(raw)) throw unprocessable(`class "${className}": a property must be a JSON object`);
  if (typeof raw.name !== "string" || !raw.name) throw unprocessable(`class "${className}": property name cannot be empty`);
  const name = normalizePropertyName(raw.name);
  if (!GRAPHQL_NAME.test(name)) {
    throw unprocessable(`'${raw.name}' is not a valid property name. Property names in Weaviate are restricted to valid GraphQL names, which must be “/[_A-Za-z][_0-9A-Za-z]{0,230}/”.`);
  }
  if (RESERVED_PROPERTIES.has(name)) throw unprocessable(`class "${className}": '${raw.name}' is a reserved property name`);
  if (!Array.isArray(raw.dataType) || raw.dataType.length === 0 || !raw.dataType.every((t) => typeof t === "string" && t)) {
    throw unprocessable(`property '${name}': invalid dataType: dataType must be an array of one type or of class names`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null || PROPERTY_KEYS.has(k)) continue;
    throw unprocessable(`property '${name}': field '${k}' is not supported by OpenBatch`);
  }
  // The deprecated `string` was tokenized on whitespace.
  const legacyString = raw.dataType[0] === "string" || raw.dataType[0] === "string[]";
  let dataType: string[] = (raw.dataType as string[]).map((t) => ALIASES[t] ?? t);
  if (nestedIn !== undefined && !NESTED_TYPES.has(dataType[0]!)) throw unprocessable(`nested property '${nestedIn}.${name}': invalid dataType: data type '${dataType[0]}' is not allowed in nested properties (allowed: ${[...NESTED_TYPES].join(", ")})`);
  if (PRIMITIVES.has(dataType[0]!) || isComplexType(dataType[0])) {
    if (dataType.length > 1) throw unprocessable(`property '${name}': invalid dataType: a primitive type cannot be combined with other types`);
  } else {
    dataType = dataType.map(normalizeClassName);
    for (const target of dataType) {
      if (!CLASS_NAME.test(target) || PRIMITIVES.has(target.toLowerCase())) throw unprocessable(`property '${name}': invalid dataType: unknown data type '${target}'`);
      if (!classExists(target)) throw unprocessable(`property '${name}': invalid dataType: reference property to nonexistent class "${target}"`);
    }
  }
  for (const k of ["indexFilterable", "indexSearchable", "indexRangeFilters", "indexInverted"]) {
    if (raw[k] !== undefined && raw[k] !== null && typeof raw[k] !== "boolean") throw unprocessable(`property '${name}': ${k} must be a boolean`);
  }
  // `indexInverted: false` is the deprecated spelling of `indexFilterable: false` (and not searchable).
  const inverted = raw.indexInverted !== false;
  const prop: PropertyDef = {
    name,
    dataType,
    indexFilterable: inverted && raw.indexFilterable !== false,
    indexSearchable: inverted && raw.indexSearchable !== false,
    indexRangeFilters: raw.indexRangeFilters === true,
  };
  if (typeof raw.description === "string") prop.description = raw.description;
  const isText = dataType[0] === "text" || dataType[0] === "text[]";
  // "" is "not set" (the clients send it for non-text properties).
  if (raw.tokenization !== undefined && raw.tokenization !== null && raw.tokenization !== "") {
    if (!isText) throw unprocessable(`tokenization is not allowed for data type '${dataType[0]}'`);
    if (!TOKENIZATIONS.includes(raw.tokenization as Tokenization)) throw unprocessable(`tokenization '${String(raw.tokenization)}' is not supported, use one of ${TOKENIZATIONS.join(", ")}`);
    prop.tokenization = raw.tokenization as Tokenization;
  } else if (isText) {
    prop.tokenization = legacyString ? "whitespace" : "word";
  }
  if (!isText) prop.indexSearchable = false;
  if (isObject(raw.moduleConfig)) prop.moduleConfig = { ...raw.moduleConfig };
  const nested = raw.nestedProperties;
  const path = nestedIn === undefined ? name : `${nestedIn}.${name}`;
  if (isObjectType(dataType[0])) {
    if (!Array.isArray(nested) || nested.length === 0) throw unprocessable(`property '${path}': At least one nested property is required for data type object/object[]`);
    prop.nestedProperties = nested.map((n) => parseProperty(n, className, classExists, path));
    const seen = new Set<string>();
    for (const n of prop.nestedProperties) {
      if (seen.has(n.name)) throw unprocessable(`property '${path}': nested property '${n.name}' is defined twice`);
      seen.add(n.name);
    }
  } else if (nested !== undefined && nested !== null && !(Array.isArray(nested) && nested.length === 0)) {
    throw unprocessable(`property '${path}': nestedProperties not allowed for data types other than object/object[]`);
  }
  return prop;
}

/** A new class that auto-schema creates for an object of an unknown class: no vectorizer, cosine HNSW, no properties yet. */
export function autoClass(name: string): ClassDef {
  return parseClass({ class: name }, () => false);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is an RFC 3339 date-time (as Go's `time.Parse(time.RFC3339, …)` accepts it). */
export const isRfc3339 = (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s));
/** Whether a string is a UUID in the canonical 8-4-4-4-12 form. */
export const isUuid = (s: string) => UUID.test(s);

/** Auto-schema's scalar type of a value: `date` (RFC 3339), `uuid`, `text`, `number`, `boolean`; null for anything else. */
export function inferScalar(v: unknown): PrimitiveType | null {
  if (typeof v === "string") return isRfc3339(v) ? "date" : isUuid(v) ? "uuid" : "text";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "boolean";
  return null;
}

/**
 * Auto-schema's type for a value, as Weaviate infers it: strings are `date` when RFC 3339, `uuid` when a UUID, else
 * `text`; every JSON number is `number`; arrays take their first element's type; `[{beacon}]` is a reference to the
 * beacon's class. @returns null for a value that says nothing (null, empty array), or an error message.
 */
export function inferDataType(value: unknown, parseBeaconClass: (beacon: string) => string | null): InferredProperty | { error: string } | null {
  if (value === null || value === undefined) return null;
  const scalar = inferScalar;
  if (Array.isArray(value)) {
    if (value.length === 0) return null;
    const first = value[0];
    if (isObject(first) && typeof first.beacon === "string") {
      const cls = parseBeaconClass(first.beacon);
      if (!cls) return { error: `cannot infer the class of reference '${first.beacon}': give the beacon as weaviate://localhost/<Class>/<uuid>, or create the property first` };
      return { dataType: [cls] };
    }
    const t = scalar(first);
    if (!t) return inferComplex(value, scalar) ?? { error: `cannot infer the data type of an array of ${typeof first === "object" ? "arrays" : typeof first}: create the property first` };
    return { dataType: [`${t}[]`] };
  }
  const t = scalar(value);
  if (!t) return inferComplex(value, scalar) ?? { error: "cannot infer the data type of this value: create the property first" };
  return { dataType: [t] };
}
