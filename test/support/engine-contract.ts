import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI, type BatchJob } from "@google/genai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { exited, freePort, spawnCli, waitHealthy } from "./child.js";
import { FakeUpstream, type Fault, type UpstreamCall } from "./fake-upstream.js";
import { chatLines, readJsonl, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./harness.js";

/**
 * Where one contract test keeps its state: a fresh, empty store each time `fresh()` is called. `databaseUrl` absent
 * means the embedded SQLite store in the data dir; a `postgres://` URL means PostgreSQL. `drop` removes it afterwards.
 */
export interface ContractStore {
  /** Shown in the describe title: "SQLite", "PostgreSQL". */
  name: string;
  fresh(): Promise<{ databaseUrl?: string; drop(): Promise<void> }>;
}

const API_KEY = "contract-key";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const keysOf = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix} ${i}`);
const customIds = (n: number) => Array.from({ length: n }, (_, i) => `req-${i}`).sort();

/**
 * Registers the engine's contract tests on one store, so SQLite and PostgreSQL run the same test body
 * (test/engine-contract.test.ts): a batch end to end through the openai SDK (every custom_id once), cancel mid-run,
 * expiry, retries on 429 and 500, kill -9 of a `serve` process mid-batch and a restart on the same store (every
 * custom_id recorded exactly once), and one batch each in the Anthropic, Gemini and seed-001 dialects through their own
 * clients (seed 001 has no SDK: raw HTTP as its docs show).
 * @param store how to get a fresh store for one test.
 */
export function engineContract(store: ContractStore): void {
  describe(`engine contract on ${store.name}`, () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      // Last opened first: the server before its upstream, the store last.
      while (cleanup.length) await cleanup.pop()!();
    });

    /** A fresh store, a fake upstream following `plan`, and an in-process server on them. */
    async function rig(plan: (call: UpstreamCall, n: number) => Fault, provider: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
      const location = await store.fresh();
      cleanup.push(location.drop);
      const upstream = await new FakeUpstream().start();
      upstream.plan = plan;
      cleanup.push(() => upstream.stop());
      const server: TestServer = await startServer({ ...upstreamConfig(upstream.url, provider), apiKeys: [API_KEY], ...extra }, { databaseUrl: location.databaseUrl });
      cleanup.push(() => server.close());
      // The test proves what it says only if the engine really runs on the store named.
      expect(server.engine.store.constructor.name).toBe(location.databaseUrl ? "PostgresStore" : "SqliteStore");
      return { upstream, server, client: server.client(API_KEY), location };
    }

    async function submit(client: OpenAI, keys: string[], completionWindow = "24h") {
      const file = await uploadJsonl(client, chatLines(keys));
      // OpenBatch accepts any duration; the SDK's type only knows "24h".
      return client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: completionWindow as "24h" });
    }

    /** Output and error lines of a finished batch, checked to hold every custom_id exactly once between them. */
    async function results(client: OpenAI, batch: OpenAI.Batches.Batch, n: number) {
      const out = await readJsonl(client, batch.output_file_id);
      const err = await readJsonl(client, batch.error_file_id);
      const ids = [...out, ...err].map((l) => l.custom_id as string).sort();
      expect(ids).toEqual(customIds(n));
      return { out, err };
    }

    it("a batch end to end through the openai SDK: every custom_id once, each answer its own", async () => {
      const { upstream, client } = await rig(() => ({ kind: "delay", ms: 5 }));
      const keys = keysOf(120, "e2e");
      const done = await waitFor(client, (await submit(client, keys)).id);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: 120, completed: 120, failed: 0 });
      const { out, err } = await results(client, done, 120);
      expect(err).toEqual([]);
      for (const l of out) {
        const i = Number(l.custom_id.slice(4));
        expect(l.response.status_code).toBe(200);
        expect(l.response.body.choices[0].message.content).toBe(`echo: ${keys[i]}`);
      }
      expect(upstream.perKey.size).toBe(120);
      expect([...upstream.perKey.values()].every((n) => n === 1)).toBe(true);
      expect((await client.batches.list({ limit: 5 })).data.map((b) => b.id)).toContain(done.id);
    });

    it("cancel mid-run: partial output kept, the rest batch_cancelled, no calls after it settles", async () => {
      const { upstream, client } = await rig(() => ({ kind: "delay", ms: 200 }), { maxConcurrency: 4 });
      const created = await submit(client, keysOf(200, "cancel"));
      await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 8, 30_000);
      const cancelling = await client.batches.cancel(created.id);
      expect(["cancelling", "cancelled"]).toContain(cancelling.status);
      const done = await waitFor(client, created.id);
      expect(done.status).toBe("cancelled");
      expect(done.cancelled_at).toBeTruthy();
      const { out, err } = await results(client, done, 200);
      expect(out.length).toBeGreaterThanOrEqual(8);
      expect(done.request_counts?.completed).toBe(out.length);
      expect(err.length).toBeGreaterThan(0);
      for (const l of err) expect(l.error).toEqual({ code: "batch_cancelled", message: expect.any(String) });
      const calls = upstream.calls.length;
      expect(calls).toBeLessThan(200);
      await sleep(1000);
      expect(upstream.calls.length).toBe(calls);
    });

    it("expiry: a 2 s completion window ends expired, partial output kept, the rest batch_expired", async () => {
      const { upstream, client } = await rig(() => ({ kind: "delay", ms: 300 }), { maxConcurrency: 2 });
      const created = await submit(client, keysOf(40, "expire"), "2s");
      expect(created.expires_at! - created.created_at).toBe(2);
      const done = await waitFor(client, created.id, undefined, 30_000);
      expect(done.status).toBe("expired");
      expect(done.expired_at).toBeTruthy();
      const { out, err } = await results(client, done, 40);
      expect(out.length).toBeGreaterThan(0);
      expect(err.length).toBeGreaterThan(0);
      for (const l of err) expect(l.error).toEqual({ code: "batch_expired", message: "This request could not be executed before the completion window expired." });
      const calls = upstream.calls.length;
      expect(calls).toBeLessThan(40);
      await sleep(700);
      expect(upstream.calls.length).toBe(calls);
    });

    it("retries on 429 and 500: each item's first attempt refused, every item completed, each retried once", async () => {
      // A third get 429 with retry-after-ms, a third 429 with a whole-second retry-after, a third a bare 500 (the
      // engine's own jittered backoff, a fractional number of ms). Leases far longer than the test: a retry must come
      // from the requeue, not from a lease running out.
      const { upstream, client } = await rig((call, n): Fault => {
        if (n > 1) return { kind: "ok" };
        const i = Number(call.key.split(" ")[1]);
        if (i % 3 === 0) return { kind: "status", status: 429, headers: { "retry-after-ms": "20" } };
        if (i % 3 === 1) return { kind: "status", status: 429, headers: { "retry-after": "1" } };
        return { kind: "status", status: 500 };
      }, {}, { leaseMs: 600_000 });
      const keys = keysOf(30, "retry");
      const done = await waitFor(client, (await submit(client, keys)).id);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: 30, completed: 30, failed: 0 });
      const { out } = await results(client, done, 30);
      expect(out.every((l) => l.response.status_code === 200)).toBe(true);
      for (const k of keys) expect(upstream.count(k)).toBe(2);
    });

    it("500 and 503 on every first attempt: each item requeued after a fractional delay and completed", async () => {
      // The lease is far longer than the test, so only the requeue can bring an item back.
      // Half get a bare 500, half a 503 whose retry-after-ms is fractional: both delays are a fractional number of ms.
      const { upstream, client } = await rig(
        (call, n): Fault => (n > 1 ? { kind: "ok" } : Number(call.key.split(" ")[1]) % 2 ? { kind: "status", status: 503, headers: { "retry-after-ms": "30.5" } } : { kind: "status", status: 500 }),
        {},
        { leaseMs: 600_000 },
      );
      const keys = keysOf(10, "bare");
      const done = await waitFor(client, (await submit(client, keys)).id, undefined, 30_000);
      expect(done.request_counts).toEqual({ total: 10, completed: 10, failed: 0 });
      await results(client, done, 10);
      for (const k of keys) expect(upstream.count(k)).toBe(2);
    });

    it("kill -9 of a serve process mid-batch, restart on the same store: every custom_id recorded exactly once", async () => {
      const location = await store.fresh();
      cleanup.push(location.drop);
      const upstream = await new FakeUpstream().start();
      upstream.plan = () => ({ kind: "delay", ms: 30 });
      cleanup.push(() => upstream.stop());
      const dir = await mkdtemp(join(tmpdir(), "openbatch-contract-crash-"));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, "config.json"), JSON.stringify({ ...upstreamConfig(upstream.url), apiKeys: [API_KEY], retry: { baseDelayMs: 20, maxDelayMs: 200 } }));
      const port = await freePort();
      const args = ["serve", "--port", String(port), "--grpc-port", "0", "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
      if (location.databaseUrl) args.push("--database-url", location.databaseUrl);
      let server = spawnCli(args);
      cleanup.push(async () => {
        if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
        await exited(server);
      });
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: API_KEY, maxRetries: 0 });
      const n = 400;
      const batch = await submit(client, keysOf(n, "crash"));
      await waitFor(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= n / 4);
      server.kill("SIGKILL");
      await exited(server);
      expect(upstream.calls.length).toBeLessThan(n);

      server = spawnCli(args);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const done = await waitFor(client, batch.id, undefined, 120_000);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      const { err } = await results(client, done, n);
      expect(err).toEqual([]);
      // At-least-once upstream: only calls in flight at the kill (8) or answered but not yet committed may repeat.
      expect(upstream.perKey.size).toBe(n);
      expect([...upstream.perKey.values()].filter((c) => c > 1).length).toBeLessThanOrEqual(16);
    });

    it("an Anthropic Message Batch through @anthropic-ai/sdk: ended, one succeeded result per custom_id", async () => {
      const { server, upstream } = await rig(() => ({ kind: "ok" }));
      const client = new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: API_KEY });
      const requests = Array.from({ length: 5 }, (_, i) => ({
        custom_id: `q-${i}`,
        params: { model: "claude-sonnet-4", max_tokens: 32, messages: [{ role: "user" as const, content: `question ${i}` }] },
      }));
      const created = await client.messages.batches.create({ requests });
      let batch = created;
      for (let i = 0; i < 2400 && batch.processing_status !== "ended"; i++) {
        await sleep(25);
        batch = await client.messages.batches.retrieve(created.id);
      }
      expect(batch.processing_status).toBe("ended");
      expect(batch.request_counts).toMatchObject({ succeeded: 5, errored: 0, canceled: 0, expired: 0, processing: 0 });
      const got: Anthropic.Messages.Batches.MessageBatchIndividualResponse[] = [];
      for await (const r of await client.messages.batches.results(created.id)) got.push(r);
      expect(got.map((r) => r.custom_id).sort()).toEqual(requests.map((r) => r.custom_id));
      for (const r of got) {
        expect(r.result.type).toBe("succeeded");
        if (r.result.type === "succeeded") expect(r.result.message.content[0]).toMatchObject({ type: "text", text: `echo: question ${r.custom_id.slice(2)}` });
      }
      expect(upstream.calls).toHaveLength(5);
    });

    it("a Gemini inline batch through @google/genai: SUCCEEDED, responses in input order", async () => {
      const { server, upstream } = await rig(() => ({ kind: "ok" }));
      const ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: server.url.replace(/\/v1$/, "") } });
      const created = await ai.batches.create({ model: "gemini-2.5-flash", src: [0, 1, 2, 3].map((i) => ({ contents: [{ role: "user", parts: [{ text: `hello ${i}` }] }] })) });
      let job: BatchJob = created;
      for (let i = 0; i < 2400 && !["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"].includes(job.state!); i++) {
        await sleep(25);
        job = await ai.batches.get({ name: created.name! });
      }
      expect(job.state).toBe("JOB_STATE_SUCCEEDED");
      const texts = job.dest!.inlinedResponses!.map((r) => r.response!.candidates![0]!.content!.parts![0]!.text);
      expect(texts).toEqual(["echo: hello 0", "echo: hello 1", "echo: hello 2", "echo: hello 3"]);
      expect(upstream.calls).toHaveLength(4);
    });

    it("a seed-001 batch over HTTP: create, add requests, start, every custom_id's result once", async () => {
      const { server, upstream } = await rig(() => ({ kind: "ok" }));
      const http = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as any };
      };
      const created = await http("POST", "/batches", { name: "contract", model: "grok-4", endpoint: "/v1/chat/completions" });
      expect(created.status).toBe(200);
      const id = created.body.id;
      const requests = Array.from({ length: 6 }, (_, i) => ({ custom_id: `req-${i}`, body: { model: "grok-4", messages: [{ role: "user", content: `text ${i}` }] } }));
      expect((await http("POST", `/batches/${id}/requests`, { requests })).body.request_count).toBe(6);
      expect((await http("POST", `/batches/${id}/start`)).body.status).toBe("processing");
      let batch: any;
      for (let i = 0; i < 2400; i++) {
        batch = (await http("GET", `/batches/${id}`)).body;
        if (batch.status === "completed") break;
        await sleep(25);
      }
      expect(batch).toMatchObject({ status: "completed", request_count: 6, completed_count: 6, failed_count: 0 });
      const page = await http("GET", `/batches/${id}/results?limit=100`);
      expect(page.body.data.map((r: any) => r.custom_id).sort()).toEqual(customIds(6));
      for (const r of page.body.data) expect(r.response.choices[0].message.content).toBe(`echo: text ${r.custom_id.slice(4)}`);
      expect(upstream.calls).toHaveLength(6);
    });
  });
}
