import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Batch, ItemOutcome, ItemState } from "../src/core/batch.js";
import { OpenBatchError } from "../src/core/errors.js";
import { itemIds, lineInItemId } from "../src/store/item-ids.js";
import { PgBlobStore } from "../src/store/postgres/blob-store.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import type { Store } from "../src/store/store.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/**
 * The store contract, one test body run on both stores: leases, exactly-once outcomes, compare-and-set status with its
 * webhook event, counters, duplicate custom_ids. Then what only the shared store has: concurrent claims never overlap,
 * a dead worker's leases come back on its missed heartbeat, one finalizer per batch, chunked blobs.
 */
const reachable = await postgresReachable();
let db: { url: string; drop: () => Promise<void> } | null = null;
beforeAll(async () => {
  if (reachable) db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function batch(id: string): Batch {
  return {
    id, dialect: "openai", owner: "", endpoint: "/v1/chat/completions", model: "m", provider: "up", input_file_id: "file-x",
    completion_window: "24h", status: "in_progress", errors: null, output_file_id: null, error_file_id: null, metadata: null,
    created_at: 0, in_progress_at: 0, expires_at: 1e15, finalizing_at: null, completed_at: null, failed_at: null,
    expired_at: null, cancelling_at: null, cancelled_at: null, final_status: null, priority: 0, name: null, description: null,
  };
}
const ok: ItemOutcome = { state: "succeeded", status_code: 200, request_id: "r", response_body: "{}", error_code: null, error_message: null, usage: { input_tokens: 3, cached_tokens: 0, output_tokens: 2, reasoning_tokens: 0 } };
const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ line: i + 1, custom_id: `c${i + 1}`, model: "m", body: "{}" }));
const uid = () => "batch_" + randomBytes(6).toString("hex");

const stores: { name: string; open: () => Promise<Store> }[] = [
  { name: "SQLite", open: async () => new SqliteStore(":memory:") },
  { name: "PostgreSQL", open: () => PostgresStore.open(db!.url) },
];

for (const kind of stores) {
  describe.skipIf(kind.name === "PostgreSQL" && !reachable)(`store contract on ${kind.name}`, () => {
    it("a dead worker's expired lease returns the item to the queue, and its late outcome is ignored", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, lines(3));
      const claimedByA = await store.claimItems(b, "worker-a", 2, 1000, 2000);
      expect(claimedByA.map((i) => i.line)).toEqual([1, 2]);
      expect(claimedByA.every((i) => i.attempts === 1)).toBe(true);
      expect((await store.claimItems(b, "worker-b", 5, 1500, 3000)).map((i) => i.line)).toEqual([3]);
      expect(await store.releaseLeases(b, 2500)).toBe(2);
      const retaken = await store.claimItems(b, "worker-b", 5, 2500, 9000);
      expect(retaken.map((i) => [i.line, i.attempts])).toEqual([[1, 2], [2, 2]]);
      expect(await store.recordOutcomes([{ batch_id: b, line: 1, lease_owner: "worker-a", outcome: ok }], 3000)).toBe(0);
      expect(await store.recordOutcomes([{ batch_id: b, line: 1, lease_owner: "worker-b", outcome: ok }], 3000)).toBe(1);
      expect(await store.recordOutcomes([{ batch_id: b, line: 1, lease_owner: "worker-b", outcome: ok }], 3000)).toBe(0);
      const { counts, usage } = await store.countItems(b);
      expect(counts).toMatchObject({ total: 3, completed: 1, pending: 2 });
      expect(usage).toMatchObject({ input_tokens: 3, output_tokens: 2 });
      await store.close();
    });

    it("queued items wait for their next attempt time", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, [{ line: 1, custom_id: "a", model: "m", body: "{}" }]);
      const [item] = await store.claimItems(b, "w", 1, 0, 100);
      expect(await store.requeueItem(b, item!.line, "w", 500)).toBe(true);
      expect(await store.claimItems(b, "w", 1, 499, 1000)).toEqual([]);
      expect(await store.nextAttemptAt(b)).toBe(500);
      expect(await store.claimItems(b, "w", 1, 500, 1000)).toHaveLength(1);
      await store.close();
    });

    it("status changes are compare-and-set; ending a batch queues its webhook event once", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), "sealed-key");
      expect(await store.updateBatch(b, ["in_progress"], { status: "finalizing", finalizing_at: 5, final_status: "completed" })).toBe(true);
      expect(await store.updateBatch(b, ["in_progress"], { status: "finalizing", finalizing_at: 6 })).toBe(false);
      expect(await store.updateBatch(b, ["finalizing"], { status: "completed", completed_at: 7 })).toBe(true);
      expect(await store.updateBatch(b, ["finalizing"], { status: "completed", completed_at: 8 })).toBe(false);
      expect(await store.getBatch(b)).toMatchObject({ status: "completed", completed_at: 7, finalizing_at: 5 });
      const events = (await store.webhookOutbox.pendingEvents(100)).filter((e) => e.batch_id === b);
      expect(events).toEqual([expect.objectContaining({ type: "batch.completed", created_at: 7 })]);
      expect(await store.getProviderKey(b)).toBe("sealed-key");
      await store.clearProviderKey(b);
      expect(await store.getProviderKey(b)).toBeNull();
      expect(await store.hadProviderKey(b)).toBe(true);
      await store.close();
    });

    it("a duplicate custom_id is a 400 duplicate_custom_id and adds nothing", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, lines(2));
      const err = await store.insertItems(b, [{ line: 3, custom_id: "c3", model: "m", body: "{}" }, { line: 4, custom_id: "c1", model: "m", body: "{}" }]).catch((e) => e);
      expect(err).toBeInstanceOf(OpenBatchError);
      expect(err.code).toBe("duplicate_custom_id");
      expect((await store.countItems(b)).counts.total).toBe(2);
      expect(await store.maxLine(b)).toBe(2);
      await store.close();
    });

    it("settling ends every unfinished item once and counts it; pages read results in line order", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, lines(5));
      await store.claimItems(b, "w", 2, 0, 1e12);
      await store.recordOutcomes([{ batch_id: b, line: 1, lease_owner: "w", outcome: ok }], 10);
      const cancelled: ItemOutcome = { state: "cancelled", status_code: null, request_id: null, response_body: null, error_code: "batch_cancelled", error_message: "x", usage: null };
      expect(await store.settleUnfinished(b, cancelled, 20)).toBe(4);
      expect(await store.settleUnfinished(b, cancelled, 20)).toBe(0);
      expect(await store.hasUnfinished(b)).toBe(false);
      expect((await store.countItems(b)).counts).toMatchObject({ total: 5, completed: 1, cancelled: 4, pending: 0 });
      const page = await store.pageItems(b, 0, 3);
      expect(page.map((i) => [i.line, i.state])).toEqual([[1, "succeeded"], [2, "cancelled"], [3, "cancelled"]]);
      expect(await store.hasItemsAfter(b, 3)).toBe(true);
      expect((await store.pageItems(b, 0, 10, ["succeeded"])).map((i) => i.custom_id)).toEqual(["c1"]);
      expect(await store.lineOfItem(b, page[1]!.id)).toBe(2);
      await store.close();
    });

    it("vendor results are written once for the unfinished items of their range, with their counts and usage", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, lines(5));
      await store.claimItems(b, "w", 1, 0, 1e12); // line 1 in flight: a vendor result may still land on it
      const failed: ItemOutcome = { state: "failed", status_code: 400, request_id: "r2", response_body: '{"error":{}}', error_code: null, error_message: null, usage: null };
      const at = (line: number, outcome: ItemOutcome) => ({ line, outcome });
      expect(await store.vendorJobs.recordOutcomes(b, 1, 4, [at(1, ok), at(3, failed), at(5, ok)], 10)).toBe(2); // 5 is out of range
      expect(await store.vendorJobs.recordOutcomes(b, 1, 4, [at(1, failed), at(3, ok)], 11)).toBe(0); // finished: left as they are
      expect(await store.vendorJobs.unfinishedLines(b, 1, 5, 10)).toEqual([2, 4, 5]);
      expect(await store.countItems(b)).toMatchObject({ counts: { total: 5, completed: 1, failed: 1, pending: 3 }, usage: { input_tokens: 3, output_tokens: 2 } });
      const page = await store.pageItems(b, 0, 3);
      expect(page.map((i) => [i.line, i.state, i.status_code, i.request_id])).toEqual([[1, "succeeded", 200, "r"], [2, "queued", null, null], [3, "failed", 400, "r2"]]);
      await store.close();
    });

    it("a page with maxBytes ends before the first item that would pass it, and holds at least one", async () => {
      const store = await kind.open();
      const b = uid();
      await store.insertBatch(batch(b), null);
      await store.insertItems(b, lines(5));
      await store.claimItems(b, "w", 5, 0, 1e12);
      // 100-byte bodies, and a 3-byte error message (2 of UTF-8 "é" + "x") on line 3.
      const records = [1, 2, 3, 4, 5].map((line) => ({ batch_id: b, line, lease_owner: "w", outcome: line === 3 ? { ...ok, response_body: "b".repeat(100), error_message: "éx" } : { ...ok, response_body: "b".repeat(100) } }));
      await store.recordOutcomes(records, 10);
      const lines_ = async (after: number, maxBytes: number, states?: ItemState[]) => (await store.pageItems(b, after, 10, states, maxBytes)).map((i) => i.line);
      expect(await lines_(0, 250)).toEqual([1, 2]);
      expect(await lines_(0, 303)).toEqual([1, 2, 3]);
      expect(await lines_(0, 302)).toEqual([1, 2]);
      expect(await lines_(0, 50)).toEqual([1]);
      expect(await lines_(3, 10_000, ["succeeded"])).toEqual([4, 5]);
      expect(await lines_(5, 10_000)).toEqual([]);
      await store.close();
    });
  });
}

describe.skipIf(!reachable)("what only the shared PostgreSQL store has", () => {
  it("lineOfItem finds an item by its line when its id carries it, and by value when a copied random id only looks so", async () => {
    const store = await PostgresStore.open(db!.url);
    const b = uid();
    await store.insertBatch(batch(b), null);
    await store.insertItems(b, lines(3));
    const page = await store.pageItems(b, 0, 3);
    expect(await store.lineOfItem(b, page[1]!.id)).toBe(2);
    // As `openbatch migrate` copies an older store's random ids: the same shape, but the last 12 hex digits are no line.
    const random = "batch_req_" + "ab".repeat(6) + "0000000000ff";
    await store.db.rows(`UPDATE request_items SET id = $1 WHERE batch_id = $2 AND line = 3`, [random, b]);
    expect(await store.lineOfItem(b, random)).toBe(3);
    expect(await store.lineOfItem(b, "batch_req_" + "0".repeat(24))).toBeNull();
    await store.close();
  });

  it("an outcome text with a lone surrogate is stored with one U+FFFD in its place (as a text parameter's UTF-8 carried it), by the queue and by vendor results", async () => {
    const store = await PostgresStore.open(db!.url);
    const b = uid();
    await store.insertBatch(batch(b), null);
    await store.insertItems(b, lines(2));
    await store.claimItems(b, "w", 1, 0, 1e12);
    expect(await store.recordOutcomes([{ batch_id: b, line: 1, lease_owner: "w", outcome: { ...ok, response_body: '{"t":"a\ud800b"}' } }], 10)).toBe(1);
    const failed: ItemOutcome = { state: "failed", status_code: null, request_id: null, response_body: null, error_code: "x", error_message: "bad \udc00 text", usage: null };
    expect(await store.vendorJobs.recordOutcomes(b, 2, 2, [{ line: 2, outcome: failed }], 10)).toBe(1);
    const page = await store.pageItems(b, 0, 2);
    expect(page.map((i) => i.response_body ?? i.error_message)).toEqual(['{"t":"a\ufffdb"}', "bad \ufffd text"]);
    await store.close();
  });

  it("concurrent outcome commits over the same batches, in rotated orders, all land and are each counted once", async () => {
    const store = await PostgresStore.open(db!.url);
    const ids = Array.from({ length: 6 }, () => uid());
    for (const id of ids) {
      await store.insertBatch(batch(id), null);
      await store.insertItems(id, lines(200));
      await store.claimItems(id, "w", 200, 1000, 1e12);
    }
    // 40 commits at once, each of 5 lines of every batch, the batches in a rotated order per commit: each pair of
    // batches comes in both orders, so their batch_counts rows are locked in both orders.
    const commits = Array.from({ length: 40 }, (_, g) => {
      const order = ids.map((_, k) => ids[(k + g) % ids.length]!);
      if (g % 2) order.reverse();
      const records = order.flatMap((id) => Array.from({ length: 5 }, (_, j) => ({ batch_id: id, line: 1 + g * 5 + j, lease_owner: "w", outcome: ok })));
      return store.recordOutcomes(records, 10);
    });
    expect((await Promise.all(commits)).reduce((x, y) => x + y, 0)).toBe(1200);
    for (const id of ids) expect((await store.countItems(id)).counts).toMatchObject({ total: 200, completed: 200, pending: 0 });
    await store.close();
  });

  it("a claim starts where the last one ended, and still finds an item returned to the queue behind that point", async () => {
    const store = await PostgresStore.open(db!.url);
    const b = uid();
    await store.insertBatch(batch(b), null);
    await store.insertItems(b, lines(10));
    const claim = async (n: number) => (await store.claimItems(b, "w", n, 1000, 1e12)).map((i) => i.line);
    expect(await claim(3)).toEqual([1, 2, 3]);
    expect(await claim(3)).toEqual([4, 5, 6]);
    expect(await store.requeueItem(b, 2, "w", 0)).toBe(true); // behind the last claim's end
    expect(await store.requeueItem(b, 5, "w", 5000)).toBe(true); // not due yet
    expect(await claim(10)).toEqual([2, 7, 8, 9, 10]);
    expect(await claim(10)).toEqual([]);
    expect(await store.requeueItem(b, 9, "w", 0)).toBe(true);
    expect(await claim(10)).toEqual([9]);
    await store.close();
  });

  it("concurrent claims by many workers never hand out one item twice (FOR UPDATE SKIP LOCKED)", async () => {
    const store = await PostgresStore.open(db!.url);
    const b = uid();
    await store.insertBatch(batch(b), null);
    await store.insertItems(b, lines(500));
    const claims = await Promise.all(Array.from({ length: 10 }, (_, w) => (async () => {
      const got: number[] = [];
      for (;;) {
        const items = await store.claimItems(b, `w${w}`, 7, Date.now(), Date.now() + 60_000);
        if (items.length === 0) return got;
        got.push(...items.map((i) => i.line));
      }
    })()));
    const all = claims.flat().sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    await store.close();
  });

  it("a worker whose heartbeat stops has its leases returned at once; a live one keeps them", async () => {
    const live = await PostgresStore.open(db!.url, { heartbeatMs: 100, deadAfterMs: 400 });
    const dying = await PostgresStore.open(db!.url, { heartbeatMs: 100, deadAfterMs: 400 });
    const b = uid();
    await live.insertBatch(batch(b), null);
    await live.insertItems(b, lines(4));
    await live.registerWorker("worker_live", ["up"]);
    await dying.registerWorker("worker_dying", ["up"]);
    await live.budgets.refresh(Date.now(), 400);
    expect(live.budgets.share("up")).toBe(0.5);
    await live.claimItems(b, "worker_live", 2, Date.now(), Date.now() + 3_600_000);
    await dying.claimItems(b, "worker_dying", 2, Date.now(), Date.now() + 3_600_000);
    // kill -9 as the database sees it: the heartbeat stops, nothing is cleaned up.
    clearInterval((dying as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
    (dying as unknown as { closed: boolean }).closed = true;
    for (let i = 0; i < 100 && (await live.pageItems(b, 0, 10, ["queued"])).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    const states = (await live.pageItems(b, 0, 10)).map((i) => i.state);
    expect(states).toEqual(["in_flight", "in_flight", "queued", "queued"]);
    await live.budgets.refresh(Date.now(), 400);
    expect(live.budgets.share("up")).toBe(1);
    await live.close();
    await (dying as unknown as { db: { close: () => Promise<void> } }).db.close();
  });

  it("one finalizer per batch: the lock is exclusive across processes and freed with its holder", async () => {
    const a = await PostgresStore.open(db!.url);
    const b2 = await PostgresStore.open(db!.url);
    const release = await a.lockBatch("batch_x");
    expect(release).not.toBeNull();
    expect(await b2.lockBatch("batch_x")).toBeNull();
    await a.close();
    // The holder's connection is gone, so its lock is.
    const again = await b2.lockBatch("batch_x");
    expect(again).not.toBeNull();
    await again!();
    await b2.close();
  });

  it("blobs are stored in chunks and read back whole or by range; a commit replaces atomically", async () => {
    const store = await PostgresStore.open(db!.url);
    const blobs = new PgBlobStore(store.db);
    const bytes = randomBytes(700 * 1024);
    const w = blobs.openWriter("file-big");
    await pipeline(Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]), w.stream);
    expect(await blobs.size("file-big")).toBeNull();
    await w.commit();
    expect(await blobs.size("file-big")).toBe(bytes.length);
    const read = async (range?: { start: number; end?: number }) => Buffer.concat(await blobs.openReader("file-big", range).toArray());
    expect((await read()).equals(bytes)).toBe(true);
    expect((await read({ start: 262_000, end: 600_000 })).equals(bytes.subarray(262_000, 600_001))).toBe(true);
    const chunks = await store.db.rows<{ n: number }>(`SELECT count(*)::int AS n FROM blob_chunks c JOIN blob_writes w USING (key) WHERE w.id = 'file-big'`);
    expect(chunks[0]!.n).toBe(3);
    // Pieces appended over several streams (resumable uploads), then committed over the old bytes.
    const w2 = blobs.openWriter("file-big");
    await pipeline(Readable.from([Buffer.from("hello ")]), w2.stream);
    await pipeline(Readable.from([Buffer.from("world")]), w2.append!());
    await w2.commit();
    expect((await read()).toString()).toBe("hello world");
    const err = await blobs.openReader("file-missing").toArray().catch((e) => e);
    expect(err.code).toBe("ENOENT");
    await store.close();
  });
});

describe("item ids carry their line", () => {
  it("lineInItemId reads the line of an id itemIds made, and nothing from any other shape", () => {
    const ids = itemIds([1, 255, 2 ** 40]);
    expect(ids.map(lineInItemId)).toEqual([1, 255, 2 ** 40]);
    expect(lineInItemId("batch_req_" + "f".repeat(23))).toBeNull();
    expect(lineInItemId("batch_req_" + "A".repeat(24))).toBeNull();
    expect(lineInItemId("req_" + "0".repeat(24))).toBeNull();
  });
});
