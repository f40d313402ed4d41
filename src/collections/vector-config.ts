/**
 * Vector settings of a class as Weaviate defines them: the vector index config of each index type (hnsw, flat,
 * dynamic) with every field Weaviate returns and its defaults, the vectorizer modules we serve under their Weaviate
 * names, and named vectors (`vectorConfig`). A class has "vector slots": a legacy class one, `default`, from its
 * top-level `vectorizer` / `vectorIndexConfig`; a class with `vectorConfig` one per named vector.
 */
import { unprocessable } from "./errors.js";

/** Distance metrics of a vector index, as Weaviate names them. */
export const DISTANCES = ["cosine", "dot", "l2-squared", "manhattan", "hamming"] as const;
export type Distance = (typeof DISTANCES)[number];

/** Index types we serve. `dynamic` (flat until `threshold` objects, then HNSW) is served by our HNSW index, exact below its ef. */
export const INDEX_TYPES = ["hnsw", "flat", "dynamic"] as const;
export type IndexType = (typeof INDEX_TYPES)[number];

/**
 * An index config as Weaviate returns it. The HNSW fields (`ef` -1 is dynamic: limit × dynamicEfFactor within
 * [dynamicEfMin, dynamicEfMax]) are always present, so the index code reads them for any type; the JSON of a flat or
 * dynamic index shows its own fields only (see `renderIndexConfig`).
 */
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

/** Our own vectorizer module: embeds through the engine's providers. */
export const VECTORIZER = "text2vec-openbatch";
/** Its default model: the built-in word-vector embedder (no key, no network). */
export const DEFAULT_MODEL = "local/glove-100d";

/**
 * The vectorizer modules served, by their Weaviate names: the config keys each accepts and the defaults Weaviate
 * fills in. `properties` (the source properties of a named vector) and `vectorizeClassName` are common to all.
 */
export const MODULES: Record<string, { keys: string[]; defaults: Record<string, unknown> }> = {
  [VECTORIZER]: { keys: ["model"], defaults: { model: DEFAULT_MODEL } },
  "text2vec-ollama": { keys: ["apiEndpoint", "model"], defaults: { apiEndpoint: "http://localhost:11434", model: "nomic-embed-text" } },
  "text2vec-openai": { keys: ["model", "modelVersion", "type", "baseURL", "dimensions"], defaults: { model: "text-embedding-3-small", baseURL: "https://api.openai.com" } },
  "text2vec-transformers": { keys: ["inferenceUrl", "passageInferenceUrl", "queryInferenceUrl", "poolingStrategy", "dimensions"], defaults: { poolingStrategy: "masked_mean" } },
  "text2vec-huggingface": { keys: ["model", "passageModel", "queryModel", "endpointURL", "waitForModel", "useGPU", "useCache"], defaults: { model: "sentence-transformers/all-MiniLM-L6-v2" } },
};
/** Module names accepted where a vectorizer is named, `none` included. */
export const VECTORIZER_NAMES = ["none", ...Object.keys(MODULES)];

/** A named vector of `vectorConfig`, as Weaviate returns it. */
export interface NamedVectorDef {
  vectorizer: Record<string, Record<string, unknown>>;
  vectorIndexType: IndexType;
  vectorIndexConfig: VectorIndexConfig;
}

/** One vector of a class: its name, vectorizer module and settings, index and source properties (null: all text). */
export interface VectorSlot {
  name: string;
  module: string;
  config: Record<string, unknown>;
  indexType: IndexType;
  indexConfig: VectorIndexConfig;
  sourceProperties: string[] | null;
}

/** The name a single (legacy) vector has among named ones. */
export const DEFAULT_VECTOR = "default";
const VECTOR_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,230}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const PQ_DEFAULT = { enabled: false, bitCompression: false, segments: 0, centroids: 256, trainingLimit: 100000, encoder: { type: "kmeans", distribution: "log-normal" } };
const BQ_DEFAULT = { enabled: false };
const SQ_DEFAULT = { enabled: false, trainingLimit: 100000, rescoreLimit: 20 };
/** Weaviate's HNSW defaults (1.27+). */
const HNSW_DEFAULTS = {
  skip: false,
  cleanupIntervalSeconds: 300,
  maxConnections: 32,
  efConstruction: 128,
  ef: -1,
  dynamicEfMin: 100,
  dynamicEfMax: 500,
  dynamicEfFactor: 8,
  vectorCacheMaxObjects: 1000000000000,
  flatSearchCutoff: 40000,
  distance: "cosine",
  filterStrategy: "sweeping",
};
const HNSW_INTS: Record<string, number> = { cleanupIntervalSeconds: 0, maxConnections: 2, efConstruction: 4, ef: -1, dynamicEfMin: 1, dynamicEfMax: 1, dynamicEfFactor: 1, vectorCacheMaxObjects: 0, flatSearchCutoff: 0 };
const FLAT_DEFAULTS = { distance: "cosine", vectorCacheMaxObjects: 1000000000000 };
const QUANTIZERS = ["pq", "bq", "sq", "rq"];

/** A quantizer block: only `enabled: false` (or absent) is served, as vectors are kept uncompressed. */
function parseQuantizer(path: string, key: string, raw: unknown, dflt: Record<string, unknown> | null): Record<string, unknown> | undefined {
  if (raw === undefined || raw === null) return dflt ? structuredClone(dflt) : undefined;
  if (!isObject(raw)) throw unprocessable(`${path}.${key} must be an object`);
  if (raw.enabled === true) throw unprocessable(`${path}.${key}: vector compression (${key.toUpperCase()}) is not supported by OpenBatch: vectors are kept uncompressed; leave ${key} out or set enabled: false`);
  return { ...(dflt ? structuredClone(dflt) : {}), ...raw, enabled: false };
}

function parseHnsw(path: string, raw: Record<string, unknown>): VectorIndexConfig {
  const known = new Set([...Object.keys(HNSW_DEFAULTS), ...QUANTIZERS, "multivector", "skipDefaultQuantization"]);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw unprocessable(`${path}: unknown field '${k}' of an hnsw index`);
  const out: Record<string, unknown> = { ...HNSW_DEFAULTS };
  for (const [k, min] of Object.entries(HNSW_INTS)) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw unprocessable(`${path}: ${k} must be an integer >= ${min}`);
    out[k] = v;
  }
  out.distance = parseDistance(path, raw.distance);
  if (raw.skip !== undefined && raw.skip !== null) {
    if (typeof raw.skip !== "boolean") throw unprocessable(`${path}: skip must be a boolean`);
    if (raw.skip) throw unprocessable(`${path}: skip: true (no vector index) is not supported by OpenBatch: every vector is indexed`);
  }
  if (raw.filterStrategy !== undefined && raw.filterStrategy !== null) {
    if (raw.filterStrategy !== "sweeping" && raw.filterStrategy !== "acorn") throw unprocessable(`${path}: filterStrategy must be "sweeping" or "acorn"`);
    out.filterStrategy = raw.filterStrategy;
  }
  if (isObject(raw.multivector) && raw.multivector.enabled === true) throw unprocessable(`${path}.multivector: multi-vectors are not supported by OpenBatch`);
  if (raw.skipDefaultQuantization !== undefined && typeof raw.skipDefaultQuantization !== "boolean") throw unprocessable(`${path}: skipDefaultQuantization must be a boolean`);
  if (raw.skipDefaultQuantization === true) out.skipDefaultQuantization = true;
  out.pq = parseQuantizer(path, "pq", raw.pq, PQ_DEFAULT);
  out.bq = parseQuantizer(path, "bq", raw.bq, BQ_DEFAULT);
  out.sq = parseQuantizer(path, "sq", raw.sq, SQ_DEFAULT);
  const rq = parseQuantizer(path, "rq", raw.rq, null);
  if (rq) out.rq = rq;
  return out as VectorIndexConfig;
}

function parseFlat(path: string, raw: Record<string, unknown>): Record<string, unknown> {
  const known = new Set([...Object.keys(FLAT_DEFAULTS), ...QUANTIZERS, "skipDefaultQuantization"]);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw unprocessable(`${path}: unknown field '${k}' of a flat index`);
  const out: Record<string, unknown> = { ...FLAT_DEFAULTS, distance: parseDistance(path, raw.distance) };
  const cache = raw.vectorCacheMaxObjects;
  if (cache !== undefined && cache !== null) {
    if (typeof cache !== "number" || !Number.isInteger(cache) || cache < 0) throw unprocessable(`${path}: vectorCacheMaxObjects must be an integer >= 0`);
    out.vectorCacheMaxObjects = cache;
  }
  out.pq = parseQuantizer(path, "pq", raw.pq, PQ_DEFAULT);
  out.bq = parseQuantizer(path, "bq", raw.bq, { enabled: false, rescoreLimit: -1, cache: false });
  const sq = parseQuantizer(path, "sq", raw.sq, null);
  if (sq) out.sq = sq;
  const rq = parseQuantizer(path, "rq", raw.rq, null);
  if (rq) out.rq = rq;
  if (raw.skipDefaultQuantization === true) out.skipDefaultQuantization = true;
  return out;
}

function parseDistance(path: string, raw: unknown): Distance {
  const distance = raw ?? "cosine";
  if (!DISTANCES.includes(distance as Distance)) throw unprocessable(`${path}: unsupported distance type '${String(distance)}', choose one of ${DISTANCES.join(", ")}`);
  return distance as Distance;
}

/**
 * A stored index config with the fields Weaviate returns that it lacks filled in with their defaults (classes saved
 * before OpenBatch rendered them), so the clients can read it. Stored values win.
 */
export function completeIndexConfig(type: IndexType, stored: VectorIndexConfig): VectorIndexConfig {
  if (stored.cleanupIntervalSeconds !== undefined && stored.pq !== undefined) return stored;
  const defaults = type === "flat" ? { ...HNSW_DEFAULTS, ...FLAT_DEFAULTS, pq: PQ_DEFAULT, bq: { enabled: false, rescoreLimit: -1, cache: false } } : { ...HNSW_DEFAULTS, pq: PQ_DEFAULT, bq: BQ_DEFAULT, sq: SQ_DEFAULT };
  return { ...structuredClone(defaults), ...stored } as VectorIndexConfig;
}

/**
 * Validates a vector index config of `type` and fills in Weaviate's defaults.
 * @returns the config to store: for hnsw Weaviate's JSON; for flat and dynamic their JSON plus the HNSW fields our index
 * reads (left out of the JSON by `renderIndexConfig`).
 * @throws CollectionError 422 naming the field (unknown fields, compression, multi-vectors and `skip` included).
 */
export function parseIndexConfig(type: unknown, raw: unknown, path = "vectorIndexConfig"): { type: IndexType; config: VectorIndexConfig } {
  const t = type === undefined || type === null || type === "" ? "hnsw" : type;
  if (!INDEX_TYPES.includes(t as IndexType)) throw unprocessable(`unrecognized or unsupported vectorIndexType ${JSON.stringify(t)}: OpenBatch serves ${INDEX_TYPES.join(", ")}`);
  if (raw !== undefined && raw !== null && !isObject(raw)) throw unprocessable(`${path} must be an object`);
  // The TypeScript client repeats the index type inside its config (`type: "hnsw"`); Weaviate ignores it when it matches.
  const { type: echoedType, ...cfg } = (raw as Record<string, unknown> | undefined) ?? {};
  if (echoedType !== undefined && echoedType !== null && echoedType !== t) throw unprocessable(`${path}: type ${JSON.stringify(echoedType)} differs from vectorIndexType ${JSON.stringify(t)}`);
  if (t === "hnsw") return { type: "hnsw", config: parseHnsw(path, cfg) };
  if (t === "flat") {
    const flat = parseFlat(path, cfg);
    return { type: "flat", config: { ...parseHnsw(path, { distance: flat.distance }), ...flat } as VectorIndexConfig };
  }
  for (const k of Object.keys(cfg)) if (!["distance", "threshold", "hnsw", "flat"].includes(k)) throw unprocessable(`${path}: unknown field '${k}' of a dynamic index`);
  const distance = parseDistance(path, cfg.distance);
  const threshold = cfg.threshold ?? 10000;
  if (typeof threshold !== "number" || !Number.isInteger(threshold) || threshold < 0) throw unprocessable(`${path}: threshold must be an integer >= 0`);
  if (cfg.hnsw !== undefined && cfg.hnsw !== null && !isObject(cfg.hnsw)) throw unprocessable(`${path}.hnsw must be an object`);
  if (cfg.flat !== undefined && cfg.flat !== null && !isObject(cfg.flat)) throw unprocessable(`${path}.flat must be an object`);
  const hnsw = parseHnsw(`${path}.hnsw`, { ...((cfg.hnsw as Record<string, unknown>) ?? {}), distance });
  const flat = parseFlat(`${path}.flat`, { ...((cfg.flat as Record<string, unknown>) ?? {}), distance });
  const { distance: _d, ...hnswFields } = hnsw;
  return { type: "dynamic", config: { ...hnswFields, distance, threshold, hnsw, flat } as unknown as VectorIndexConfig };
}

/** An index config as Weaviate's JSON shows it for its type (the HNSW fields a flat or dynamic index carries for us left out). */
export function renderIndexConfig(type: IndexType, config: VectorIndexConfig): Record<string, unknown> {
  if (type === "hnsw") return config;
  if (type === "flat") {
    const keep = new Set([...Object.keys(FLAT_DEFAULTS), ...QUANTIZERS, "skipDefaultQuantization"]);
    return Object.fromEntries(Object.entries(config).filter(([k]) => keep.has(k)));
  }
  return { distance: config.distance, threshold: config.threshold, hnsw: config.hnsw, flat: config.flat };
}

/**
 * Validates one vectorizer module config (`{"text2vec-ollama": {…}}` or a top-level `moduleConfig` entry) and fills
 * in Weaviate's defaults. @param path where it sits, for messages.
 * @throws CollectionError 422 for an unknown module or field, or a wrongly typed value.
 */
export function parseModuleConfig(module: string, raw: unknown, path: string): Record<string, unknown> {
  if (module === "none") {
    const cfg = isObject(raw) ? raw : {};
    for (const k of Object.keys(cfg)) if (k !== "properties") throw unprocessable(`${path}: unknown field '${k}' of vectorizer none`);
    return {};
  }
  const spec = MODULES[module];
  if (!spec) throw unprocessable(`vectorizer: no module with name ${JSON.stringify(module)} present`);
  if (raw !== undefined && raw !== null && !isObject(raw)) throw unprocessable(`${path} must be an object`);
  const cfg: Record<string, unknown> = { ...spec.defaults, vectorizeClassName: true };
  for (const [k, v] of Object.entries((raw as Record<string, unknown> | undefined) ?? {})) {
    if (v === undefined || v === null) continue;
    if (k === "vectorizeClassName") {
      if (typeof v !== "boolean") throw unprocessable(`${path}.vectorizeClassName must be a boolean`);
    } else if (k === "properties") {
      if (!Array.isArray(v) || !v.every((p) => typeof p === "string" && p)) throw unprocessable(`${path}.properties must be an array of property names`);
    } else if (k === "dimensions" || k === "waitForModel" || k === "useGPU" || k === "useCache") {
      if (k === "dimensions" ? typeof v !== "number" || !Number.isInteger(v) || v < 1 : typeof v !== "boolean") throw unprocessable(`${path}.${k} has the wrong type`);
    } else if (spec.keys.includes(k)) {
      if (typeof v !== "string" || !v) throw unprocessable(`${path}.${k} must be a non-empty string`);
    } else throw unprocessable(`${path}: unknown field '${k}' of module ${module} (OpenBatch reads ${[...spec.keys, "vectorizeClassName", "properties"].join(", ")})`);
    cfg[k] = v;
  }
  return cfg;
}

/**
 * Validates `vectorConfig` (named vectors): `{name: {vectorizer: {<module>: {…}}, vectorIndexType, vectorIndexConfig}}`.
 * @returns the named vectors with defaults filled in. @throws CollectionError 422 naming the vector and field.
 */
export function parseVectorConfig(raw: unknown): Record<string, NamedVectorDef> {
  if (!isObject(raw)) throw unprocessable("vectorConfig must be an object of named vectors");
  const names = Object.keys(raw);
  if (names.length === 0) throw unprocessable("vectorConfig: give at least one named vector");
  const out: Record<string, NamedVectorDef> = {};
  for (const name of names) {
    if (!VECTOR_NAME.test(name)) throw unprocessable(`vectorConfig: '${name}' is not a valid vector name (a GraphQL name)`);
    const v = raw[name];
    if (!isObject(v)) throw unprocessable(`vectorConfig.${name} must be an object`);
    for (const k of Object.keys(v)) if (!["vectorizer", "vectorIndexType", "vectorIndexConfig"].includes(k)) throw unprocessable(`vectorConfig.${name}: unknown field '${k}'`);
    const vz = v.vectorizer ?? { none: {} };
    if (!isObject(vz) || Object.keys(vz).length !== 1) throw unprocessable(`vectorConfig.${name}.vectorizer must name exactly one module, e.g. {"text2vec-ollama": {…}} or {"none": {}}`);
    const module = Object.keys(vz)[0]!;
    const cfg = parseModuleConfig(module, vz[module], `vectorConfig.${name}.vectorizer.${module}`);
    const sourceProps = (vz[module] as Record<string, unknown> | undefined)?.properties;
    if (Array.isArray(sourceProps) && module === "none") throw unprocessable(`vectorConfig.${name}: source properties need a vectorizer module`);
    const { type, config } = parseIndexConfig(v.vectorIndexType, v.vectorIndexConfig, `vectorConfig.${name}.vectorIndexConfig`);
    out[name] = { vectorizer: { [module]: cfg }, vectorIndexType: type, vectorIndexConfig: config };
  }
  return out;
}

/** A named vector as one slot. */
export function namedSlot(name: string, v: NamedVectorDef): VectorSlot {
  const module = Object.keys(v.vectorizer)[0] ?? "none";
  const config = v.vectorizer[module] ?? {};
  return { name, module, config, indexType: v.vectorIndexType, indexConfig: v.vectorIndexConfig, sourceProperties: Array.isArray(config.properties) ? (config.properties as string[]) : null };
}

/**
 * The model a slot's vectorizer embeds with, and where: `model` for every module that names one (transformers:
 * its `inferenceUrl`), `endpoint` the module's own server (Ollama's `apiEndpoint`, OpenAI's `baseURL`, Hugging Face's
 * `endpointURL`, transformers' `inferenceUrl`) or null. @returns null for `none`.
 */
export function vectorizerTarget(slot: VectorSlot): { module: string; model: string; endpoint: string | null; vectorizeClassName: boolean } | null {
  if (slot.module === "none") return null;
  const c = slot.config;
  const str = (k: string) => (typeof c[k] === "string" && c[k] ? (c[k] as string) : null);
  const model = str("model") ?? str("inferenceUrl") ?? (slot.module === VECTORIZER ? DEFAULT_MODEL : "default");
  const endpoint = slot.module === VECTORIZER ? null : (str("apiEndpoint") ?? str("baseURL") ?? str("endpointURL") ?? str("inferenceUrl"));
  return { module: slot.module, model, endpoint, vectorizeClassName: c.vectorizeClassName !== false };
}
