import pg from "pg";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { startServer, waitFor, type TestServer } from "./support/harness.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

const reachable = await postgresReachable();
if (!reachable) console.warn("postgres-claim-ahead: no PostgreSQL at OPENBATCH_TEST_PG_URL / 127.0.0.1:5432 — skipped");

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A worker on PostgreSQL claims a round ahead of its free slots (engine/dispatcher.ts dispatchSingles). Against a slow
 * upstream those items would wait, their leases running out: once they waited longer than the lease allows beyond a
 * whole call, they go back to the queue and the batch claims only for free slots.
 */
describe.skipIf(!reachable)("claiming ahead on PostgreSQL", () => {
  let db: { url: string; drop: () => Promise<void> };
  let upstream: FakeUpstream;
  let server: TestServer;
  let sql: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    upstream = await new FakeUpstream().start();
    // Lease 5.3 s, provider timeout 5 s: an item claimed ahead may wait 0.3 s.
    server = await startServer(
      { leaseMs: 5300, providers: { up: { type: "openai-compatible", baseURL: upstream.url, maxConcurrency: 2, rpm: 1_000_000, timeoutMs: 5000 } }, models: { "*": "up" } },
      { databaseUrl: db.url },
    );
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await server?.close();
    await upstream?.stop();
    await db?.drop();
  });

  const inFlight = async () => Number((await sql.query(`SELECT count(*) AS n FROM request_items WHERE state = 'in_flight'`)).rows[0].n);

  it("items that waited past their share of the lease go back to the queue; each custom_id is sent and recorded once", async () => {
    // Calls 1-2 are held until released; calls 3-4 take 1 s; the rest answer at once.
    let n = 0;
    upstream.plan = () => (++n <= 2 ? { kind: "held" } : n <= 4 ? { kind: "delay", ms: 1000 } : { kind: "ok" });
    const client = server.client();
    const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ custom_id: `c${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: `k${i}` }] } }));
    const file = await client.files.create({ file: await toFile(Buffer.from(lines.join("\n") + "\n"), "in.jsonl"), purpose: "batch" });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });

    await until(() => upstream.calls.length === 2, "the first two calls");
    await until(async () => (await inFlight()) === 4, "two more items claimed ahead"); // 2 sent + 2 leased, unsent
    await new Promise((r) => setTimeout(r, 600)); // longer than the 0.3 s they may wait
    upstream.release();
    await until(() => upstream.calls.length === 4, "the next two calls");
    // The two claimed ahead went back to the queue and were claimed again for the freed slots; nothing more ahead.
    expect(await inFlight()).toBe(2);

    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toMatchObject({ total: 6, completed: 6, failed: 0 });
    expect([...upstream.perKey.entries()].sort()).toEqual(Array.from({ length: 6 }, (_, i) => [`k${i}`, 1]));
    const output = (await (await client.files.content(done.output_file_id!)).text()).trim().split("\n").map((l) => JSON.parse(l).custom_id);
    expect(output.sort()).toEqual(Array.from({ length: 6 }, (_, i) => `c${i}`));
  });
});
