import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, upstreamConfig, uploadJsonl, waitFor } from "./support/harness.js";

const N = 300;
const MAX_CONCURRENCY = 8;
const keys = Array.from({ length: N }, (_, i) => `item ${i}`);

/**
 * What a kill -9 makes us send again is bounded by the calls in flight: a call keeps its concurrency slot until its
 * outcome is committed, so answered-but-unwritten calls plus calls on the wire never exceed maxConcurrency.
 *
 * The upstream answers at once and kills the server from inside its handler as call `killAt` arrives, or earlier at
 * the first call that finds more than maxConcurrency received calls uncommitted in the server's database. The old
 * dispatcher (slot freed as soon as the answer was buffered, commit up to 5 ms later) reached 16 there within the
 * first calls, and the kill then made it repeat more than 8.
 */
describe("repeats after kill -9 are bounded by maxConcurrency", () => {
  let upstream: FakeUpstream;
  let dir: string;
  beforeEach(async () => {
    upstream = await new FakeUpstream().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-repeats-"));
    await writeFile(
      join(dir, "config.json"),
      // rpm known: the AIMD window opens straight to maxConcurrency, so all 8 slots are busy when the kill comes.
      JSON.stringify({ providers: { up: { type: "openai-compatible", baseURL: upstream.url, maxConcurrency: MAX_CONCURRENCY, rpm: 1_000_000 } }, models: { "*": "up" }, retry: { baseDelayMs: 20, maxDelayMs: 200 } }),
    );
  });
  afterEach(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const killAt of [100, 250]) {
    it(`kill -9 by call ${killAt} (sooner if the bound breaks): at most ${MAX_CONCURRENCY} custom_ids sent twice, each exactly once in the output`, async () => {
      const port = await freePort();
      const args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
      let server = spawnCli(args);
      let killed = false;
      let db: Database.Database | null = null;
      upstream.plan = () => {
        if (killed) return { kind: "ok" };
        // Calls received whose outcome the server has not committed: what a kill now makes it send again. Read from
        // its database file (WAL: a reader sees every committed transaction), so the kill also lands at the worst
        // moment seen, if the bound is ever broken before call `killAt`.
        db ??= new Database(join(dir, "data", "openbatch.db"), { readonly: true, fileMustExist: true });
        const { done } = db.prepare(`SELECT count(*) AS done FROM request_items WHERE state NOT IN ('queued', 'in_flight')`).get() as { done: number };
        if (upstream.calls.length >= killAt || upstream.calls.length - done > MAX_CONCURRENCY) {
          killed = true;
          server.kill("SIGKILL");
        }
        return { kind: "ok" };
      };
      try {
        await waitHealthy(`http://127.0.0.1:${port}/healthz`);
        const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
        const file = await uploadJsonl(client, chatLines(keys));
        const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
        await exited(server);
        (db as Database.Database | null)?.close(); // assigned in the upstream plan, which TypeScript cannot see
        expect(killed).toBe(true);
        const seenBeforeRestart = upstream.perKey.size;
        expect(seenBeforeRestart).toBeLessThan(N);

        server = spawnCli(args);
        await waitHealthy(`http://127.0.0.1:${port}/healthz`);
        const done = await waitFor(client, batch.id);
        expect(done.status).toBe("completed");
        expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
        const out = await readJsonl(client, done.output_file_id);
        const errors = await readJsonl(client, done.error_file_id);
        expect(errors).toEqual([]);
        expect(out.map((l) => l.custom_id).sort()).toEqual(keys.map((_, i) => `req-${i}`).sort());
        expect(out.every((l) => l.response.status_code === 200)).toBe(true);

        expect(upstream.perKey.size).toBe(N);
        const repeated = [...upstream.perKey.entries()].filter(([, n]) => n > 1);
        expect(repeated.every(([, n]) => n === 2)).toBe(true);
        expect(repeated.length).toBeLessThanOrEqual(MAX_CONCURRENCY);
      } finally {
        server.kill("SIGKILL");
        await exited(server);
      }
    });
  }
});

/**
 * The same bound seen without a crash, at every call: when a call reaches the upstream, the calls it has received
 * whose outcome is not yet committed are exactly what a kill -9 at that moment would send again. In-process, the
 * upstream's handler runs on the engine's event loop, so each reading is a consistent snapshot.
 */
describe("calls received but not committed never exceed maxConcurrency", () => {
  let upstream: FakeUpstream;
  afterEach(async () => {
    await upstream.stop();
  });

  it("checked at each of 300 calls answered at once", async () => {
    upstream = await new FakeUpstream().start();
    const server = await startServer(upstreamConfig(upstream.url, { maxConcurrency: MAX_CONCURRENCY, rpm: 1_000_000 }));
    try {
      const exposed: Promise<number>[] = [];
      upstream.plan = () => {
        const received = upstream.calls.length;
        // itemTotals reads the store when called, so this is the committed count at this call's arrival.
        exposed.push(server.engine.store.itemTotals().then((t) => received - t.completed - t.failed));
        return { kind: "ok" };
      };
      const client = server.client();
      const file = await uploadJsonl(client, chatLines(keys));
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const done = await waitFor(client, batch.id);
      expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
      expect(exposed.length).toBe(N);
      const worst = Math.max(...(await Promise.all(exposed)));
      expect(worst).toBeGreaterThan(1); // the calls did overlap
      expect(worst).toBeLessThanOrEqual(MAX_CONCURRENCY);
    } finally {
      await server.close();
    }
  });
});
