import { describe, it } from "vitest";
import { engineContract } from "./support/engine-contract.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/**
 * The engine's contract (leases, crash recovery, cancel, expiry, exactly-once, every dialect) on both stores, one test
 * body (support/engine-contract.ts). SQLite: a fresh data dir per test (the harness's). PostgreSQL: a database created
 * for each test and dropped after it; skipped, saying so, when no PostgreSQL answers (support/postgres.ts).
 */
engineContract({ name: "SQLite", fresh: async () => ({ drop: async () => undefined }) });

const reachable = await postgresReachable();
if (reachable) {
  engineContract({ name: "PostgreSQL", fresh: () => createTestDatabase() });
} else {
  describe("engine contract on PostgreSQL", () => {
    it.skip("skipped: no PostgreSQL reachable (see the message on stderr; set OPENBATCH_TEST_PG_URL)", () => undefined);
  });
}
