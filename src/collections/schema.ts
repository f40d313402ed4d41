import { unprocessable } from "./errors.js";

/** Distance metrics of a class's vector index, as Weaviate names them. */
export const DISTANCES = ["cosine", "dot", "l2-squared", "manhattan", "hamming"] as const;
export type Distance = (typeof DISTANCES)[number];

/** Our vectorizer module: embeds through the engine's providers. */
export const VECTORIZER = "text2vec-openbatch";
/** Its default model: the built-in word-vector embedder (no key, no network). */
export const DEFAULT_MODEL = "local/glove-100d";

/** Scalar data types (and their arrays). A data type that is not one of these names a class: a cross-reference. */
export const PRIMITIVE_TYPES = ["text", "text[]", "int", "int[]", "number", "number[]", "boolean", "boolean[]", "date", "date[]", "uuid", "uuid[]"] as const;
export type PrimitiveType = (typeof PRIMITIVE_TYPES)[number];
const PRIMITIVES = new Set<string>(PRIMITIVE_TYPES);
/** Weaviate types we do not store. */
const UNSUPPORTED_TYPES = new Set(["geoCoordinates", "phoneNumber", "blob", "object", "object[]"]);
/** Deprecated spellings Weaviate still accepts. */
const ALIASES: Record<string, PrimitiveType> = { string: "text", "string[]": "text[]" };

export const TOKENIZATIONS = ["word", "lowercase", "whitespace", "field"] as const;
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
  moduleConfig?: Record<string, unknown>;
}

/** HNSW settings (Weaviate's names and defaults). `ef` -1 is dynamic: limit × dynamicEfFactor within [dynamicEfMin, dynamicEfMax]. */
export interface VectorIndexConfig {
  distance: Distance;
  ef: number;
  efConstruction: number;
  maxConnections: number;
  dynamicEfMin: number;
  dynamicEfMax: number;
  dynamicEfFactor: number;
  [key: string]: unknown;
}

/** A class (collection), as `GET /v1/schema/{class}` renders it. */
export interface ClassDef {
  class: string;
  description?: string;
  vectorizer: string;
  moduleConfig: Record<string, Record<string, unknown>>;
  vectorIndexType: "hnsw" | "flat";
  vectorIndexConfig: VectorIndexConfig;
  properties: PropertyDef[];
  invertedIndexConfig: Record<string, unknown>;
  multiTenancyConfig: { enabled: false };
  replicationConfig: { factor: 1 };
  shardingConfig: Record<string, unknown>;
}

const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,230}$/;
const CLASS_NAME = /^[A-Z][_0-9A-Za-z]{0,254}$/;
const RESERVED_PROPERTIES = new Set(["_additional", "_id", "id"]);

/** Weaviate stores class names with an upper-case first letter (`question` is `Question`). */
export const normalizeClassName = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);
/** …and property names with a lower-case first letter. */
export const normalizePropertyName = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);

/** Whether a data type names a class (a cross-reference property). */
export const isReferenceType = (dataType: readonly string[]) => dataType.length > 0 && !PRIMITIVES.has(dataType[0]!);

/** The settings of a class's vectorizer, or null for `none`. */
export function vectorizerOf(def: ClassDef): { model: string; vectorizeClassName: boolean } | null {
  if (def.vectorizer !== VECTORIZER) return null;
  const cfg = def.moduleConfig[VECTORIZER] ?? {};
  return { model: typeof cfg.model === "string" && cfg.model ? cfg.model : DEFAULT_MODEL, vectorizeClassName: cfg.vectorizeClassName !== false };
}

/** A property by name (first letter case-insensitive, as Weaviate). */
export const propertyOf = (def: ClassDef, name: string) => def.properties.find((p) => p.name === normalizePropertyName(name));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates a class body of `POST /v1/schema` and fills in Weaviate's defaults.
 * @param classExists whether a class of that (normalized) name exists, for cross-reference targets.
 * @throws CollectionError 422 with Weaviate-style messages.
 */
export function parseClass(body: unknown, classExists: (name: string) => boolean): ClassDef {
  if (!isObject(body)) throw unprocessable("class definition must be a JSON object");
  if (typeof body.class !== "string" || !body.class) throw unprocessable("'' is not a valid class name");
  const name = normalizeClassName(body.class);
  if (!CLASS_NAME.test(name)) throw unprocessable(`'${body.class}' is not a valid class name`);
  if (isObject(body.multiTenancyConfig) && body.multiTenancyConfig.enabled === true) throw unprocessable("multi-tenancy is not supported by OpenBatch");
  if (body.vectorConfig !== undefined && body.vectorConfig !== null) throw unprocessable("named vectors (vectorConfig) are not supported by OpenBatch: use vectorizer, moduleConfig and vectorIndexConfig");

  const vectorizer = body.vectorizer === undefined || body.vectorizer === null || body.vectorizer === "" ? "none" : body.vectorizer;
  if (vectorizer !== "none" && vectorizer !== VECTORIZER) throw unprocessable(`vectorizer: no module with name ${JSON.stringify(vectorizer)} present`);
  if (body.moduleConfig !== undefined && body.moduleConfig !== null && !isObject(body.moduleConfig)) throw unprocessable("moduleConfig must be an object");
  const moduleConfig: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries((body.moduleConfig as Record<string, unknown> | undefined) ?? {})) {
    if (!isObject(v)) throw unprocessable(`moduleConfig.${k} must be an object`);
    moduleConfig[k] = { ...v };
  }
  if (vectorizer === VECTORIZER) {
    const cfg = (moduleConfig[VECTORIZER] ??= {});
    if (cfg.model === undefined) cfg.model = DEFAULT_MODEL;
    if (typeof cfg.model !== "string" || !cfg.model) throw unprocessable(`moduleConfig.${VECTORIZER}.model must be a model id such as "${DEFAULT_MODEL}"`);
    if (cfg.vectorizeClassName === undefined) cfg.vectorizeClassName = true;
    if (typeof cfg.vectorizeClassName !== "boolean") throw unprocessable(`moduleConfig.${VECTORIZER}.vectorizeClassName must be a boolean`);
  }

  const indexType = body.vectorIndexType ?? "hnsw";
  if (indexType !== "hnsw" && indexType !== "flat") throw unprocessable(`unrecognized or unsupported vectorIndexType ${JSON.stringify(indexType)}`);
  const vectorIndexConfig = parseVectorIndexConfig(body.vectorIndexConfig);

  if (body.properties !== undefined && body.properties !== null && !Array.isArray(body.properties)) throw unprocessable("properties must be an array");
  const properties: PropertyDef[] = [];
  const selfExists = (n: string) => n === name || classExists(n);
  for (const raw of (body.properties as unknown[] | undefined) ?? []) {
    const prop = parseProperty(raw, name, selfExists);
    if (properties.some((p) => p.name === prop.name)) throw unprocessable(`class "${name}": conflict for property "${prop.name}": already in use or provided multiple times`);
    properties.push(prop);
  }

  const def: ClassDef = {
    class: name,
    vectorizer: vectorizer as string,
    moduleConfig,
    vectorIndexType: indexType,
    vectorIndexConfig,
    properties,
    invertedIndexConfig: { bm25: { b: 0.75, k1: 1.2 }, cleanupIntervalSeconds: 60, stopwords: { preset: "en", additions: null, removals: null } },
    multiTenancyConfig: { enabled: false },
    replicationConfig: { factor: 1 },
    shardingConfig: { virtualPerPhysical: 128, desiredCount: 1, actualCount: 1, desiredVirtualCount: 128, actualVirtualCount: 128, key: "_id", strategy: "hash", function: "murmur3" },
  };
  if (typeof body.description === "string") def.description = body.description;
  return def;
}

function parseVectorIndexConfig(raw: unknown): VectorIndexConfig {
  if (raw !== undefined && raw !== null && !isObject(raw)) throw unprocessable("vectorIndexConfig must be an object");
  const cfg = { ...((raw as Record<string, unknown> | undefined) ?? {}) };
  const distance = cfg.distance ?? "cosine";
  if (!DISTANCES.includes(distance as Distance)) throw unprocessable(`vectorIndexConfig: unsupported distance type '${String(distance)}', choose one of ${DISTANCES.join(", ")}`);
  const int = (key: string, dflt: number, min: number) => {
    const v = cfg[key] ?? dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw unprocessable(`vectorIndexConfig: ${key} must be an integer >= ${min}`);
    return v;
  };
  return {
    ...cfg,
    distance: distance as Distance,
    ef: int("ef", -1, -1),
    efConstruction: int("efConstruction", 128, 4),
    maxConnections: int("maxConnections", 32, 2),
    dynamicEfMin: int("dynamicEfMin", 100, 1),
    dynamicEfMax: int("dynamicEfMax", 500, 1),
    dynamicEfFactor: int("dynamicEfFactor", 8, 1),
  };
}

/**
 * Validates one property definition.
 * @param classExists whether a (normalized) class name exists, for cross-reference targets.
 */
export function parseProperty(raw: unknown, className: string, classExists: (name: string) => boolean): PropertyDef {
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
  let dataType: string[] = (raw.dataType as string[]).map((t) => ALIASES[t] ?? t);
  if (UNSUPPORTED_TYPES.has(dataType[0]!)) throw unprocessable(`property '${name}': data type '${dataType[0]}' is not supported by OpenBatch`);
  if (PRIMITIVES.has(dataType[0]!)) {
    if (dataType.length > 1) throw unprocessable(`property '${name}': invalid dataType: a primitive type cannot be combined with other types`);
  } else {
    dataType = dataType.map(normalizeClassName);
    for (const target of dataType) {
      if (!CLASS_NAME.test(target) || PRIMITIVES.has(target.toLowerCase())) throw unprocessable(`property '${name}': invalid dataType: unknown data type '${target}'`);
      if (!classExists(target)) throw unprocessable(`property '${name}': invalid dataType: reference property to nonexistent class "${target}"`);
    }
  }
  const prop: PropertyDef = { name, dataType, indexFilterable: raw.indexFilterable !== false, indexSearchable: raw.indexSearchable !== false };
  if (typeof raw.description === "string") prop.description = raw.description;
  const isText = dataType[0] === "text" || dataType[0] === "text[]";
  if (raw.tokenization !== undefined && raw.tokenization !== null) {
    if (!isText) throw unprocessable(`tokenization is not allowed for data type '${dataType[0]}'`);
    if (!TOKENIZATIONS.includes(raw.tokenization as Tokenization)) throw unprocessable(`tokenization '${String(raw.tokenization)}' is not supported, use one of ${TOKENIZATIONS.join(", ")}`);
    prop.tokenization = raw.tokenization as Tokenization;
  } else if (isText) {
    prop.tokenization = "word";
  }
  if (!isText) prop.indexSearchable = false;
  if (isObject(raw.moduleConfig)) prop.moduleConfig = { ...raw.moduleConfig };
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

/**
 * Auto-schema's type for a value, as Weaviate infers it: strings are `date` when RFC 3339, `uuid` when a UUID, else
 * `text`; every JSON number is `number`; arrays take their first element's type; `[{beacon}]` is a reference to the
 * beacon's class. @returns null for a value that says nothing (null, empty array), or an error message.
 */
export function inferDataType(value: unknown, parseBeaconClass: (beacon: string) => string | null): { dataType: string[] } | { error: string } | null {
  if (value === null || value === undefined) return null;
  const scalar = (v: unknown): PrimitiveType | null => {
    if (typeof v === "string") return isRfc3339(v) ? "date" : isUuid(v) ? "uuid" : "text";
    if (typeof v === "number") return "number";
    if (typeof v === "boolean") return "boolean";
    return null;
  };
  if (Array.isArray(value)) {
    if (value.length === 0) return null;
    const first = value[0];
    if (isObject(first) && typeof first.beacon === "string") {
      const cls = parseBeaconClass(first.beacon);
      if (!cls) return { error: `cannot infer the class of reference '${first.beacon}': give the beacon as weaviate://localhost/<Class>/<uuid>, or create the property first` };
      return { dataType: [cls] };
    }
    const t = scalar(first);
    if (!t) return { error: `cannot infer the data type of an array of ${typeof first === "object" ? "objects" : typeof first}: nested objects are not supported` };
    return { dataType: [`${t}[]`] };
  }
  const t = scalar(value);
  if (!t) return { error: "nested objects are not supported by OpenBatch" };
  return { dataType: [t] };
}
