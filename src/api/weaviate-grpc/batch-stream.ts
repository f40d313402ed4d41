import * as grpc from "@grpc/grpc-js";
import type { Caller, CollectionService } from "../../collections/collection-service.js";
import { importObjects } from "./batch-objects.js";
import { importReferences, sourceBeacon, type BatchReferenceMsg } from "./batch-references.js";
import { MalformedRequest } from "./malformed.js";
import type { BatchObjectMsg } from "./messages.js";

/*
 * Weaviate's server-side batching (`weaviate.v1.Weaviate/BatchStream`, Weaviate 1.36+; the official clients'
 * `collection.data.ingest(...)` and `client.batch.stream()`), as the weaviate-client 3.14 drives it:
 *
 *   client: start{consistency_level}  data{objects, references} …  stop        (then it half-closes)
 *   server: backoff{batch_size}  started  acks{uuids, beacons}  results{errors, successes} …  (then the OK status)
 *
 * Objects are keyed by their uuid as sent, references by their source beacon
 * `weaviate://localhost/<from_collection>/<from_uuid>/<name>`; every item gets exactly one result. A data message is
 * acknowledged when its import begins: the client sends at most `batch_size` items per message and waits for the
 * acks of one message before it sends the next, so acks are the flow control, and a message acknowledged is one
 * whose items are imported and answered even if the client goes away or the server shuts down.
 *
 * The 3.14 client reads acks with `Set.prototype.difference`, which Node has from version 22 on (the client's
 * `engines`): on Node 20 its stream stops at the first ack and `ingest()` answers no results.
 */

/**
 * Largest BatchStream message, in bytes. `/v1/meta` tells clients 10 MiB (grpcMaxMessageSize) and they never send
 * more; a connection's read-ahead holds up to 16 decoded messages, so this bounds what a stream that ignores acks can
 * make the server hold to about what one large BatchObjects call may.
 */
export const MAX_STREAM_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * The batch size (items per data message) asked for first, in `backoff` before `started`: the 3.14 client's own
 * default. It grows by one whenever a message arrives that filled it (see BatchStreamSession.ack).
 */
export const INITIAL_BATCH_SIZE = 1_000;

/** Data messages read and waiting for their import; beyond this the stream stops reading (HTTP/2 pushes back). */
const MAX_QUEUED_MESSAGES = 2;
/** Entries per acks / results message, and the characters of one error kept: replies stay far below 10 MiB. */
const MAX_ENTRIES_PER_REPLY = 1_000;
const MAX_ERROR_CHARS = 8_192;
/** How long a stream told `shutting_down`, or one that sent `stop`, may take to half-close before its input is closed for it. */
const SHUTDOWN_GRACE_MS = 2_000;
const STOP_GRACE_MS = 2_000;

/** A BatchStream message larger than MAX_STREAM_MESSAGE_BYTES, in place of the message (see the server's decoder). */
export class OversizedStreamMessage {
  constructor(readonly bytes: number) {}
}

/** A decoded `BatchStreamRequest`: exactly one of start, data, stop. */
interface BatchStreamRequestMsg {
  start?: { consistencyLevel?: number };
  data?: { objects?: { values?: BatchObjectMsg[] }; references?: { values?: BatchReferenceMsg[] } };
  stop?: Record<string, never>;
}

interface Work {
  objects: BatchObjectMsg[];
  references: BatchReferenceMsg[];
}

type Status = { code: grpc.status; details: string };
type ResultError = { error: string; uuid?: string; beacon?: string };
type ResultSuccess = { uuid?: string; beacon?: string };

const clip = (message: string) => (message.length > MAX_ERROR_CHARS ? `${message.slice(0, MAX_ERROR_CHARS)}…` : message);

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += MAX_ENTRIES_PER_REPLY) out.push(items.slice(i, i + MAX_ENTRIES_PER_REPLY));
  return out;
}

/**
 * One BatchStream call. Reads `start`, then `data` messages, importing them one after another through the same
 * collections code as BatchObjects and BatchReferences (objects before the references of the same message, so a
 * reference may point at an object sent beside it); ends the call with OK once the client half-closed (after `stop`,
 * or STOP_GRACE_MS after it) and everything accepted is answered. A protocol error (data before start, a second
 * start, a message after stop, one that is not exactly one of start/data/stop, undecodable or oversized bytes) ends
 * the call with INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming it — after the messages already accepted are imported
 * and answered.
 */
export class BatchStreamSession {
  private started = false;
  private batchSize = INITIAL_BATCH_SIZE;
  /** No further message is read: half-close, a protocol error or the client gone. */
  private inputClosed = false;
  /** `stop` came: a message after it is a protocol error; the call ends at the half-close that follows (or STOP_GRACE_MS). */
  private stopped = false;
  private gone = false;
  private running = false;
  private ended = false;
  private failure: Status | null = null;
  private readonly queue: Work[] = [];
  private drainWaiters: (() => void)[] = [];
  private resolveFinished!: () => void;
  /** Settles when the call has ended and every accepted item is imported. */
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));

  /**
   * @param call the BatchStream call (its messages are BatchStreamRequests, a MalformedRequest or an
   *   OversizedStreamMessage). @param caller the authenticated caller every item is imported as.
   */
  constructor(
    private readonly call: grpc.ServerDuplexStream<unknown, unknown>,
    private readonly collections: CollectionService,
    private readonly caller: Caller,
  ) {
    call.on("data", (msg: unknown) => this.receive(msg));
    call.on("end", () => this.closeInput());
    call.on("drain", () => this.wakeWriters());
    call.on("cancelled", () => this.lose());
    call.on("close", () => this.lose());
  }

  /**
   * The server is stopping: tells the client (`shutting_down`), imports what it still sends until it half-closes
   * (at most SHUTDOWN_GRACE_MS), answers it all, then ends the call. @returns `finished`.
   */
  shutDown(): Promise<void> {
    // A stream already stopped just ends; telling its client would only make it reconnect.
    if (!this.ended && !this.inputClosed && !this.stopped) {
      this.send({ shuttingDown: {} });
      setTimeout(() => this.closeInput(), SHUTDOWN_GRACE_MS).unref();
    }
    return this.finished;
  }

  private receive(msg: unknown): void {
    if (this.inputClosed || this.ended) return;
    if (msg instanceof MalformedRequest) return this.fail(grpc.status.INVALID_ARGUMENT, msg.details);
    if (msg instanceof OversizedStreamMessage) {
      return this.fail(grpc.status.RESOURCE_EXHAUSTED, `BatchStream: a message of ${msg.bytes} bytes is larger than the ${MAX_STREAM_MESSAGE_BYTES} bytes accepted (send smaller data messages)`);
    }
    const req = msg as BatchStreamRequestMsg;
    const kinds = (["start", "data", "stop"] as const).filter((k) => req[k] !== undefined && req[k] !== null);
    if (kinds.length !== 1) return this.fail(grpc.status.INVALID_ARGUMENT, `BatchStream: each message must set exactly one of start, data, stop (this one sets ${kinds.length ? kinds.join(" and ") : "none"})`);
    if (this.stopped) return this.fail(grpc.status.INVALID_ARGUMENT, `BatchStream: ${kinds[0]} after stop`);
    if (req.start) {
      if (this.started) return this.fail(grpc.status.INVALID_ARGUMENT, "BatchStream: start was already sent on this stream");
      const level = req.start.consistencyLevel;
      if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 3)) return this.fail(grpc.status.INVALID_ARGUMENT, `BatchStream: start.consistency_level ${level} is not a ConsistencyLevel (0-3)`);
      // Every consistency level is met at once: OpenBatch keeps one replica.
      this.started = true;
      // The batch size first, so the client fills its first message to it.
      this.send({ backoff: { batchSize: this.batchSize } });
      this.send({ started: {} });
      return;
    }
    if (!this.started) return this.fail(grpc.status.INVALID_ARGUMENT, `BatchStream: the first message must be start, not ${kinds[0]}`);
    if (req.stop) {
      // Clients half-close right after stop; one that does not still gets its answers and the end of the call.
      this.stopped = true;
      setTimeout(() => this.closeInput(), STOP_GRACE_MS).unref();
      return;
    }
    const objects = req.data!.objects?.values ?? [];
    const references = req.data!.references?.values ?? [];
    if (objects.length + references.length === 0) return;
    this.queue.push({ objects, references });
    if (this.queue.length >= MAX_QUEUED_MESSAGES) this.call.pause();
    void this.run();
  }

  /** Imports the queued messages one at a time; ends the call when input is closed and nothing is left. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const work = this.queue.shift()!;
        if (!this.inputClosed && this.queue.length < MAX_QUEUED_MESSAGES) this.call.resume();
        try {
          await this.ack(work);
          await this.importWork(work);
        } catch (err) {
          // Only a fault of ours lands here (importWork answers the collections' errors per item).
          this.fail(grpc.status.INTERNAL, `BatchStream: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } finally {
      this.running = false;
    }
    this.maybeEnd();
  }

  /**
   * Acknowledges a message's items, and raises the batch size past the message's count when the message filled it.
   * The 3.14 client's `addObject` / `addReference` wait while the in-flight count they read on entry is at least the
   * batch size, and never read it again: entered just after a message closed because it was full, that count equals
   * the batch size, and only a larger batch size ends the wait. One more per full message keeps it ending.
   */
  private async ack(work: Work): Promise<void> {
    const filled = Math.max(work.objects.length, work.references.length);
    if (filled >= this.batchSize) {
      this.batchSize = filled + 1;
      await this.sendAndWait({ backoff: { batchSize: this.batchSize } });
    }
    const uuids = work.objects.map((o) => o.uuid ?? "").filter((u) => u !== "");
    const beacons = work.references.map(sourceBeacon);
    const n = Math.max(uuids.length, beacons.length);
    for (let i = 0; i < n; i += MAX_ENTRIES_PER_REPLY) {
      await this.sendAndWait({ acks: { uuids: uuids.slice(i, i + MAX_ENTRIES_PER_REPLY), beacons: beacons.slice(i, i + MAX_ENTRIES_PER_REPLY) } });
    }
  }

  /** One message's objects, then its references; each item answered, a failure of the whole import failing each item with its reason. */
  private async importWork(work: Work): Promise<void> {
    const errors: ResultError[] = [];
    const successes: ResultSuccess[] = [];
    if (work.objects.length) {
      try {
        await this.collections.sync();
        const outcomes = await importObjects(this.collections, this.caller, work.objects);
        outcomes.forEach((o) => (o.error === null ? successes.push({ uuid: o.id ?? "" }) : errors.push({ error: clip(o.error), uuid: o.id ?? "" })));
      } catch (err) {
        for (const o of work.objects) errors.push({ error: clip((err as Error).message), uuid: o.uuid ?? "" });
      }
    }
    if (work.references.length) {
      try {
        await this.collections.sync();
        const outcomes = await importReferences(this.collections, this.caller, work.references);
        outcomes.forEach((error, i) => {
          const beacon = sourceBeacon(work.references[i]!);
          if (error === null) successes.push({ beacon });
          else errors.push({ error: clip(error), beacon });
        });
      } catch (err) {
        for (const r of work.references) errors.push({ error: clip((err as Error).message), beacon: sourceBeacon(r) });
      }
    }
    for (const part of chunks(errors)) await this.sendAndWait({ results: { errors: part, successes: [] } });
    for (const part of chunks(successes)) await this.sendAndWait({ results: { errors: [], successes: part } });
  }

  private fail(code: grpc.status, details: string): void {
    this.failure ??= { code, details };
    this.closeInput();
  }

  private closeInput(): void {
    if (this.inputClosed) return;
    this.inputClosed = true;
    this.call.pause();
    this.maybeEnd();
  }

  /** The client is gone (cancelled, connection lost): nothing more is written; accepted work still runs to the end. */
  private lose(): void {
    if (this.ended && this.gone) return;
    this.gone = true;
    this.wakeWriters();
    this.closeInput();
  }

  private maybeEnd(): void {
    if (this.ended || !this.inputClosed || this.running || this.queue.length) return;
    this.ended = true;
    if (!this.gone) {
      if (this.failure) this.call.emit("error", { ...this.failure, metadata: new grpc.Metadata() });
      else this.call.end();
    }
    this.resolveFinished();
  }

  private send(reply: unknown): boolean {
    if (this.gone || this.call.destroyed || this.call.writableEnded) return true;
    return this.call.write(reply);
  }

  /** Writes a reply; when the client reads slower than we answer, waits until it catches up (or is gone). */
  private async sendAndWait(reply: unknown): Promise<void> {
    if (this.send(reply)) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private wakeWriters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
