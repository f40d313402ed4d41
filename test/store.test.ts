import { describe, expect, it } from "vitest";
import type { Batch, ItemOutcome } from "../src/core/batch.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";

function batch(id: string): Batch {
  return {
    id, dialect: "openai", owner: "", endpoint: "/v1/chat/completions", model: "m", provider: "up", input_file_id: "file-x",
    completion_window: "24h", status: "in_progress", errors: null, output_file_id: null, error_file_id: null, metadata: null,
    created_at: 0, in_progress_at: 0, expires_at: 1e15, finalizing_at: null, completed_at: null, failed_at: null,
    expired_at: null, cancelling_at: null, cancelled_at: null, final_status: null, priority: 0, name: null, description: null,
  };
}
const ok: ItemOutcome = { state: "succeeded", status_code: 200, request_id: "r", response_body: "{}", error_code: null, error_message: null, usage: null };

describe("leases in the SQLite store", () => {
  it("a dead worker's expired lease returns the item to the queue, and its late outcome is ignored", async () => {
    const store = new SqliteStore(":memory:");
    await store.insertBatch(batch("b1"), null);
    await store.insertItems("b1", [1, 2, 3].map((line) => ({ line, custom_id: `c${line}`, model: "m", body: "{}" })));

    const claimedByA = await store.claimItems("b1", "worker-a", 2, 1000, 2000);
    expect(claimedByA.map((i) => i.line)).toEqual([1, 2]);
    expect(claimedByA.every((i) => i.attempts === 1)).toBe(true);
    // Leased items are not claimable by anyone else while the lease holds.
    expect((await store.claimItems("b1", "worker-b", 5, 1500, 3000)).map((i) => i.line)).toEqual([3]);

    // Worker A dies; at t=2500 its leases have ended and return to the queue.
    expect(await store.releaseLeases("b1", 2500)).toBe(2);
    const retaken = await store.claimItems("b1", "worker-b", 5, 2500, 9000);
    expect(retaken.map((i) => [i.line, i.attempts])).toEqual([[1, 2], [2, 2]]);

    // A's late answer for item 1 is not recorded; B's is, exactly once.
    expect(await store.recordOutcomes([{ batch_id: "b1", line: 1, lease_owner: "worker-a", outcome: ok }], 3000)).toBe(0);
    expect(await store.recordOutcomes([{ batch_id: "b1", line: 1, lease_owner: "worker-b", outcome: ok }], 3000)).toBe(1);
    expect(await store.recordOutcomes([{ batch_id: "b1", line: 1, lease_owner: "worker-b", outcome: ok }], 3000)).toBe(0);
    const { counts } = await store.countItems("b1");
    expect(counts).toMatchObject({ total: 3, completed: 1, pending: 2 });
    await store.close();
  });

  it("queued items wait for their next attempt time", async () => {
    const store = new SqliteStore(":memory:");
    await store.insertBatch(batch("b2"), null);
    await store.insertItems("b2", [{ line: 1, custom_id: "a", model: "m", body: "{}" }]);
    const [item] = await store.claimItems("b2", "w", 1, 0, 100);
    expect(await store.requeueItem("b2", item!.line, "w", 500)).toBe(true);
    expect(await store.claimItems("b2", "w", 1, 499, 1000)).toEqual([]);
    expect(await store.nextAttemptAt("b2")).toBe(500);
    expect(await store.claimItems("b2", "w", 1, 500, 1000)).toHaveLength(1);
    await store.close();
  });
});
