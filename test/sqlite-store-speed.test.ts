import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Batch } from "../src/core/batch.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";

/** What the engine-overhead work changed in the SQLite store: checkpoints off the loop, ids in line order, byte-bounded pages in one query. */

function batch(id: string): Batch {
  return {
    id, dialect: "openai", owner: "", endpoint: "/v1/chat/completions", model: "m", provider: "up", input_file_id: "file-x",
    completion_window: "24h", status: "in_progress", errors: null, output_file_id: null, error_file_id: null, metadata: null,
    created_at: 0, in_progress_at: 0, expires_at: 1e15, finalizing_at: null, completed_at: null, failed_at: null,
    expired_at: null, cancelling_at: null, cancelled_at: null, final_status: null, priority: 0, name: null, description: null,
  };
}

const lines = (from: number, n: number, body = "{}") => Array.from({ length: n }, (_, i) => ({ line: from + i, custom_id: `c${from + i}`, model: "m", body }));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "openbatch-sqlite-speed-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("SQLite store", () => {
  it("checkpoints its WAL on a thread of its own: committed pages reach the database file with no commit checkpointing", async () => {
    const path = join(dir, "openbatch.db");
    const store = new SqliteStore(path);
    await store.insertBatch(batch("b1"), null);
    // Fewer pages than both SQLite's default autocheckpoint (1000) and the store's backstop wait for: only the thread
    // copies them.
    for (let i = 0; i < 5; i++) await store.insertItems("b1", lines(1 + i * 100, 100, JSON.stringify({ text: "x".repeat(2000) })));
    // Read-only observation: the database file only grows when a checkpoint copies pages into it (a checkpoint of our
    // own would copy them itself).
    const probe = new Database(path, { readonly: true });
    const pages = probe.pragma("page_count", { simple: true }) as number;
    const bytes = pages * (probe.pragma("page_size", { simple: true }) as number);
    probe.close();
    expect(pages).toBeGreaterThan(300);
    expect(pages).toBeLessThan(1000);
    let size = statSync(path).size;
    for (let i = 0; i < 200 && size < bytes; i++) {
      await new Promise((r) => setTimeout(r, 25));
      size = statSync(path).size;
    }
    expect(size).toBe(bytes);
    await store.close();
  });

  it("closes its checkpoint thread with the store, and opens again on the same file", async () => {
    const path = join(dir, "openbatch.db");
    const first = new SqliteStore(path);
    await first.insertBatch(batch("b1"), null);
    await first.insertItems("b1", lines(1, 10));
    await first.close();
    const second = new SqliteStore(path);
    expect((await second.countItems("b1")).counts.total).toBe(10);
    await second.close();
  });

  it("makes a new database with 8 KiB pages and leaves an existing one's as they are", async () => {
    const fresh = join(dir, "fresh.db");
    await new SqliteStore(fresh).close();
    const old = join(dir, "old.db");
    const made = new Database(old);
    made.pragma("journal_mode = WAL");
    made.exec("CREATE TABLE t (x)");
    made.close();
    const store = new SqliteStore(old);
    await store.insertBatch(batch("b1"), null);
    await store.close();
    const pageSize = (file: string) => {
      const db = new Database(file, { readonly: true });
      const size = db.pragma("page_size", { simple: true });
      db.close();
      return size;
    };
    expect(pageSize(fresh)).toBe(8192);
    expect(pageSize(old)).toBe(4096);
  });

  it("gives the items of one insert distinct ids in line order, in OpenAI's shape", async () => {
    const store = new SqliteStore(":memory:");
    await store.insertBatch(batch("b1"), null);
    await store.insertItems("b1", lines(1, 300));
    await store.insertItems("b1", lines(301, 300));
    const items = await store.pageItems("b1", 0, 1000);
    expect(items).toHaveLength(600);
    for (const item of items) expect(item.id).toMatch(/^batch_req_[0-9a-f]{24}$/);
    expect(new Set(items.map((i) => i.id)).size).toBe(600);
    const firstCall = items.slice(0, 300).map((i) => i.id);
    expect(firstCall).toEqual([...firstCall].sort());
    // Each call draws its own random part.
    expect(items[0]!.id.slice(0, 22)).not.toBe(items[300]!.id.slice(0, 22));
    for (const item of [items[0]!, items[450]!]) expect(await store.lineOfItem("b1", item.id)).toBe(item.line);
    await store.close();
  });

  it("ends a byte-bounded page before the item that does not fit, and always holds one", async () => {
    const store = new SqliteStore(":memory:");
    await store.insertBatch(batch("b1"), null);
    await store.insertItems("b1", lines(1, 5));
    const claimed = await store.claimItems("b1", "w", 5, 0, 1e15);
    // Bodies of 100, 200, 300, 400 and 500 bytes (two-byte characters count two).
    const sizes = [100, 200, 300, 400, 500];
    await store.recordOutcomes(
      claimed.map((item, i) => ({
        batch_id: "b1", line: item.line, lease_owner: "w",
        outcome: { state: "succeeded", status_code: 200, request_id: "r", response_body: JSON.stringify("é".repeat((sizes[i]! - 2) / 2)), error_code: null, error_message: null, usage: null },
      })),
      1,
    );
    expect((await store.pageItems("b1", 0, 10, ["succeeded"], 600)).map((i) => i.line)).toEqual([1, 2, 3]);
    expect((await store.pageItems("b1", 0, 10, ["succeeded"], 599)).map((i) => i.line)).toEqual([1, 2]);
    expect((await store.pageItems("b1", 3, 10, ["succeeded"], 10)).map((i) => i.line)).toEqual([4]);
    expect((await store.pageItems("b1", 0, 2, ["succeeded"], 1e9)).map((i) => i.line)).toEqual([1, 2]);
    expect((await store.pageItems("b1", 0, 10, ["failed"], 1e9)).map((i) => i.line)).toEqual([]);
    await store.close();
  });
});
