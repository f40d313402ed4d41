import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgBudgets } from "../src/store/postgres/budgets.js";
import { PgDatabase } from "../src/store/postgres/db.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/*
 * Issue 13, shared budgets: every worker on one database reserves its provider's send slots on one schedule
 * (provider_slots), so N workers together send 60 s ÷ rpm apart, however their reservations interleave.
 */
describe.skipIf(!(await postgresReachable()))("the send schedule workers share in PostgreSQL", () => {
  let db: { url: string; drop: () => Promise<void> };
  const pools: PgDatabase[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    for (let i = 0; i < 3; i++) pools.push(new PgDatabase(db.url));
    await pools[0]!.migrate();
  });
  afterAll(async () => {
    for (const p of pools) await p.close();
    await db?.drop();
  });

  it("gives three workers' 90 concurrent reservations 90 distinct slots one interval apart", async () => {
    const workers = pools.map((p) => new PgBudgets(p));
    const intervalMs = 1_000;
    const started = performance.now();
    const waits = (await Promise.all(workers.flatMap((w) => Array.from({ length: 30 }, () => w.reserveSlot("up", intervalMs))))).sort((a, b) => a - b);
    const elapsed = performance.now() - started;
    // Slot k is the first slot + k intervals, reserved at most `elapsed` after the first: its wait is at least
    // k × interval − elapsed, and at most k × interval (+ the clock's resolution). Workers pacing alone would all wait ~0.
    waits.forEach((w, k) => {
      expect(w, `slot ${k}`).toBeGreaterThanOrEqual(k * intervalMs - elapsed - 1);
      expect(w, `slot ${k}`).toBeLessThanOrEqual(k * intervalMs + 1);
    });
    // Another provider has a schedule of its own.
    expect(await workers[0]!.reserveSlot("other", intervalMs)).toBeLessThanOrEqual(1);
  });
});
