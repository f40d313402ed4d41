import type { ObjectWriteResult } from "../store/collection-store.js";
import { forbiddenMessage, type Caller } from "./access.js";
import { type CollectionContext, isObject, notPresent, type ClassState } from "./collection-context.js";
import type { ObjectResult } from "./collection-types.js";
import { unprocessable } from "./errors.js";
import { parseEnvelope, validateProperties, vectorizerText, type InlineReference, type ObjectEnvelope } from "./objects.js";
import { beaconClass, mergeReferences } from "./references.js";
import { autoClass, inferDataType, normalizePropertyName, parseProperty, VECTORIZER, vectorizerOf, type ClassDef } from "./schema.js";
import type { VectorEntry } from "./vector-index.js";
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
  vector: Float32Array | null;
  vectorGiven: boolean;
  /** What the vectorizer embeds. */
  text?: string;
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
      items.push({ raw, env: ok, state: null, properties: {}, references: [], vector: ok?.vector ?? null, vectorGiven: !!ok?.vector, error });
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
      st = { def, owner: caller, index: await ctx.openIndex(def, 0), count: 0, lastWrite: 0, lastSave: Date.now() };
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
      const prop = parseProperty({ name: key, dataType: inferred.dataType }, st.def.class, (n) => n === st.def.class || readableClass(ctx, caller, n));
      st.def = { ...st.def, properties: [...st.def.properties, prop] };
    } catch (err) {
      return (err as Error).message;
    }
  }
  return null;
}

/** Embeds the objects that need a vector, in chunks through the engine; a failed chunk fails its objects with the reason. */
async function vectorize(ctx: CollectionContext, items: Item[]): Promise<void> {
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
    // Appended in place: copying the list for each object was quadratic (~300 ms of blocked loop at 8,000 objects).
    const list = byModel.get(v.model);
    if (list) list.push(item);
    else byModel.set(v.model, [item]);
  }
  const chunks: { model: string; items: Item[] }[] = [];
  for (const [model, list] of byModel) for (let i = 0; i < list.length; i += EMBED_CHUNK) chunks.push({ model, items: list.slice(i, i + EMBED_CHUNK) });
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      try {
        const vectors = await ctx.options.embedder.embedTexts(chunk.model, chunk.items.map((i) => i.text!));
        chunk.items.forEach((item, j) => (item.vector = Float32Array.from(vectors[j]!)));
      } catch (err) {
        for (const item of chunk.items) item.error = `${VECTORIZER}: ${(err as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(EMBED_CONCURRENCY, chunks.length) }, worker));
}

/** Checks vector lengths, then stores the valid objects (last of each uuid) in slices and indexes them. */
async function write(ctx: CollectionContext, items: Item[]): Promise<void> {
  const dims = new Map<ClassState, number>();
  const last = new Map<string, Item>();
  for (const item of items) {
    if (item.error || !item.env || !item.state) continue;
    const st = item.state;
    if (ctx.classes.get(st.def.class) !== st) {
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
      slice.map((i) => ({ class: i.state!.def.class, id: i.env!.id, properties: i.properties, vector: i.vector, references: i.references })),
      now,
    );
    written.push(...sliceWritten);
    const indexWrites = new Map<ClassState, { upserts: VectorEntry[]; removals: number[] }>();
    slice.forEach((item, k) => {
      const w = sliceWritten[k]!;
      const st = item.state!;
      if (w.created) st.count++;
      let iw = indexWrites.get(st);
      if (!iw) indexWrites.set(st, (iw = { upserts: [], removals: [] }));
      if (item.vector) iw.upserts.push({ label: w.seq, vector: item.vector, isNew: !w.hadVector });
      else if (w.hadVector) iw.removals.push(w.seq);
      st.lastWrite = now;
    });
    indexed = indexed.then(async () => {
      for (const [st, iw] of indexWrites) {
        await st.index.upsert(iw.upserts);
        await st.index.remove(iw.removals);
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
  return out;
}

// ---------------------------------------------------------------- references

