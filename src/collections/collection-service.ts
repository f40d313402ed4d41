import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { CollectionStore, ObjectWriteResult, StoredObject, StoredReference } from "../store/collection-store.js";
import { CollectionError, unprocessable } from "./errors.js";
import { parseEnvelope, validateProperties, vectorizerText, type InlineReference, type ObjectEnvelope } from "./objects.js";
import { beaconClass, mergeReferences, parseSourceBeacon, parseTargetBeacon } from "./references.js";
import {
  autoClass,
  inferDataType,
  isReferenceType,
  normalizeClassName,
  normalizePropertyName,
  parseClass,
  parseProperty,
  VECTORIZER,
  vectorizerOf,
  type ClassDef,
  type PropertyDef,
} from "./schema.js";
import { exactSearch, openVectorIndex, type SearchHit, type VectorIndex } from "./vector-index.js";
import { compileWhere, type Predicate } from "./where-filter.js";

/** What the vectorizer needs from the engine: embeddings through the provider serving a model, inside its rate limits. */
export interface Embedder {
  embedTexts(model: string, texts: string[], signal?: AbortSignal): Promise<number[][]>;
}

/** Where problems are reported (a pino logger fits). */
export interface CollectionLog {
  warn(obj: object, msg: string): void;
}

export interface CollectionServiceOptions {
  store: CollectionStore;
  embedder: Embedder;
  /** Folder of the saved vector indexes; null keeps them in memory only. */
  indexDir: string | null;
  /** Create unknown classes and properties on import, types inferred (Weaviate's default: on). */
  autoSchema?: boolean;
  log?: CollectionLog;
}

/** An object as the API renders it. */
export interface ObjectView {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  vector?: number[];
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
}

/** The outcome of one object of a batch: the object echoed, and null or the reason it failed. */
export interface ObjectResult {
  object: Record<string, unknown>;
  error: string | null;
}

/** The outcome of one reference of a batch. */
export interface ReferenceResult {
  from: unknown;
  to: unknown;
  error: string | null;
}

/** A search hit with its object. `distance`/`certainty` are null without a vector search. */
export interface SearchResult {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  vector: number[] | null;
  distance: number | null;
  certainty: number | null;
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
}

/** A search: at most one of `vector`, `concepts` (embedded with the class's vectorizer) and `nearObject`. */
export interface SearchQuery {
  class: string;
  vector?: number[];
  concepts?: string[];
  nearObject?: string;
  where?: unknown;
  limit: number;
  offset?: number;
  /** Cursor of a listing without search: objects after this id. */
  after?: string;
  /** Largest distance returned. */
  distance?: number;
  /** Smallest certainty returned (cosine only). */
  certainty?: number;
  includeVector?: boolean;
}

/** `DELETE /v1/batch/objects`. */
export interface DeleteQuery {
  class: string;
  where: unknown;
  dryRun: boolean;
  verbose: boolean;
}

export interface DeleteResult {
  matches: number;
  limit: number;
  successful: number;
  failed: number;
  objects: { id: string; status: "SUCCESS" | "DRYRUN" | "FAILED"; errors?: { error: { message: string }[] } }[];
}

/** Most objects a batch delete handles in one call (Weaviate's QUERY_MAXIMUM_RESULTS). */
export const DELETE_LIMIT = 10_000;
/** Texts per embeddings call. */
const EMBED_CHUNK = 64;
/** Embedding calls in flight per batch request (the engine's limiter paces them further). */
const EMBED_CONCURRENCY = 4;
/** With a `where` filter that leaves at most this many objects, the vector search is exact over them. */
const EXACT_FILTERED_MAX = 2_000;
/** Window of `ratePerSecond`, seconds. */
const RATE_WINDOW_S = 5;

/** Runs async sections one at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Objects accepted but not yet stored and indexed, and objects finished per second over the last few seconds. */
class BatchStats {
  private pending = 0;
  private readonly perSecond = new Map<number, number>();
  private busySince = 0;
  private lastDone = 0;

  accept(n: number): void {
    this.pending += n;
  }

  finish(n: number, now = Date.now()): void {
    this.pending -= n;
    if (now - this.lastDone > RATE_WINDOW_S * 1000) this.busySince = now;
    this.lastDone = now;
    const sec = Math.floor(now / 1000);
    this.perSecond.set(sec, (this.perSecond.get(sec) ?? 0) + n);
    for (const s of this.perSecond.keys()) if (s <= sec - RATE_WINDOW_S) this.perSecond.delete(s);
  }

  get(now = Date.now()): { queueLength: number; ratePerSecond: number } {
    const sec = Math.floor(now / 1000);
    let done = 0;
    for (const [s, n] of this.perSecond) if (s > sec - RATE_WINDOW_S) done += n;
    const windowS = Math.max(1, Math.min(RATE_WINDOW_S, (now - this.busySince) / 1000));
    return { queueLength: this.pending, ratePerSecond: done === 0 ? 0 : Math.round(done / windowS) };
  }
}

/** A class in memory: its definition, vector index and object count. */
interface ClassState {
  def: ClassDef;
  index: VectorIndex;
  count: number;
  lastWrite: number;
  lastSave: number;
}

/** One object of a batch on its way through validation, vectorization and the write. */
interface Item {
  raw: unknown;
  env: ObjectEnvelope | null;
  state: ClassState | null;
  properties: Record<string, unknown>;
  references: InlineReference[];
  vector: Float32Array | null;
  vectorGiven: boolean;
  /** What the vectorizer embeds. */
  text?: string;
  error: string | null;
  written?: ObjectWriteResult;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const notPresent = (cls: string) => `class '${cls}' not present in schema`;

/**
 * Weaviate-style collections over a CollectionStore: schema, batch import with per-object results (validation,
 * auto-schema, vectorization through the engine, idempotent per uuid), references, batch delete, objects by id,
 * vector and filtered search, and the batch statistics `/v1/nodes` reports.
 *
 * Schema changes run one at a time (schema lock); writes to objects and indexes too (write lock). Vectorization
 * runs outside both, so concurrent batch requests embed in parallel.
 */
export class CollectionService {
  private readonly classes = new Map<string, ClassState>();
  private readonly schemaLock = new Mutex();
  private readonly writeLock = new Mutex();
  private readonly stats = new BatchStats();
  private readonly autoSchema: boolean;
  private saveTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly options: CollectionServiceOptions) {
    this.autoSchema = options.autoSchema ?? true;
  }

  /** Loads every class and its vector index (saved, or rebuilt from the stored vectors). */
  static async open(options: CollectionServiceOptions): Promise<CollectionService> {
    const service = new CollectionService(options);
    if (options.indexDir) await mkdir(options.indexDir, { recursive: true });
    const counts = await options.store.countObjects();
    for (const stored of await options.store.listClasses()) {
      const def = stored.definition as ClassDef;
      const index = await service.openIndex(def, stored.version);
      service.classes.set(def.class, { def, index, count: counts.get(def.class) ?? 0, lastWrite: 0, lastSave: Date.now() });
    }
    service.saveTimer = setInterval(() => void service.saveIdle(), 2_000);
    service.saveTimer.unref();
    return service;
  }

  private async openIndex(def: ClassDef, version: number): Promise<VectorIndex> {
    const store = this.options.store;
    return openVectorIndex({
      path: this.options.indexDir ? join(this.options.indexDir, `${def.class}.hnsw`) : null,
      indexType: def.vectorIndexType,
      config: def.vectorIndexConfig,
      version,
      live: await store.countVectors(def.class),
      stored: async function* () {
        for (let after = 0; ; ) {
          const page = await store.scanObjects(def.class, after, 1000, true);
          if (page.length === 0) return;
          for (const o of page) if (o.vector) yield { label: o.seq, vector: o.vector };
          after = page.at(-1)!.seq;
        }
      },
    });
  }

  /** Saves indexes idle for a second (or unsaved for 30 s while writes go on). */
  private async saveIdle(): Promise<void> {
    const now = Date.now();
    for (const [name, st] of this.classes) {
      if (!st.index.dirty || (now - st.lastWrite < 1_000 && now - st.lastSave < 30_000)) continue;
      await this.writeLock.run(() => this.saveIndex(name, st)).catch((err: Error) => this.options.log?.warn({ err, class: name }, "saving the vector index failed"));
    }
  }

  /** Saves one index with the store version it reflects. Call inside the write lock. */
  private async saveIndex(name: string, st: ClassState): Promise<void> {
    if (this.classes.get(name) !== st || !st.index.dirty) return;
    const version = (await this.options.store.listClasses()).find((c) => c.name === name)?.version ?? 0;
    await st.index.save(version);
    st.lastSave = Date.now();
  }

  /** Saves every index and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.saveTimer) clearInterval(this.saveTimer);
    await this.writeLock.run(async () => {
      for (const [name, st] of this.classes) await this.saveIndex(name, st);
    });
    await this.options.store.close();
  }

  // ---------------------------------------------------------------- schema

  listClasses(): ClassDef[] {
    return [...this.classes.values()].map((s) => s.def);
  }

  getClass(name: string): ClassDef | null {
    return this.classes.get(normalizeClassName(name))?.def ?? null;
  }

  /** `POST /v1/schema`. @throws CollectionError 422 when invalid or when the class exists. */
  async createClass(body: unknown): Promise<ClassDef> {
    return this.schemaLock.run(async () => {
      const def = parseClass(body, (n) => this.classes.has(n));
      if (this.classes.has(def.class)) throw unprocessable(`class name "${def.class}" already exists`);
      await this.options.store.putClass(def.class, def);
      this.classes.set(def.class, { def, index: await this.openIndex(def, 0), count: 0, lastWrite: 0, lastSave: Date.now() });
      return def;
    });
  }

  /** `POST /v1/schema/{class}/properties`. @throws CollectionError 404/422. */
  async addProperty(className: string, body: unknown): Promise<PropertyDef> {
    return this.schemaLock.run(async () => {
      const st = this.classes.get(normalizeClassName(className));
      if (!st) throw new CollectionError(404, notPresent(normalizeClassName(className)));
      const prop = parseProperty(body, st.def.class, (n) => this.classes.has(n));
      if (st.def.properties.some((p) => p.name === prop.name)) throw unprocessable(`class "${st.def.class}": conflict for property "${prop.name}": already in use or provided multiple times`);
      const def = { ...st.def, properties: [...st.def.properties, prop] };
      await this.options.store.putClass(def.class, def);
      st.def = def;
      return prop;
    });
  }

  /** `DELETE /v1/schema/{class}`: the class, its objects and its index. @returns whether it existed. */
  async deleteClass(name: string): Promise<boolean> {
    return this.schemaLock.run(() =>
      this.writeLock.run(async () => {
        const cls = normalizeClassName(name);
        const st = this.classes.get(cls);
        if (!st) return false;
        await this.options.store.deleteClass(cls);
        this.classes.delete(cls);
        await st.index.drop();
        return true;
      }),
    );
  }

  // ---------------------------------------------------------------- batch import

  /**
   * `POST /v1/batch/objects`: validates every object, creates unknown classes and properties (auto-schema),
   * vectorizes objects without a vector in classes with a vectorizer, and stores the valid ones in one transaction
   * (an existing uuid is replaced; the same uuid twice in the batch: the last wins).
   * @returns one result per object, in input order.
   * @throws CollectionError 422 for an empty list.
   */
  async batchObjects(input: unknown[]): Promise<ObjectResult[]> {
    if (input.length === 0) throw unprocessable("invalid param 'objects': cannot be empty, need at least one object for batching");
    this.stats.accept(input.length);
    try {
      const items: Item[] = input.map((raw) => {
        const env = parseEnvelope(raw);
        const error = "error" in env ? env.error : null;
        const ok = "error" in env ? null : env;
        return { raw, env: ok, state: null, properties: {}, references: [], vector: ok?.vector ?? null, vectorGiven: !!ok?.vector, error };
      });
      await this.schemaLock.run(() => this.resolveSchema(items));
      await this.vectorize(items);
      await this.writeLock.run(() => this.write(items));
      return items.map((item) => ({ object: this.echo(item), error: item.error }));
    } finally {
      this.stats.finish(input.length);
    }
  }

  /** Resolves each object's class (creating it and its missing properties with auto-schema) and validates its properties. */
  private async resolveSchema(items: Item[]): Promise<void> {
    const changed = new Set<ClassState>();
    for (const item of items) {
      if (item.error || !item.env) continue;
      const env = item.env;
      let st = this.classes.get(env.class);
      if (!st) {
        if (!this.autoSchema) {
          item.error = notPresent(env.class);
          continue;
        }
        let def: ClassDef;
        try {
          def = autoClass(env.class);
        } catch (err) {
          item.error = (err as Error).message;
          continue;
        }
        st = { def, index: await this.openIndex(def, 0), count: 0, lastWrite: 0, lastSave: Date.now() };
        this.classes.set(def.class, st);
        changed.add(st);
      }
      if (this.autoSchema) {
        const error = this.addMissingProperties(st, env.properties);
        if (error) {
          item.error = error;
          continue;
        }
        if (st.def.properties.length !== this.persistedProps.get(st)) changed.add(st);
      }
      item.state = st;
      const valid = validateProperties(st.def, env.properties);
      if ("error" in valid) item.error = valid.error;
      else {
        item.properties = valid.properties;
        item.references = valid.references;
      }
    }
    for (const st of changed) {
      await this.options.store.putClass(st.def.class, st.def);
      this.persistedProps.set(st, st.def.properties.length);
    }
  }

  /** Property counts as last persisted, to tell when auto-schema changed a class. */
  private readonly persistedProps = new WeakMap<ClassState, number>();

  /** Auto-schema: adds the properties an object has and its class lacks, types inferred. @returns an error message, or null. */
  private addMissingProperties(st: ClassState, properties: Record<string, unknown>): string | null {
    if (!this.persistedProps.has(st)) this.persistedProps.set(st, st.def.properties.length);
    for (const [key, value] of Object.entries(properties)) {
      const name = normalizePropertyName(key);
      if (st.def.properties.some((p) => p.name === name)) continue;
      const inferred = inferDataType(value, beaconClass);
      if (inferred === null) continue;
      if ("error" in inferred) return `property '${name}' of class '${st.def.class}': ${inferred.error}`;
      try {
        const prop = parseProperty({ name: key, dataType: inferred.dataType }, st.def.class, (n) => n === st.def.class || this.classes.has(n));
        st.def = { ...st.def, properties: [...st.def.properties, prop] };
      } catch (err) {
        return (err as Error).message;
      }
    }
    return null;
  }

  /** Embeds the objects that need a vector, in chunks through the engine; a failed chunk fails its objects with the reason. */
  private async vectorize(items: Item[]): Promise<void> {
    const byModel = new Map<string, Item[]>();
    for (const item of items) {
      if (item.error || item.vector || !item.state) continue;
      const v = vectorizerOf(item.state.def);
      if (!v) continue;
      const text = vectorizerText(item.state.def, item.properties, v.vectorizeClassName);
      if (!text.trim()) {
        item.error = `${VECTORIZER}: nothing to vectorize: the object has no text properties and vectorizeClassName is false`;
        continue;
      }
      item.text = text;
      byModel.set(v.model, [...(byModel.get(v.model) ?? []), item]);
    }
    const chunks: { model: string; items: Item[] }[] = [];
    for (const [model, list] of byModel) for (let i = 0; i < list.length; i += EMBED_CHUNK) chunks.push({ model, items: list.slice(i, i + EMBED_CHUNK) });
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        try {
          const vectors = await this.options.embedder.embedTexts(chunk.model, chunk.items.map((i) => i.text!));
          chunk.items.forEach((item, j) => (item.vector = Float32Array.from(vectors[j]!)));
        } catch (err) {
          for (const item of chunk.items) item.error = `${VECTORIZER}: ${(err as Error).message}`;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EMBED_CONCURRENCY, chunks.length) }, worker));
  }

  /** Checks vector lengths, then stores the valid objects (last of each uuid) in one transaction and indexes them. */
  private async write(items: Item[]): Promise<void> {
    const dims = new Map<ClassState, number>();
    const last = new Map<string, Item>();
    for (const item of items) {
      if (item.error || !item.env || !item.state) continue;
      const st = item.state;
      if (this.classes.get(st.def.class) !== st) {
        item.error = notPresent(st.def.class);
        continue;
      }
      if (item.vector) {
        const want = st.index.dims ?? dims.get(st);
        if (want === undefined) dims.set(st, item.vector.length);
        else if (want !== item.vector.length) {
          item.error = `new node has a vector with length ${item.vector.length}. Existing nodes have vectors with length ${want}: vector dimensions do not match the index dimensions`;
          continue;
        }
      }
      last.set(`${st.def.class}/${item.env.id}`, item);
    }
    const winners = [...last.values()];
    if (winners.length === 0) return;
    const now = Date.now();
    const written = await this.options.store.upsertObjects(
      winners.map((i) => ({ class: i.state!.def.class, id: i.env!.id, properties: i.properties, vector: i.vector, references: i.references })),
      now,
    );
    winners.forEach((item, k) => {
      const w = written[k]!;
      const st = item.state!;
      if (w.created) st.count++;
      if (item.vector) st.index.upsert(w.seq, item.vector, !w.hadVector);
      else if (w.hadVector) st.index.remove(w.seq);
      st.lastWrite = now;
    });
    // Earlier duplicates were overwritten by the winner: they report its times.
    const byKey = new Map(winners.map((i, k) => [`${i.state!.def.class}/${i.env!.id}`, written[k]!]));
    for (const item of items) if (!item.error && item.env && item.state) item.written = byKey.get(`${item.state.def.class}/${item.env.id}`);
  }

  /** The object as a batch result echoes it. */
  private echo(item: Item): Record<string, unknown> {
    if (!item.env) return isObject(item.raw) ? { ...item.raw } : {};
    const out: Record<string, unknown> = { class: item.env.class, id: item.env.id };
    if (item.error || !item.written) {
      out.properties = item.env.properties;
    } else {
      out.properties = mergeReferences(item.properties, item.references.map((r) => ({ from_class: item.env!.class, from_id: item.env!.id, ...r })));
      out.creationTimeUnix = item.written.created_at;
      out.lastUpdateTimeUnix = item.written.updated_at;
    }
    if (item.vectorGiven) out.vector = (item.raw as { vector: unknown }).vector;
    return out;
  }

  // ---------------------------------------------------------------- references

  /**
   * `POST /v1/batch/references`: validates each `{from, to}` (source class, reference property, target class) and
   * adds the valid ones in one transaction. @returns one result per reference, in input order.
   * @throws CollectionError 422 for an empty list.
   */
  async batchReferences(input: unknown[]): Promise<ReferenceResult[]> {
    if (input.length === 0) throw unprocessable("invalid params: length cannot be 0, need at least one reference for batching");
    return this.writeLock.run(async () => {
      const results: ReferenceResult[] = [];
      const valid: StoredReference[] = [];
      for (const raw of input) {
        const ref = isObject(raw) ? raw : {};
        const result: ReferenceResult = { from: ref.from, to: ref.to, error: null };
        results.push(result);
        const checked = await this.checkReference(ref);
        if (typeof checked === "string") result.error = checked;
        else valid.push(checked);
      }
      if (valid.length) await this.options.store.addReferences(valid);
      return results;
    });
  }

  /** @returns the reference to store, or why it cannot be. */
  private async checkReference(ref: Record<string, unknown>): Promise<StoredReference | string> {
    const source = parseSourceBeacon(ref.from);
    const target = parseTargetBeacon(ref.to);
    const errors = ["error" in source ? source.error : null, "error" in target ? target.error : null].filter((e): e is string => e !== null);
    if (errors.length) return errors.join(", ");
    if ("error" in source || "error" in target) return "invalid reference";
    if (typeof ref.tenant === "string" && ref.tenant) return `class ${source.class} has multi-tenancy disabled, but request was with tenant`;
    const st = this.classes.get(source.class);
    if (!st) return `source class "${source.class}" not found in schema`;
    const prop = st.def.properties.find((p) => p.name === source.property);
    if (!prop) return `property ${source.property} does not exist for class ${source.class}`;
    if (!isReferenceType(prop.dataType)) return `property ${source.property} of class ${source.class} is not a cross-reference property (its data type is ${prop.dataType.join(", ")})`;
    let toClass = target.class;
    if (toClass === null) {
      if (prop.dataType.length !== 1) return "multi-target references require the class name in the target beacon url";
      toClass = prop.dataType[0]!;
    }
    if (!this.classes.has(toClass)) return `target class "${toClass}" not found in schema`;
    if (!prop.dataType.includes(toClass)) return `target class "${toClass}" is not a valid target of property ${source.property} of class ${source.class} (it references ${prop.dataType.join(", ")})`;
    if (!(await this.options.store.getObject(source.class, source.id, false))) return `source object ${source.class}/${source.id} not found`;
    return { from_class: source.class, from_id: source.id, property: source.property, to_class: toClass, to_id: target.id };
  }

  // ---------------------------------------------------------------- objects

  /** `GET /v1/objects/{class}/{id}` (or any class when `cls` is null), with its references. @returns null when absent. */
  async getObject(cls: string | null, id: string, includeVector: boolean): Promise<ObjectView | null> {
    const lower = id.toLowerCase();
    const name = cls === null ? (await this.options.store.classesOfObject(lower))[0] : normalizeClassName(cls);
    if (!name || !this.classes.has(name)) return null;
    const o = await this.options.store.getObject(name, lower, includeVector);
    if (!o) return null;
    const refs = await this.options.store.referencesFrom(name, [lower]);
    return this.view(o, refs, includeVector);
  }

  private view(o: StoredObject, refs: StoredReference[], includeVector: boolean): ObjectView {
    const out: ObjectView = { class: o.class, id: o.id, properties: mergeReferences(o.properties, refs), creationTimeUnix: o.created_at, lastUpdateTimeUnix: o.updated_at };
    if (includeVector) out.vector = o.vector ? Array.from(o.vector) : [];
    return out;
  }

  /** `GET /v1/objects?class=…`: objects of a class in insertion order, after a cursor id. */
  async listObjects(cls: string, limit: number, after: string | undefined, includeVector: boolean): Promise<{ objects: ObjectView[]; total: number }> {
    const st = this.requireClass(cls);
    const hits = await this.search({ class: st.def.class, limit, after, includeVector });
    const refs = await this.options.store.referencesFrom(st.def.class, hits.map((h) => h.id));
    const objects = hits.map((h) => {
      const view: ObjectView = { class: h.class, id: h.id, properties: mergeReferences(h.properties, refs.filter((r) => r.from_id === h.id)), creationTimeUnix: h.creationTimeUnix, lastUpdateTimeUnix: h.lastUpdateTimeUnix };
      if (includeVector) view.vector = h.vector ?? [];
      return view;
    });
    return { objects, total: st.count };
  }

  /** `DELETE /v1/objects/{class}/{id}`. @returns whether it existed. */
  async deleteObject(cls: string, id: string): Promise<boolean> {
    const st = this.classes.get(normalizeClassName(cls));
    if (!st) return false;
    return this.writeLock.run(async () => (await this.removeObjects(st, [id.toLowerCase()])).length === 1);
  }

  /** Deletes objects of a class from the store and the index. Call inside the write lock. @returns the ids deleted. */
  private async removeObjects(st: ClassState, ids: string[]): Promise<string[]> {
    const { deleted, vectorSeqs } = await this.options.store.deleteObjects(st.def.class, ids);
    for (const seq of vectorSeqs) st.index.remove(seq);
    st.count -= deleted.length;
    st.lastWrite = Date.now();
    return deleted;
  }

  /**
   * `DELETE /v1/batch/objects`: deletes up to DELETE_LIMIT objects of a class matching `where` (or only counts them
   * with `dryRun`). `objects` lists each matched object when verbose, else only the failed ones.
   */
  async deleteObjects(q: DeleteQuery): Promise<DeleteResult> {
    const st = this.requireClass(q.class);
    if (q.where === undefined || q.where === null) throw unprocessable("validate: where filter cannot be empty: give match.where");
    const predicate = compileWhere(q.where, st.def);
    return this.writeLock.run(async () => {
      const ids: string[] = [];
      await this.scan(st, predicate, (o) => {
        ids.push(o.id);
        return ids.length < DELETE_LIMIT;
      });
      const objects: DeleteResult["objects"] = [];
      if (q.dryRun) {
        if (q.verbose) for (const id of ids) objects.push({ id, status: "DRYRUN" });
        return { matches: ids.length, limit: DELETE_LIMIT, successful: 0, failed: 0, objects };
      }
      const deleted = new Set(await this.removeObjects(st, ids));
      for (const id of ids) {
        if (deleted.has(id)) {
          if (q.verbose) objects.push({ id, status: "SUCCESS" });
        } else objects.push({ id, status: "FAILED", errors: { error: [{ message: `object ${st.def.class}/${id} was not found` }] } });
      }
      return { matches: ids.length, limit: DELETE_LIMIT, successful: deleted.size, failed: ids.length - deleted.size, objects };
    });
  }

  // ---------------------------------------------------------------- search

  private requireClass(cls: string): ClassState {
    const st = this.classes.get(normalizeClassName(cls));
    if (!st) throw unprocessable(notPresent(normalizeClassName(cls)));
    return st;
  }

  /** Objects of a class in seq order that match `predicate`, until `visit` returns false. */
  private async scan(st: ClassState, predicate: Predicate | null, visit: (o: StoredObject) => boolean, afterSeq = 0, withVectors = false): Promise<void> {
    for (let after = afterSeq; ; ) {
      const page = await this.options.store.scanObjects(st.def.class, after, 1000, withVectors);
      if (page.length === 0) return;
      for (const o of page) if ((!predicate || predicate(o)) && !visit(o)) return;
      after = page.at(-1)!.seq;
    }
  }

  /**
   * Nearest objects to a vector (given, embedded from `concepts`, or another object's), optionally filtered by
   * `where` and a largest distance / smallest certainty; without any of them, a listing in insertion order.
   * @throws CollectionError 422 for an unknown class, a bad filter, a vector of the wrong length, nearText without a vectorizer.
   */
  async search(q: SearchQuery): Promise<SearchResult[]> {
    const st = this.requireClass(q.class);
    const cls = st.def.class;
    const predicate = q.where === undefined || q.where === null ? null : compileWhere(q.where, st.def);
    const offset = q.offset ?? 0;
    const want = offset + q.limit;
    if (q.limit <= 0) return [];

    let query: Float32Array | null = null;
    if (q.vector) query = Float32Array.from(q.vector);
    else if (q.concepts) {
      const v = vectorizerOf(st.def);
      if (!v) throw unprocessable(`nearText: class ${cls} has no vectorizer (it was created with vectorizer "${st.def.vectorizer}"): search it with nearVector`);
      const text = q.concepts.join(" ");
      let vectors: number[][];
      try {
        vectors = await this.options.embedder.embedTexts(v.model, [text]);
      } catch (err) {
        throw new CollectionError(500, `nearText: vectorizing the concepts with ${v.model} failed: ${(err as Error).message}`);
      }
      query = Float32Array.from(vectors[0]!);
    } else if (q.nearObject) {
      const o = await this.options.store.getObject(cls, q.nearObject.toLowerCase(), true);
      if (!o) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} not found`);
      if (!o.vector) throw unprocessable(`nearObject: object ${cls}/${q.nearObject} has no vector`);
      query = o.vector;
    }

    if (!query) {
      // A listing: insertion order, after a cursor.
      let afterSeq = 0;
      if (q.after) {
        const o = await this.options.store.getObject(cls, q.after.toLowerCase(), false);
        if (!o) throw unprocessable(`cursor: object ${cls}/${q.after} not found`);
        afterSeq = o.seq;
      }
      const found: StoredObject[] = [];
      await this.scan(st, predicate, (o) => (found.push(o), found.length < want), afterSeq, q.includeVector === true);
      return found.slice(offset).map((o) => this.result(o, null, st));
    }

    if (st.index.dims !== null && query.length !== st.index.dims) {
      throw unprocessable(`vector search: the query vector has length ${query.length}, but the vectors of class ${cls} have length ${st.index.dims}`);
    }
    const distance = st.def.vectorIndexConfig.distance;
    let hits: SearchHit[];
    if (!predicate) hits = st.index.search(query, want);
    else {
      const allowed: number[] = [];
      await this.scan(st, predicate, (o) => (allowed.push(o.seq), true));
      if (allowed.length <= EXACT_FILTERED_MAX) {
        const withVectors = await this.options.store.objectsBySeq(cls, allowed, true);
        hits = exactSearch(distance, query, want, withVectors.filter((o) => o.vector).map((o) => [o.seq, o.vector!] as [number, Float32Array]));
      } else {
        const set = new Set(allowed);
        hits = st.index.search(query, want, (label) => set.has(label));
      }
    }
    let maxDistance = q.distance ?? Infinity;
    if (q.certainty !== undefined) {
      if (distance !== "cosine") throw unprocessable(`can't compute and return certainty when vector index is configured with ${distance} distance`);
      maxDistance = Math.min(maxDistance, 2 * (1 - q.certainty));
    }
    hits = hits.filter((h) => h.distance <= maxDistance + 1e-6).slice(offset);
    const objects = new Map((await this.options.store.objectsBySeq(cls, hits.map((h) => h.label), q.includeVector === true)).map((o) => [o.seq, o]));
    return hits.filter((h) => objects.has(h.label)).map((h) => this.result(objects.get(h.label)!, h.distance, st));
  }

  private result(o: StoredObject, distance: number | null, st: ClassState): SearchResult {
    return {
      class: o.class,
      id: o.id,
      properties: o.properties,
      vector: o.vector ? Array.from(o.vector) : null,
      distance,
      certainty: distance !== null && st.def.vectorIndexConfig.distance === "cosine" ? 1 - distance / 2 : null,
      creationTimeUnix: o.created_at,
      lastUpdateTimeUnix: o.updated_at,
    };
  }

  /** Number of objects of a class matching `where` (all without one). */
  async count(cls: string, where?: unknown): Promise<number> {
    const st = this.requireClass(cls);
    if (where === undefined || where === null) return st.count;
    const predicate = compileWhere(where, st.def);
    let n = 0;
    await this.scan(st, predicate, () => (n++, true));
    return n;
  }

  // ---------------------------------------------------------------- statistics

  /** `/v1/nodes` batchStats: objects accepted but not yet stored and indexed, and objects finished per second lately. */
  batchStats(): { queueLength: number; ratePerSecond: number } {
    return this.stats.get();
  }

  /** Object counts per class (the "shards" of `/v1/nodes`). */
  shardStats(): { class: string; objectCount: number; vectorCount: number }[] {
    return [...this.classes.values()].map((s) => ({ class: s.def.class, objectCount: s.count, vectorCount: s.index.size }));
  }
}
