import type { ObjectWriteResult } from "../store/collection-store.js";
import { forbiddenMessage, type Caller } from "./access.js";
import { type CollectionContext, isObject, notPresent, type ClassState } from "./collection-context.js";
import type { ObjectResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { parseEnvelope, validateProperties, vectorizerText, type InlineReference, type ObjectEnvelope } from "./objects.js";
import { beaconClass, mergeReferences } from "./references.js";
import { autoClass, inferDataType, normalizePropertyName, parseProperty, vectorSlots, type ClassDef } from "./schema.js";
import { DEFAULT_VECTOR, type VectorSlot } from "./vector-config.js";
import { embedForSlot, vectorizerKey } from "./vectorizers.js";
import { invertedIndexWritten } from "./inverted-index.js";
import type { VectorEntry, VectorIndex } from "./vector-index.js";
import { setImmediate as yieldToLoop } from "node:timers/promises";

/*
 * Batch import (`POST /v1/batch/objects`): validation, auto-schema, vectorization through the engine, and the write.
 */

/** Texts per embeddings call. */
const EMBED_CHUNK = 64;
/** Embedding calls in flight per batch request (the engine's limiter paces them further). */
const EMBED_CONCURRENCY = 4;

/** Whether class `name` exists and `caller` may read it (a reference target must be). */
function readableClass(ctx: CollectionContext, caller: Caller, name: string): boolean {
  const st = ctx.classes.get(name);
  return st !== undefined && ctx.allows(caller, st, "read");
}

/**
 * Objects handled between two yields to the event loop (a few ms of work each), so a batch of any size never blocks
 * other requests for long.
 */
const SLICE = 1_000;

/** One object of a batch on its way through validation, vectorization and the write. */
interface Item {
  raw: unknown;
  env: ObjectEnvelope | null;
  state: ClassState | null;
  properties: Record<string, unknown>;
  references: InlineReference[];
  /** The `default` (legacy) vector. */
  vector: Float32Array | null;
  /** The other named vectors. */
  named: Record<string, Float32Array>;
  vectorGiven: boolean;
  error: string | null;
  written?: ObjectWriteResult;
}

/**
 * `POST /v1/batch/objects`: validates every object, creates unknown classes and properties (auto-schema),
 * vectorizes objects without a vector in classes with a vectorizer, and stores the valid ones in transactions of
 * SLICE objects (an existing uuid is replaced; the same uuid twice in the batch: the last wins). Work is done in
 * slices with the event loop free between them, and the HNSW inserts in the index worker.
 * @returns one result per object, in input order.
 * @throws CollectionError 422 for an empty list.
 */
export async function batchObjects(ctx: CollectionContext, caller: Caller, input: unknown[]): Promise<ObjectResult[]> {
  if (input.length === 0) throw unprocessable("invalid param 'objects': cannot be empty, need at least one object for batching");
  ctx.stats.accept(input.length);
  try {
    const items: Item[] = [];
    for (const raw of input) {
      if (items.length > 0 && items.length % SLICE === 0) await yieldToLoop();
      const env = parseEnvelope(raw);
      const error = "error" in env ? env.error : null;
      const ok = "error" in env ? null : env;
      items.push({ raw, env: ok, state: null, properties: {}, references: [], vector: ok?.vector ?? null, named: { ...(ok?.vectors ?? {}) }, vectorGiven: !!ok?.vector, error });
    }
    await ctx.schemaLock.run(() => resolveSchema(ctx, caller, items));
    await vectorize(ctx, items);
    await ctx.writeLock.run(() => write(ctx, items));
    const results: ObjectResult[] = [];
    for (const item of items) {
      if (results.length > 0 && results.length % SLICE === 0) await yieldToLoop();
      results.push({ object: echo(item), error: item.error });
    }
    return results;
  } finally {
    ctx.stats.finish(input.length);
  }
}

/**
 * Resolves each object's class (creating it, owned by `caller`, and its missing properties with auto-schema) and
 * validates its properties. An object of a class the caller may not write fails alone, with Weaviate's 403 message.
 */
async function resolveSchema(ctx: CollectionContext, caller: Caller, items: Item[]): Promise<void> {
  const changed = new Set<ClassState>();
  for (const [n, item] of items.entries()) {
    if (n > 0 && n % SLICE === 0) await yieldToLoop();
    if (item.error || !item.env) continue;
    const env = item.env;
    let st = ctx.classes.get(env.class);
    if (!st) {
      if (!ctx.autoSchema) {
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
      const { index, named } = await ctx.openIndexes(def, 0);
      st = { def, owner: caller, index, named, count: 0, lastWrite: 0, lastSave: Date.now() };
      ctx.classes.set(def.class, st);
      changed.add(st);
    }
    if (!ctx.allows(caller, st, "write")) {
      item.error = forbiddenMessage("write", st.def.class);
      continue;
    }
    if (ctx.autoSchema) {
      const error = addMissingProperties(ctx, caller, st, env.properties);
      if (error) {
        item.error = error;
        continue;
      }
      if (st.def.properties.length !== ctx.persistedProps.get(st)) changed.add(st);
    }
    item.state = st;
    const vectorError = placeVectors(st.def, item);
    if (vectorError) {
      item.error = vectorError;
      continue;
    }
    const valid = validateProperties(st.def, env.properties);
    if ("error" in valid) item.error = valid.error;
    else {
      // A reference is a read of its target class: refused unless the caller may read it.
      const hidden = valid.references.find((r) => {
        const target = ctx.classes.get(r.to_class);
        return target !== undefined && !ctx.allows(caller, target, "read");
      });
      if (hidden) item.error = forbiddenMessage("read", hidden.to_class);
      item.properties = valid.properties;
      item.references = valid.references;
    }
  }
  for (const st of changed) {
    await ctx.options.store.putClass(st.def.class, st.def, st.owner);
    ctx.persistedProps.set(st, st.def.properties.length);
  }
}

/** Auto-schema: adds the properties an object has and its class lacks, types inferred. @returns an error message, or null. */
function addMissingProperties(ctx: CollectionContext, caller: Caller, st: ClassState, properties: Record<string, unknown>): string | null {
  if (!ctx.persistedProps.has(st)) ctx.persistedProps.set(st, st.def.properties.length);
  for (const [key, value] of Object.entries(properties)) {
    const name = normalizePropertyName(key);
    if (st.def.properties.some((p) => p.name === name)) continue;
    const inferred = inferDataType(value, beaconClass);
    if (inferred === null) continue;
    if ("error" in inferred) return `property '${name}' of class '${st.def.class}': ${inferred.error}`;
    try {
      const prop = parseProperty({ name: key, ...inferred }, st.def.class, (n) => n === st.def.class || readableClass(ctx, caller, n));
      st.def = { ...st.def, properties: [...st.def.properties, prop] };
    } catch (err) {
      return (err as Error).message;
    }
  }
  return null;
}

/**
 * Puts an object's given vectors in its class's slots: named ones by name; the legacy `vector` is `default`, or the
 * only vector of a class with one named vector. @returns Weaviate's message when a name is not a vector of the class.
 */
function placeVectors(def: ClassDef, item: Item): string | null {
  const slots = vectorSlots(def);
  const names = new Set(slots.map((s) => s.name));
  for (const name of Object.keys(item.named)) {
    if (!names.has(name)) return `class ${def.class}: vector ${JSON.stringify(name)} is not a vector of this class (its vectors: ${[...names].join(", ")})`;
  }
  if (item.vector && !names.has(DEFAULT_VECTOR)) {
    if (slots.length !== 1) return `class ${def.class} has multiple vectors (${[...names].join(", ")}), but the object has a single unnamed vector: give them in 'vectors' by name`;
    item.named[slots[0]!.name] = item.vector;
    item.vector = null;
  }
  return null;
}

const hasSlotVector = (item: Item, slot: VectorSlot) => (slot.name === DEFAULT_VECTOR ? item.vector !== null : item.named[slot.name] !== undefined);

/**
 * Embeds the vectors objects lack in slots with a vectorizer (objects given a vector for a slot keep it), in chunks
 * through the engine, grouped by module and model; a failed chunk fails its objects with the reason.
 */
async function vectorize(ctx: CollectionContext, items: Item[]): Promise<void> {
  const groups = new Map<string, { slot: VectorSlot; jobs: { item: Item; text: string }[] }>();
  for (const item of items) {
    if (item.error || !item.state) continue;
    for (const slot of vectorSlots(item.state.def)) {
      const key = vectorizerKey(slot);
      if (!key || hasSlotVector(item, slot)) continue;
      const vectorizeClassName = slot.config.vectorizeClassName !== false;
      const text = vectorizerText(item.state.def, item.properties, vectorizeClassName, slot.module, slot.sourceProperties);
      if (!text.trim()) {
        item.error = `${slot.module}: nothing to vectorize for vector ${slot.name}: the object has no text in its source properties and vectorizeClassName is false`;
        break;
      }
      // Appended in place: copying the list for each object was quadratic (~300 ms of blocked loop at 8,000 objects).
      const g = groups.get(key);
      if (g) g.jobs.push({ item, text });
      else groups.set(key, { slot, jobs: [{ item, text }] });
    }
  }
  const chunks: { slot: VectorSlot; jobs: { item: Item; text: string }[] }[] = [];
  for (const { slot, jobs } of groups.values()) for (let i = 0; i < jobs.length; i += EMBED_CHUNK) chunks.push({ slot, jobs: jobs.slice(i, i + EMBED_CHUNK) });
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const { slot, jobs } = chunks[next++]!;
      const live = jobs.filter((j) => !j.item.error);
      if (live.length === 0) continue;
      try {
        const vectors = await embedForSlot(ctx.options.embedder, slot, live.map((j) => j.text));
        live.forEach(({ item }, j) => {
          const v = Float32Array.from(vectors[j]!);
          if (slot.name === DEFAULT_VECTOR) item.vector = v;
          else item.named[slot.name] = v;
        });
      } catch (err) {
        for (const { item } of live) item.error = `${slot.module}: ${(err as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(EMBED_CONCURRENCY, chunks.length) }, worker));
}

/** Checks vector lengths, then stores the valid objects (last of each uuid) in slices and indexes them. */
async function write(ctx: CollectionContext, items: Item[]): Promise<void> {
  const dims = new Map<string, number>();
  const last = new Map<string, Item>();
  for (const item of items) {
    if (item.error || !item.env || !item.state) continue;
    const st = item.state;
    if (ctx.classes.get(st.def.class) !== st) {
      item.error = notPresent(st.def.class);
      continue;
    }
    const given: [string, Float32Array][] = [...(item.vector ? ([[DEFAULT_VECTOR, item.vector]] as [string, Float32Array][]) : []), ...Object.entries(item.named)];
    const bad = given.find(([name, v]) => {
      const key = `${st.def.class}/${name}`;
      const want = ctx.indexOf(st, name).dims ?? dims.get(key);
      if (want === undefined) dims.set(key, v.length);
      else if (want !== v.length) {
        item.error = `new node has a vector with length ${v.length}. Existing nodes have vectors with length ${want}: vector dimensions do not match the index dimensions`;
        return true;
      }
      return false;
    });
    if (bad) continue;
    last.set(`${st.def.class}/${item.env.id}`, item);
  }
  const winners = [...last.values()];
  if (winners.length === 0) return;
  const now = Date.now();
  // Stored in slices, each its own transaction, with the event loop free between them (one transaction of 20,000
  // objects held it ~300 ms); the write lock keeps other writes out meanwhile. A failure leaves the earlier slices
  // stored, which a retry of the batch overwrites (objects are idempotent per uuid). Each slice is indexed in the
  // index worker while the next one is stored; awaited before the batch answers, so its objects are searchable then.
  const written: ObjectWriteResult[] = [];
  let indexed: Promise<void> = Promise.resolve();
  for (let start = 0; start < winners.length; start += SLICE) {
    if (start > 0) await yieldToLoop();
    const slice = winners.slice(start, start + SLICE);
    const sliceWritten = await ctx.options.store.upsertObjects(
      slice.map((i) => ({ class: i.state!.def.class, id: i.env!.id, properties: i.properties, vector: i.vector, vectors: i.named, references: i.references })),
      now,
    );
    written.push(...sliceWritten);
    const indexWrites = new Map<VectorIndex, { upserts: VectorEntry[]; removals: number[] }>();
    const writesOf = (index: VectorIndex) => {
      let iw = indexWrites.get(index);
      if (!iw) indexWrites.set(index, (iw = { upserts: [], removals: [] }));
      return iw;
    };
    slice.forEach((item, k) => {
      const w = sliceWritten[k]!;
      const st = item.state!;
      if (w.created) st.count++;
      const iw = writesOf(st.index);
      if (item.vector) iw.upserts.push({ label: w.seq, vector: item.vector, isNew: !w.hadVector });
      else if (w.hadVector) iw.removals.push(w.seq);
      // Named vectors other than `default`, each in its own index.
      for (const [name, index] of st.named) {
        const v = item.named[name];
        const had = w.hadVectors.includes(name);
        if (v) writesOf(index).upserts.push({ label: w.seq, vector: v, isNew: !had });
        else if (had) writesOf(index).removals.push(w.seq);
      }
      st.lastWrite = now;
    });
    // The keyword index, per object (inverted-index.ts), so the next bm25 search needs no rebuild.
    const byClass = new Map<ClassState, { seq: number; id: string; properties: Record<string, unknown> }[]>();
    slice.forEach((item, k) => {
      const list = byClass.get(item.state!) ?? [];
      if (!list.length) byClass.set(item.state!, list);
      list.push({ seq: sliceWritten[k]!.seq, id: item.env!.id, properties: item.properties });
    });
    for (const [st, objects] of byClass) invertedIndexWritten(st, objects);
    indexed = indexed.then(async () => {
      for (const [index, iw] of indexWrites) {
        await index.upsert(iw.upserts);
        await index.remove(iw.removals);
      }
    });
    // Handled here so a failure while the next slice is stored is not an unhandled rejection; awaited below.
    indexed.catch(() => undefined);
  }
  await indexed;
  // Earlier duplicates were overwritten by the winner: they report its times.
  const byKey = new Map(winners.map((i, k) => [`${i.state!.def.class}/${i.env!.id}`, written[k]!]));
  for (const item of items) if (!item.error && item.env && item.state) item.written = byKey.get(`${item.state.def.class}/${item.env.id}`);
}

/** The object as a batch result echoes it. */
function echo(item: Item): Record<string, unknown> {
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
  const rawVectors = (item.raw as { vectors?: unknown }).vectors;
  if (isObject(rawVectors) && Object.keys(rawVectors).length > 0) out.vectors = rawVectors;
  return out;
}

// ---------------------------------------------------------------- references

