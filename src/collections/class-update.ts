import { unprocessable } from "./errors.js";
import { normalizeClassName, normalizePropertyName, parseClass, parseProperty, renderClass, type ClassDef, type PropertyDef } from "./schema.js";
import type { IndexType, NamedVectorDef, VectorIndexConfig } from "./vector-config.js";

/*
 * `PUT /v1/schema/{class}` as Weaviate's ParseClassUpdate decides it (usecases/schema/parser.go, class.go, the hnsw /
 * flat ValidateUserConfigUpdate and inverted ValidateUserConfigUpdate): the body is a whole class (what `GET` returned,
 * changed), parsed as a new one, then compared with the class as it is. What Weaviate lets change is taken; the rest
 * must be unchanged, else its message. A block the body leaves out (absent or null) keeps its current value, so a
 * partial body (`{class, description}`) works too; a block given is read whole, its missing fields at their defaults.
 *
 * Mutable: `description`; `invertedIndexConfig` bm25 k1/b, stopwords, cleanupIntervalSeconds, indexTimestamps;
 * `replicationConfig.deletionStrategy` (factor stays 1, async off: parseClass refuses more); property and nested
 * property descriptions; modules added to `moduleConfig`; per vector index (legacy or named): ef, dynamicEfMin / Max
 * / Factor, flatSearchCutoff, vectorCacheMaxObjects, filterStrategy, a dynamic index's threshold.
 */

/** What an accepted update changes: the class to store, and whether a vector index's search settings changed. */
export interface ClassUpdate {
  def: ClassDef;
  /** True when ef / dynamicEf* of an HNSW (or dynamic) index changed: its open indexes must take them (VectorIndex.configure). */
  searchSettingsChanged: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const given = (v: unknown) => v !== undefined && v !== null;

/** JSON with object keys sorted, so two values compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** Weaviate's wording for a text or number field that may not change. */
const immutable = (name: string, from: unknown, to: unknown) => `${name} is immutable: attempted change from ${JSON.stringify(String(from))} to ${JSON.stringify(String(to))}`;

const PROPERTIES_IMMUTABLE =
  'property fields other than description cannot be updated through updating the class. Use the add property feature (e.g. "POST /v1/schema/{className}/properties") to add additional properties';

/** Index config fields a search reads: a change to one is handed to the open indexes (see ClassUpdate). */
const SEARCH_FIELDS = ["ef", "dynamicEfMin", "dynamicEfMax", "dynamicEfFactor"] as const;

/**
 * The class after `PUT /v1/schema/{class}` with `body` (see the file comment).
 * @param current the class as stored. @param pathName the class named in the URL.
 * @param classExists whether a (normalized) class name exists, for the reference properties of the body.
 * @returns the class to store and whether index search settings changed.
 * @throws CollectionError 422 with Weaviate's message for an immutable change (class name, multi-tenancy, vectorizer,
 * vector index type, efConstruction, maxConnections, cleanupIntervalSeconds, distance, properties, module config,
 * IndexPropertyLength / IndexNullState, sharding) or an invalid body (parseClass's messages).
 */
export function planClassUpdate(current: ClassDef, pathName: string, body: unknown, classExists: (name: string) => boolean): ClassUpdate {
  if (!isObject(body)) throw unprocessable("class definition must be a JSON object");
  const name = typeof body.class === "string" && body.class ? normalizeClassName(body.class) : normalizeClassName(pathName);
  if (name !== current.class) throw unprocessable(immutable("class name", current.class, name));

  // The current class as a fresh parse would give it: stored classes from older versions compare like new ones.
  const rendered = renderClass(current);
  const baseline = parseClass(rendered, classExists);
  const merged = withCurrentBlocks(body, rendered, current.class);
  checkBeforeParsing(current, merged, classExists);
  const next = parseClass(merged, classExists);

  if (next.multiTenancyConfig.enabled !== baseline.multiTenancyConfig.enabled) {
    throw unprocessable(`${baseline.multiTenancyConfig.enabled ? "disabling" : "enabling"} multi-tenancy for an existing class is not supported`);
  }
  const moduleConfig = checkModuleConfig(baseline.moduleConfig, next.moduleConfig);
  const vectors = checkVectors(baseline, next);
  checkSharding(baseline, next);
  const properties = checkProperties(current.properties, baseline.properties, next.properties);
  checkInverted(baseline.invertedIndexConfig, next.invertedIndexConfig);

  const def: ClassDef = {
    ...current,
    moduleConfig,
    vectorizer: next.vectorizer,
    vectorIndexType: next.vectorIndexType,
    vectorIndexConfig: next.vectorIndexConfig,
    properties,
    invertedIndexConfig: next.invertedIndexConfig,
    replicationConfig: next.replicationConfig,
  };
  if (next.vectorConfig) def.vectorConfig = next.vectorConfig;
  if (next.description !== undefined) def.description = next.description;
  else delete def.description;
  return { def, searchSettingsChanged: vectors.searchSettingsChanged };
}

/**
 * The changes Weaviate names before a parse could refuse the body for their consequences: a vector index type or
 * vectorizer changed (the index config then fits the other type), an existing property changed into one that does not
 * parse (a text property made int keeps its tokenization).
 */
function checkBeforeParsing(current: ClassDef, body: Record<string, unknown>, classExists: (name: string) => boolean): void {
  const typeOf = (t: unknown) => (t === undefined || t === null || t === "" ? "hnsw" : String(t));
  if (current.vectorConfig && isObject(body.vectorConfig)) {
    for (const [name, cur] of Object.entries(current.vectorConfig)) {
      const upd = body.vectorConfig[name];
      if (!isObject(upd)) continue;
      if (typeOf(upd.vectorIndexType) !== cur.vectorIndexType) {
        throw unprocessable(`vector index type of vector ${JSON.stringify(name)} is immutable: attempted change from ${JSON.stringify(cur.vectorIndexType)} to ${JSON.stringify(typeOf(upd.vectorIndexType))}`);
      }
      const module = isObject(upd.vectorizer) && Object.keys(upd.vectorizer).length === 1 ? Object.keys(upd.vectorizer)[0]! : null;
      if (module !== null && module !== moduleOf(cur)) throw unprocessable(`vectorizer of vector ${JSON.stringify(name)} is immutable: attempted change from ${JSON.stringify(moduleOf(cur))} to ${JSON.stringify(module)}`);
    }
  } else if (!current.vectorConfig && !given(body.vectorConfig)) {
    const vectorizer = body.vectorizer === undefined || body.vectorizer === null || body.vectorizer === "" ? "none" : String(body.vectorizer);
    if (vectorizer !== current.vectorizer) throw unprocessable(immutable("vectorizer", current.vectorizer, vectorizer));
    if (typeOf(body.vectorIndexType) !== current.vectorIndexType) throw unprocessable(immutable("vector index type", current.vectorIndexType, typeOf(body.vectorIndexType)));
  }
  if (!Array.isArray(body.properties)) return;
  for (const raw of body.properties) {
    const name = isObject(raw) && typeof raw.name === "string" ? normalizePropertyName(raw.name) : null;
    if (name === null || !current.properties.some((p) => p.name === name)) continue;
    try {
      parseProperty(raw, current.class, (n) => n === current.class || classExists(n));
    } catch {
      throw unprocessable(`property ${JSON.stringify(name)}: ${PROPERTIES_IMMUTABLE}`);
    }
  }
}

/** The body with every block it leaves out taken from the current class's JSON (the vector blocks as one group). */
function withCurrentBlocks(body: Record<string, unknown>, rendered: Record<string, unknown>, cls: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body, class: cls };
  const vectorKeys = ["vectorizer", "vectorIndexType", "vectorIndexConfig", "vectorConfig"];
  const vectorGiven = vectorKeys.some((k) => given(body[k]));
  for (const [k, v] of Object.entries(rendered)) {
    if (given(out[k])) continue;
    if (vectorKeys.includes(k) && vectorGiven) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Modules of `moduleConfig`: new ones may be added, existing ones must stay as they are (Weaviate lets only
 * generative and reranker modules change, which OpenBatch does not serve). @returns the merged module config.
 */
function checkModuleConfig(current: ClassDef["moduleConfig"], next: ClassDef["moduleConfig"]): ClassDef["moduleConfig"] {
  for (const [module, cfg] of Object.entries(next)) {
    if (module in current && !same(current[module], cfg)) throw unprocessable(`can only update generative and reranker module configs. Got: ${module}`);
  }
  return { ...current, ...next };
}

/** Compares the vector settings (legacy or named). @returns whether a search setting of an index changed. */
function checkVectors(current: ClassDef, next: ClassDef): { searchSettingsChanged: boolean } {
  if (current.vectorConfig) {
    if (!next.vectorConfig) throw unprocessable(`missing config for vector ${JSON.stringify(Object.keys(current.vectorConfig)[0])}`);
    let changed = false;
    for (const [name, cur] of Object.entries(current.vectorConfig)) {
      const upd = next.vectorConfig[name];
      if (!upd) throw unprocessable(`missing config for vector ${JSON.stringify(name)}`);
      if (cur.vectorIndexType !== upd.vectorIndexType) {
        throw unprocessable(`vector index type of vector ${JSON.stringify(name)} is immutable: attempted change from ${JSON.stringify(cur.vectorIndexType)} to ${JSON.stringify(upd.vectorIndexType)}`);
      }
      const [curModule, nextModule] = [moduleOf(cur), moduleOf(upd)];
      if (curModule !== nextModule) throw unprocessable(`vectorizer of vector ${JSON.stringify(name)} is immutable: attempted change from ${JSON.stringify(curModule)} to ${JSON.stringify(nextModule)}`);
      if (!same(cur.vectorizer, upd.vectorizer)) throw unprocessable(`vectorizer config of vector ${JSON.stringify(name)} is immutable`);
      const cause = indexConfigChange(cur.vectorIndexType, cur.vectorIndexConfig, upd.vectorIndexConfig);
      if (cause) throw unprocessable(`vector ${JSON.stringify(name)}: validate vector index config: ${cause}`);
      changed ||= searchChanged(cur.vectorIndexType, cur.vectorIndexConfig, upd.vectorIndexConfig);
    }
    const added = Object.keys(next.vectorConfig).find((n) => !current.vectorConfig![n]);
    if (added) throw unprocessable(`vectorConfig: adding the vector ${JSON.stringify(added)} to an existing class is not supported by OpenBatch: create a new collection with it`);
    return { searchSettingsChanged: changed };
  }
  if (next.vectorConfig) throw unprocessable("vectorConfig: a class with a single (legacy) vector cannot get named vectors through updating the class: not supported by OpenBatch");
  if (current.vectorizer !== next.vectorizer) throw unprocessable(immutable("vectorizer", current.vectorizer, next.vectorizer));
  if (current.vectorIndexType !== next.vectorIndexType) throw unprocessable(immutable("vector index type", current.vectorIndexType, next.vectorIndexType));
  const cause = indexConfigChange(current.vectorIndexType, current.vectorIndexConfig, next.vectorIndexConfig);
  if (cause) throw unprocessable(`validate vector index config: ${cause}`);
  return { searchSettingsChanged: searchChanged(current.vectorIndexType, current.vectorIndexConfig, next.vectorIndexConfig) };
}

const moduleOf = (v: NamedVectorDef) => Object.keys(v.vectorizer)[0] ?? "none";

/** The first immutable field of an index config that differs, in Weaviate's words; null when none does. */
function indexConfigChange(type: IndexType, cur: VectorIndexConfig, next: VectorIndexConfig): string | null {
  const fields = type === "flat" ? ["distance"] : ["efConstruction", "maxConnections", "cleanupIntervalSeconds", "distance"];
  for (const f of fields) if (cur[f] !== next[f]) return immutable(f, cur[f], next[f]);
  return null;
}

function searchChanged(type: IndexType, cur: VectorIndexConfig, next: VectorIndexConfig): boolean {
  return type !== "flat" && SEARCH_FIELDS.some((f) => cur[f] !== next[f]);
}

/** `shardingConfig` cannot change (one shard per class); a multi-tenant class's is not checked, as in Weaviate. */
function checkSharding(current: ClassDef, next: ClassDef): void {
  if (current.multiTenancyConfig.enabled) return;
  const [a, b] = [current.shardingConfig, next.shardingConfig];
  if (a.virtualPerPhysical !== b.virtualPerPhysical) throw unprocessable(`validate sharding config: ${immutable("virtual shards per physical", a.virtualPerPhysical, b.virtualPerPhysical)}`);
  for (const k of Object.keys(a)) {
    if (!same(a[k], b[k])) throw unprocessable(`validate sharding config: shardingConfig.${k} is immutable: attempted change from ${JSON.stringify(a[k])} to ${JSON.stringify(b[k])}`);
  }
}

/**
 * Properties: the same ones (by name), equal but for their descriptions (nested ones included).
 * @param stored the properties as stored (their order and form are kept). @param current them as parsed afresh.
 * @returns the stored properties with the new descriptions.
 */
function checkProperties(stored: PropertyDef[], current: PropertyDef[], next: PropertyDef[]): PropertyDef[] {
  if (current.length !== next.length) throw unprocessable(PROPERTIES_IMMUTABLE);
  const byName = new Map(next.map((p) => [p.name, p]));
  for (const p of [...current].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const n = byName.get(p.name);
    if (!n) throw unprocessable(PROPERTIES_IMMUTABLE);
    for (const [module, cfg] of Object.entries(p.moduleConfig ?? {})) {
      if (!n.moduleConfig || !(module in n.moduleConfig)) throw unprocessable(`property ${JSON.stringify(p.name)}: module ${JSON.stringify(module)} configuration was removed`);
      if (!same(cfg, n.moduleConfig[module])) throw unprocessable(`property ${JSON.stringify(p.name)}: module ${JSON.stringify(module)} configuration cannot be updated`);
    }
    if (!same(withoutDescriptions(p), withoutDescriptions(n))) throw unprocessable(`property ${JSON.stringify(p.name)}: ${PROPERTIES_IMMUTABLE}`);
  }
  return stored.map((p) => withDescriptionsOf(p, byName.get(p.name)!));
}

/** A property without its description or its nested properties' (and without module config, compared apart). */
function withoutDescriptions(p: PropertyDef): unknown {
  const { description: _d, moduleConfig: _m, nestedProperties, ...rest } = p;
  return nestedProperties ? { ...rest, nestedProperties: nestedProperties.map(withoutDescriptions) } : rest;
}

/** `p` with the descriptions of `from` (same shape), nested ones included. */
function withDescriptionsOf(p: PropertyDef, from: PropertyDef): PropertyDef {
  const out: PropertyDef = { ...p };
  if (from.description !== undefined) out.description = from.description;
  else delete out.description;
  if (p.nestedProperties) out.nestedProperties = p.nestedProperties.map((n) => withDescriptionsOf(n, from.nestedProperties?.find((f) => f.name === n.name) ?? n));
  return out;
}

/** Inverted index settings Weaviate keeps: IndexPropertyLength and IndexNullState. */
function checkInverted(current: Record<string, unknown>, next: Record<string, unknown>): void {
  if (current.indexPropertyLength !== next.indexPropertyLength) throw unprocessable("inverted index config: IndexPropertyLength cannot be changed when updating a schema");
  if (current.indexNullState !== next.indexNullState) throw unprocessable("inverted index config: IndexNullState cannot be changed when updating a schema");
}
