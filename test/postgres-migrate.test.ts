import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { toFile } from "openai";
import pg from "pg";
import weaviate from "weaviate-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/cli/migrate.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";
import { createTestDatabase, postgresReachable } from "./support/postgres.js";

/**
 * `openbatch migrate`: a data dir filled through the SDKs (a finished batch with its output, a 1 MiB file, a
 * collection with vectors) is copied into PostgreSQL; a server on the database then answers the same through the same
 * SDKs, byte for byte, and takes new writes; a second run refuses the non-empty target.
 */
const reachable = await postgresReachable();
const TABLES = ["files", "batches", "request_items", "batch_counts", "webhook_events", "native_runs", "vendor_jobs", "collection_classes", "collection_objects", "collection_references"];

describe.skipIf(!reachable)("openbatch migrate --from <data dir> --to postgres://…", () => {
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  let upstream: FakeUpstream;
  const cleanup: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-migrate-"));
    upstream = await new FakeUpstream().start();
  });
  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
    await upstream?.stop();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("copies batches, items, files, collections and the vault secret; a server on PostgreSQL serves them unchanged", async () => {
    // 1. Fill the embedded store through the SDKs.
    const sqlite: TestServer = await startServer(upstreamConfig(upstream.url), { dataDir, grpcPort: 0 });
    const client = sqlite.client();
    const input = await uploadJsonl(client, chatLines(Array.from({ length: 40 }, (_, i) => `k${i}`)));
    const done = await waitFor(client, (await client.batches.create({ input_file_id: input.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).id);
    expect(done.status).toBe("completed");
    const output = Buffer.from(await (await client.files.content(done.output_file_id!)).arrayBuffer());
    const bigBytes = randomBytes(1024 * 1024 + 17);
    const big = await client.files.create({ file: await toFile(bigBytes, "big.jsonl"), purpose: "batch" });
    const wv = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(sqlite.url).port), grpcPort: sqlite.grpcPort! });
    await wv.collections.create({ name: "Docs", properties: [{ name: "title", dataType: "text" }] });
    const ids = Array.from({ length: 30 }, () => randomUUID());
    const inserted = await wv.collections.get("Docs").data.insertMany(ids.map((id, i) => ({ id, properties: { title: `doc ${i}` }, vectors: [i, 1, 0] })));
    expect(inserted.hasErrors).toBe(false);
    const before = await wv.collections.get("Docs").query.fetchObjectById(ids[5]!);
    await wv.close();
    await sqlite.close();

    // 2. Migrate.
    const report = await migrate(dataDir, db.url);
    const src = new Database(join(dataDir, "openbatch.db"), { readonly: true });
    const pgc = new pg.Client({ connectionString: db.url });
    await pgc.connect();
    cleanup.push(() => pgc.end());
    for (const t of TABLES) {
      const n = (src.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      const m = Number((await pgc.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
      expect({ t, n: m }).toEqual({ t, n });
      expect({ t, reported: report.tables[t] }).toEqual({ t, reported: n });
    }
    src.close();
    expect(report.tables.request_items).toBe(40);
    expect(report.tables.collection_objects).toBe(30);
    expect(report.blobs).toBe(3); // input, output, big (no error file: nothing failed)
    expect(report.missingBlobs).toEqual([]);
    expect(report.secretCopied).toBe(true);
    const secret = (await readFile(join(dataDir, "secret.key"), "utf8")).trim();
    expect((await pgc.query(`SELECT value FROM openbatch_settings WHERE key = 'vault_secret'`)).rows[0].value).toBe(secret);

    // 3. A server on PostgreSQL (a fresh data dir: nothing local is left to read) answers the same.
    const onPg = await startServer(upstreamConfig(upstream.url), { grpcPort: 0, databaseUrl: db.url });
    cleanup.push(() => onPg.close());
    const pc = onPg.client();
    const again = await pc.batches.retrieve(done.id);
    expect(again).toMatchObject({ status: "completed", request_counts: done.request_counts, output_file_id: done.output_file_id, created_at: done.created_at, completed_at: done.completed_at });
    expect(Buffer.from(await (await pc.files.content(done.output_file_id!)).arrayBuffer()).equals(output)).toBe(true);
    expect(Buffer.from(await (await pc.files.content(big.id)).arrayBuffer()).equals(bigBytes)).toBe(true);
    expect((await pc.batches.list()).data.map((b) => b.id)).toContain(done.id);
    const wp = await weaviate.connectToLocal({ host: "127.0.0.1", port: Number(new URL(onPg.url).port), grpcPort: onPg.grpcPort! });
    cleanup.push(() => wp.close());
    const docs = wp.collections.get("Docs");
    const near = await docs.query.nearVector([12, 1, 0], { limit: 1 });
    expect(near.objects[0]!.uuid).toBe(ids[12]);
    const after = await docs.query.fetchObjectById(ids[5]!);
    expect(after?.properties).toEqual(before?.properties);
    expect(after?.metadata?.creationTime?.getTime()).toBe(before?.metadata?.creationTime?.getTime());
    // New writes take seqs past the copied ones.
    const fresh = randomUUID();
    expect((await docs.data.insertMany([{ id: fresh, properties: { title: "new" }, vectors: [100, 1, 0] }])).hasErrors).toBe(false);
    expect((await docs.query.nearVector([100, 1, 0], { limit: 1 })).objects[0]!.uuid).toBe(fresh);
    expect((await docs.aggregate.overAll()).totalCount).toBe(31);
    const second = await uploadJsonl(pc, chatLines(["z1", "z2"]));
    expect((await waitFor(pc, (await pc.batches.create({ input_file_id: second.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).id)).status).toBe("completed");
  }, 120_000);

  it("refuses a target that is not empty, and a target that is not PostgreSQL", async () => {
    await expect(migrate(dataDir, db.url)).rejects.toThrow(/not empty/);
    await expect(migrate(dataDir, join(dataDir, "elsewhere"))).rejects.toThrow(/postgres:\/\//);
  });
});
