import { randomUUID } from "node:crypto";
import { ApiError } from "./errors.js";
import type { HttpClient } from "./http.js";

/** An object's properties. */
export type Properties = Record<string, unknown>;

/** A reference target: a uuid (any class), or a uuid with its collection. */
export type ReferenceTarget = string | { uuid: string; collection?: string };

/** Options of {@link Batcher.add}. */
export interface AddOptions {
  /** The object's id; a UUIDv4 is generated when absent. Re-adding a uuid replaces the object (idempotent). */
  uuid?: string;
  /** The object's vector; without one, the collection's vectorizer embeds the object on the server. */
  vector?: number[];
  /** Cross-references from this object, by reference property: sent after this object (and the targets) were sent. */
  references?: Record<string, ReferenceTarget | ReferenceTarget[]>;
}

/** An object as sent in `POST /v1/batch/objects`. */
export interface BatchObject<P extends Properties = Properties> {
  class: string;
  id: string;
  properties: P;
  vector?: number[];
}

/** An object the server (or the transport) failed, with the reason. */
export interface FailedObject<P extends Properties = Properties> {
  message: string;
  object: BatchObject<P>;
  originalUuid: string;
}

/** A cross-reference as queued by the batcher. */
export interface BatchReference {
  fromCollection: string;
  fromUuid: string;
  fromProperty: string;
  /** Absent: the beacon names the uuid only (`weaviate://localhost/<uuid>`). */
  toCollection?: string;
  toUuid: string;
}

/** A reference the server (or the transport) failed, with the reason. */
export interface FailedReference {
  message: string;
  reference: BatchReference;
}

/** Tuning of the dynamic mode (defaults as the Python v4 client). */
export interface DynamicOptions {
  /** Batch size to start with (default 100). */
  initialBatchSize?: number;
  /** Growth/shrink step of the batch size (default 50). */
  step?: number;
  /** Largest batch (default 1000). */
  maxBatchSize?: number;
  /** Most requests in flight (default 10); starts at 2. */
  maxConcurrency?: number;
  /** How often `GET /v1/nodes` is polled while there is work, ms (default 1000). */
  pollIntervalMs?: number;
  /** Adding blocks while the server's backlog (queueLength / ratePerSecond) is above this many seconds (default 10). */
  blockBacklogSeconds?: number;
}

/** How a {@link Batcher} cuts and paces its requests. */
export type BatchMode =
  | ({ kind: "dynamic" } & DynamicOptions)
  | { kind: "fixedSize"; batchSize: number; concurrency: number }
  | { kind: "rateLimit"; objectsPerMinute: number };

/** Options of a {@link Batcher} beyond its mode. */
export interface BatcherOptions {
  /** Per-request timeout, ms (default: the client's). */
  timeoutMs?: number;
  /** Times an object failed by an upstream rate limit (vectorizer 429) is sent again (default 3). */
  maxObjectRetries?: number;
}

/** Counters of a {@link Batcher}: everything added is queued, in flight, succeeded or failed. */
export interface BatchStats {
  added: number;
  succeeded: number;
  failed: number;
  /** Objects waiting on the client (including those waiting to be resent). */
  queued: number;
  inFlight: number;
  referencesAdded: number;
  referencesSucceeded: number;
  referencesFailed: number;
}

interface Entry<P extends Properties> {
  obj: BatchObject<P>;
  attempts: number;
}

interface BatchResultItem {
  id?: string;
  result?: { status?: string; errors?: { error?: { message?: string }[] } } | null;
}

interface NodesAnswer {
  nodes?: { batchStats?: { queueLength?: number; ratePerSecond?: number } }[];
}

const RATE_LIMITED = /rate.?limit|too many requests|\b429\b/i;

/**
 * Client-side batching into `POST /v1/batch/objects` and `POST /v1/batch/references`, as the Weaviate Python v4
 * client does it: `add` queues an object and returns its uuid at once (client-generated, so a retried request cannot
 * duplicate anything); requests go out in the background, `concurrency` at a time; per-item failures land in
 * {@link failedObjects} / {@link failedReferences} with the server's message; a failed request (connection lost, 5xx
 * after retries, 4xx) fails its objects and is re-thrown by the next `add`, `addReference`, `flush` or `close`.
 * Memory stays flat: the queue is bounded (adding waits for room) and succeeded uuids are not kept.
 *
 * `add` and `addReference` are async only to apply backpressure: await them in the loop that feeds the batcher.
 */
export class Batcher<P extends Properties = Properties> {
  private queue: Entry<P>[] = [];
  /** uuid → copies queued, in flight, or waiting to be resent. */
  private readonly pending = new Map<string, number>();
  private waitingRefs: BatchReference[] = [];
  private readyRefs: BatchReference[] = [];
  private inFlight = 0;
  private inFlightObjects = 0;
  private delayed = 0;
  private flushing = 0;
  private closed = false;
  private error: Error | null = null;
  private idleWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];
  private readonly _failedObjects: FailedObject<P>[] = [];
  private readonly _failedReferences: FailedReference[] = [];
  private counts = { added: 0, succeeded: 0, referencesAdded: 0, referencesSucceeded: 0 };

  private _batchSize: number;
  private _concurrency: number;
  // rateLimit
  private readonly rateIntervalMs: number = 0;
  private nextSendAt = 0;
  private rateTimer: NodeJS.Timeout | null = null;
  // dynamic
  private readonly dynamic: Required<DynamicOptions> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPollAt = 0;
  private backlogLarge = false;
  private lastBacklogSeconds = 0;

  constructor(
    private readonly http: HttpClient,
    /** The collection (class) objects are added to. */
    readonly collection: string,
    readonly mode: BatchMode,
    private readonly options: BatcherOptions = {},
  ) {
    if (mode.kind === "fixedSize") {
      positiveInt(mode.batchSize, "batchSize");
      positiveInt(mode.concurrency, "concurrency");
      this._batchSize = mode.batchSize;
      this._concurrency = mode.concurrency;
    } else if (mode.kind === "rateLimit") {
      if (!(mode.objectsPerMinute > 0) || !Number.isFinite(mode.objectsPerMinute)) throw new RangeError(`objectsPerMinute must be a positive number, got ${mode.objectsPerMinute}`);
      // About one request a second: k objects each, B = floor(n/k) requests a minute, evenly spaced, so any 60 s window
      // sees at most B·k ≤ n objects.
      const n = Math.floor(mode.objectsPerMinute) || 1;
      this._batchSize = Math.min(1000, Math.ceil(n / 60));
      this.rateIntervalMs = 60_000 / Math.floor(n / this._batchSize);
      this._concurrency = 4;
    } else {
      this.dynamic = { initialBatchSize: 100, step: 50, maxBatchSize: 1000, maxConcurrency: 10, pollIntervalMs: 1000, blockBacklogSeconds: 10, ...definedOnly(mode) };
      positiveInt(this.dynamic.initialBatchSize, "initialBatchSize");
      positiveInt(this.dynamic.step, "step");
      this._batchSize = Math.min(this.dynamic.initialBatchSize, this.dynamic.maxBatchSize);
      this._concurrency = Math.min(2, this.dynamic.maxConcurrency);
    }
  }

  /** Objects per request now (changes in dynamic mode). */
  get batchSize(): number {
    return this._batchSize;
  }

  /** Requests in flight at most now (changes in dynamic mode). */
  get concurrency(): number {
    return this._concurrency;
  }

  /** Failed objects and references so far (live). */
  get numberErrors(): number {
    return this._failedObjects.length + this._failedReferences.length;
  }

  /** Objects that failed, with the server's message (live; complete after `close`). */
  get failedObjects(): readonly FailedObject<P>[] {
    return this._failedObjects;
  }

  /** References that failed, with the server's message (live; complete after `close`). */
  get failedReferences(): readonly FailedReference[] {
    return this._failedReferences;
  }

  get stats(): BatchStats {
    return {
      added: this.counts.added,
      succeeded: this.counts.succeeded,
      failed: this._failedObjects.length,
      queued: this.queue.length + this.delayed,
      inFlight: this.inFlightObjects,
      referencesAdded: this.counts.referencesAdded,
      referencesSucceeded: this.counts.referencesSucceeded,
      referencesFailed: this._failedReferences.length,
    };
  }

  /**
   * Queues an object. @returns its uuid (the given one, or a new UUIDv4) as soon as there is room in the queue.
   * @throws the background error of an earlier request, if one happened since the last call (the object is not added).
   */
  async add(properties: P, options: AddOptions = {}): Promise<string> {
    this.assertUsable();
    const uuid = options.uuid ?? randomUUID();
    while (!this.hasRoom()) {
      this.ensurePolling();
      await new Promise<void>((r) => this.spaceWaiters.push(r));
      this.assertUsable();
    }
    const obj: BatchObject<P> = { class: this.collection, id: uuid, properties };
    if (options.vector) obj.vector = options.vector;
    this.queue.push({ obj, attempts: 0 });
    this.pend(uuid);
    this.counts.added++;
    for (const [property, targets] of Object.entries(options.references ?? {})) {
      for (const target of Array.isArray(targets) ? targets : [targets]) {
        const t = typeof target === "string" ? { uuid: target } : target;
        this.enqueueReference({ fromCollection: this.collection, fromUuid: uuid, fromProperty: property, toCollection: t.collection, toUuid: t.uuid });
      }
    }
    this.ensurePolling();
    this.pump();
    return uuid;
  }

  /**
   * Queues a cross-reference `fromUuid.fromProperty → toCollection/toUuid` (the `from` object is in this collection).
   * It is sent once neither end is queued or in flight in this batcher. `toCollection` may be omitted.
   */
  async addReference(fromUuid: string, fromProperty: string, toCollection: string | undefined, toUuid: string): Promise<void> {
    this.assertUsable();
    while (this.waitingRefs.length + this.readyRefs.length >= 2 * this._batchSize) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
      this.assertUsable();
    }
    this.enqueueReference({ fromCollection: this.collection, fromUuid, fromProperty, toCollection: toCollection || undefined, toUuid });
    this.ensurePolling();
    this.pump();
  }

  /**
   * Sends everything queued (partial batches too) and waits until every object and reference has its result.
   * @throws afterwards, the background error of a failed request, if one happened since the last call.
   */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      this.pump();
      await this.idle();
    } finally {
      this.flushing--;
    }
    this.rethrow();
  }

  /** Flushes, waits, and stops; later adds throw. @throws like {@link flush}. */
  async close(): Promise<void> {
    this.closed = true;
    try {
      await this.flush();
    } finally {
      if (this.pollTimer) clearTimeout(this.pollTimer);
      if (this.rateTimer) clearTimeout(this.rateTimer);
      this.pollTimer = this.rateTimer = null;
    }
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────────────

  private assertUsable(): void {
    if (this.closed) throw new Error(`the batcher of ${this.collection} is closed`);
    this.rethrow();
  }

  private rethrow(): void {
    const err = this.error;
    if (err) {
      this.error = null;
      throw err;
    }
  }

  private hasRoom(): boolean {
    if (this.error) return true; // let the waiting add throw
    if (this.backlogLarge) return false;
    return this.queue.length < 2 * this._batchSize;
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.delayed === 0 && this.readyRefs.length === 0 && this.waitingRefs.length === 0;
  }

  private idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pend(uuid: string): void {
    const k = uuid.toLowerCase();
    this.pending.set(k, (this.pending.get(k) ?? 0) + 1);
  }

  private unpend(uuid: string): void {
    const k = uuid.toLowerCase();
    const n = (this.pending.get(k) ?? 0) - 1;
    if (n > 0) this.pending.set(k, n);
    else this.pending.delete(k);
  }

  private isPending(uuid: string): boolean {
    return this.pending.has(uuid.toLowerCase());
  }

  private enqueueReference(ref: BatchReference): void {
    this.counts.referencesAdded++;
    (this.isPending(ref.fromUuid) || this.isPending(ref.toUuid) ? this.waitingRefs : this.readyRefs).push(ref);
  }

  private releaseReferences(): void {
    if (!this.waitingRefs.length) return;
    const still: BatchReference[] = [];
    for (const ref of this.waitingRefs) (this.isPending(ref.fromUuid) || this.isPending(ref.toUuid) ? still : this.readyRefs).push(ref);
    this.waitingRefs = still;
  }

  /** Starts every request that may start now; wakes blocked adders and flushers. */
  private pump(): void {
    while (this.inFlight < this._concurrency) {
      const objects = this.takeObjects();
      if (objects) {
        void this.sendObjects(objects);
        continue;
      }
      const refs = this.takeReferences();
      if (refs) {
        void this.sendReferences(refs);
        continue;
      }
      break;
    }
    if (this.spaceWaiters.length) {
      const waiters = this.spaceWaiters;
      this.spaceWaiters = [];
      for (const w of waiters) w();
    }
    if (this.idleWaiters.length && this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private takeObjects(): Entry<P>[] | null {
    if (!this.queue.length) return null;
    const size = this._batchSize;
    // Partial batches go when flushing, or when references wait on queued objects (else a full reference queue could
    // wait forever on objects that never fill a batch).
    const force = this.flushing > 0 || this.closed || this.waitingRefs.length >= size;
    if (this.queue.length < size && !force) return null;
    if (this.mode.kind === "rateLimit") {
      const now = Date.now();
      if (now < this.nextSendAt) {
        if (!this.rateTimer)
          this.rateTimer = setTimeout(() => {
            this.rateTimer = null;
            this.pump();
          }, this.nextSendAt - now);
        return null;
      }
      this.nextSendAt = now + this.rateIntervalMs;
    }
    return this.queue.splice(0, size);
  }

  private takeReferences(): BatchReference[] | null {
    if (!this.readyRefs.length) return null;
    if (this.readyRefs.length < this._batchSize && !(this.flushing > 0 || this.closed)) return null;
    return this.readyRefs.splice(0, this._batchSize);
  }

  private async sendObjects(entries: Entry<P>[]): Promise<void> {
    this.inFlight++;
    this.inFlightObjects += entries.length;
    const resend = new Set<Entry<P>>();
    try {
      const res = await this.http.request<unknown>("POST", "/v1/batch/objects", {
        body: { fields: ["ALL"], objects: entries.map((e) => e.obj) },
        timeoutMs: this.options.timeoutMs,
      });
      if (!Array.isArray(res.body)) throw new ApiError(res.status, "POST /v1/batch/objects: the answer is not an array of results", res.body);
      const results = res.body as BatchResultItem[];
      const byId = results.length !== entries.length || results.some((r, i) => r?.id !== undefined && r.id !== entries[i]!.obj.id) ? indexById(results) : null;
      entries.forEach((e, i) => {
        const item = byId ? byId.get(e.obj.id.toLowerCase()) : results[i];
        const message = item === undefined ? "the server's answer has no result for this object" : itemError(item);
        if (message === null) this.counts.succeeded++;
        else if (RATE_LIMITED.test(message) && e.attempts < (this.options.maxObjectRetries ?? 3)) resend.add(e);
        else this.failObject(e, message);
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const e of entries) this.failObject(e, error.message);
      this.error ??= error;
    } finally {
      this.inFlight--;
      this.inFlightObjects -= entries.length;
      for (const e of entries) if (!resend.has(e)) this.unpend(e.obj.id);
      if (resend.size) this.resendLater([...resend]);
      this.releaseReferences();
      this.pump();
    }
  }

  /** Objects failed by an upstream rate limit go back to the front of the queue after a backoff. */
  private resendLater(entries: Entry<P>[]): void {
    const attempts = Math.max(...entries.map((e) => ++e.attempts));
    this.delayed += entries.length;
    setTimeout(() => {
      this.delayed -= entries.length;
      this.queue.unshift(...entries);
      this.pump();
    }, this.http.backoffMs(attempts) * 4);
  }

  private failObject(e: Entry<P>, message: string): void {
    this._failedObjects.push({ message, object: e.obj, originalUuid: e.obj.id });
  }

  private async sendReferences(refs: BatchReference[]): Promise<void> {
    this.inFlight++;
    try {
      const res = await this.http.request<unknown>("POST", "/v1/batch/references", { body: refs.map(referenceWire), timeoutMs: this.options.timeoutMs });
      if (!Array.isArray(res.body)) throw new ApiError(res.status, "POST /v1/batch/references: the answer is not an array of results", res.body);
      const results = res.body as BatchResultItem[];
      refs.forEach((ref, i) => {
        const item = results[i];
        const message = item === undefined ? "the server's answer has no result for this reference" : itemError(item);
        if (message === null) this.counts.referencesSucceeded++;
        else this._failedReferences.push({ message, reference: ref });
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const ref of refs) this._failedReferences.push({ message: error.message, reference: ref });
      this.error ??= error;
    } finally {
      this.inFlight--;
      this.pump();
    }
  }

  // dynamic mode: poll /v1/nodes while there is work

  private ensurePolling(): void {
    if (!this.dynamic || this.pollTimer || this.polling) return;
    const delay = Math.max(0, this.lastPollAt + this.dynamic.pollIntervalMs - Date.now());
    this.pollTimer = setTimeout(() => void this.poll(), delay);
  }

  private async poll(): Promise<void> {
    this.pollTimer = null;
    this.polling = true;
    this.lastPollAt = Date.now();
    try {
      const res = await this.http.request<NodesAnswer>("GET", "/v1/nodes", { retry: false, timeoutMs: 5000 });
      this.adapt(res.body);
    } catch {
      this.backlogLarge = false; // no reading: never block on it
    } finally {
      this.polling = false;
    }
    this.pump();
    if (!this.isIdle() || this.spaceWaiters.length) this.ensurePolling();
  }

  /**
   * One step of the dynamic sizing from the server's batch queue: grow the batch size by a step while the backlog is
   * under a second of work (and, at the largest batch size with a full batch waiting here, one more request in flight);
   * shrink both when the backlog exceeds 2 s or keeps growing; block adding while it exceeds `blockBacklogSeconds`.
   */
  private adapt(body: NodesAnswer | null): void {
    const d = this.dynamic!;
    const stats = (body?.nodes ?? []).map((n) => n?.batchStats).filter((s) => s && typeof s.queueLength === "number");
    if (!stats.length) {
      this.backlogLarge = false;
      return;
    }
    const queueLength = stats.reduce((a, s) => a + (s!.queueLength ?? 0), 0);
    const rate = stats.reduce((a, s) => a + (s!.ratePerSecond ?? 0), 0);
    const backlog = queueLength === 0 ? 0 : queueLength / Math.max(rate, 1);
    if (backlog <= 1) {
      this._batchSize = Math.min(this._batchSize + d.step, d.maxBatchSize);
      if (this._batchSize >= d.maxBatchSize && this.queue.length >= this._batchSize && this._concurrency < d.maxConcurrency) this._concurrency++;
      this.backlogLarge = false;
    } else if (backlog > 2 || backlog > this.lastBacklogSeconds) {
      this._batchSize = Math.max(Math.min(d.step, d.initialBatchSize), this._batchSize - d.step);
      this._concurrency = Math.max(1, this._concurrency - 1);
      this.backlogLarge = backlog > d.blockBacklogSeconds;
    } else {
      this.backlogLarge = false;
    }
    this.lastBacklogSeconds = backlog;
  }
}

/** The failure message of one batch result, or null when it succeeded. */
function itemError(item: BatchResultItem | null): string | null {
  const result = item?.result;
  const messages = (result?.errors?.error ?? []).map((e) => e?.message).filter((m): m is string => typeof m === "string" && m !== "");
  if (messages.length) return messages.join("; ");
  if (result?.status === "FAILED") return "failed (the server gave no message)";
  return null;
}

function indexById(results: BatchResultItem[]): Map<string, BatchResultItem> {
  const map = new Map<string, BatchResultItem>();
  for (const r of results) if (typeof r?.id === "string") map.set(r.id.toLowerCase(), r); // last wins, like the server
  return map;
}

function referenceWire(ref: BatchReference): { from: string; to: string } {
  return {
    from: `weaviate://localhost/${ref.fromCollection}/${ref.fromUuid}/${ref.fromProperty}`,
    to: ref.toCollection ? `weaviate://localhost/${ref.toCollection}/${ref.toUuid}` : `weaviate://localhost/${ref.toUuid}`,
  };
}

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
