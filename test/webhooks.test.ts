import Anthropic from "@anthropic-ai/sdk";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/core/config.js";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, chatLines, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

const SECRET = "whsec_" + randomBytes(32).toString("base64");
const OTHER_SECRET = "whsec_" + randomBytes(32).toString("base64");
/** Verifies signatures as a receiver would: the openai SDK (v7) with default options. */
const verifier = new OpenAI({ apiKey: "unused" });

/** One POST a receiver got. */
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the receiver answers to its n-th request (1-based): a status, or "hang" (never answers). */
type Answer = number | "hang";

/**
 * A webhook receiver on 127.0.0.1 that records every POST and answers as `answer` says. It can stop and start again
 * on the same port (a receiver that is down for a while).
 */
class Receiver {
  readonly received: Received[] = [];
  answer: (n: number) => Answer = () => 200;
  port = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/openbatch`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        const a = this.answer(this.received.length);
        if (a === "hang") return;
        res.writeHead(a, { "content-type": "text/plain" }).end(a >= 300 ? "receiver trouble" : "ok");
      });
    });
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, "127.0.0.1", r));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }

  /** Waits until `n` requests have arrived. */
  async waitForCount(n: number, timeoutMs = 20_000): Promise<Received[]> {
    await until(() => this.received.length >= n, timeoutMs, `receiver got ${this.received.length} of ${n} requests`);
    return this.received;
  }
}

async function until(ok: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Parses and verifies a delivery with the openai SDK, exactly as a receiver's code would. */
function unwrap(r: Received, secret = SECRET): Promise<OpenAI.Webhooks.UnwrapWebhookEvent> {
  return verifier.webhooks.unwrap(r.body, r.headers as Record<string, string>, secret);
}

/** Our delivery log through the SDK's generic GET (the route is our extension). */
interface DeliveryList {
  object: "list";
  data: {
    object: "webhook_delivery";
    id: string;
    event_id: string;
    event_type: string;
    url: string;
    status: "pending" | "delivered" | "failed";
    next_attempt_at: number | null;
    attempts: { attempt: number; attempted_at: number; status_code: number | null; error: string | null; next_attempt_at: number | null }[];
  }[];
  has_more: boolean;
}
const deliveries = (client: OpenAI, batchId: string, query: Record<string, unknown> = {}) =>
  client.get<DeliveryList>(`/batches/${encodeURIComponent(batchId)}/webhook_deliveries`, { query });

/** Fast retries for tests. */
const FAST = { baseDelayMs: 50, maxDelayMs: 200 };

describe("batch webhooks (openai SDK verifies every delivery)", () => {
  let upstream: FakeUpstream;
  let receiver: Receiver;
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    receiver = await new Receiver().start();
    server = await startServer({ ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: FAST });
    client = server.client();
  });
  afterAll(async () => {
    await server.close();
    await receiver.stop();
    await upstream.stop();
  });
  afterEach(() => {
    receiver.received.length = 0;
    receiver.answer = () => 200;
    upstream.plan = () => ({ kind: "ok" });
  });

  /** The one event the receiver got for `batchId` (after verifying it). */
  async function eventFor(batchId: string) {
    await until(
      async () => (await Promise.all(receiver.received.map((r) => unwrap(r)))).some((e) => (e.data as { id: string }).id === batchId),
      20_000,
      `an event for ${batchId}`,
    );
    const events = await Promise.all(receiver.received.map(async (r) => ({ r, e: await unwrap(r) })));
    const mine = events.filter(({ e }) => (e.data as { id: string }).id === batchId);
    expect(mine).toHaveLength(1);
    return mine[0]!;
  }

  it("batch.completed: signed so the SDK's unwrap accepts it, with OpenAI's event shape", async () => {
    const file = await uploadJsonl(client, chatLines(["a", "b"]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const batch = await waitFor(client, created.id);
    expect(batch.status).toBe("completed");
    const { r, e } = await eventFor(batch.id);
    expect(e).toEqual({ id: expect.stringMatching(/^evt_/), object: "event", type: "batch.completed", created_at: expect.any(Number), data: { id: batch.id } });
    // created_at is the end of the batch, in unix seconds.
    expect(e.created_at).toBe(batch.completed_at);
    expect(r.headers["webhook-id"]).toMatch(/^wh_/);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(Number(r.headers["webhook-timestamp"])).toBeGreaterThanOrEqual(batch.completed_at!);
    // The signature really is checked: another secret, or a changed body, is refused.
    await expect(unwrap(r, OTHER_SECRET)).rejects.toThrow(/signature/);
    await expect(unwrap({ ...r, body: r.body.replace("completed", "failed") })).rejects.toThrow(/signature/);
  });

  it("batch.failed for an input file that does not validate", async () => {
    const file = await uploadJsonl(client, "this is not json\n");
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(batch.status).toBe("failed");
    const { e } = await eventFor(batch.id);
    expect(e.type).toBe("batch.failed");
    expect(e.created_at).toBe((await client.batches.retrieve(batch.id)).failed_at);
  });

  it("batch.cancelled once a cancel settles", async () => {
    upstream.plan = () => ({ kind: "held" });
    const file = await uploadJsonl(client, chatLines(["c1", "c2"]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, created.id, (b) => b.status === "in_progress");
    await client.batches.cancel(created.id);
    const batch = await waitFor(client, created.id);
    expect(batch.status).toBe("cancelled");
    const { e } = await eventFor(batch.id);
    expect(e.type).toBe("batch.cancelled");
  });

  it("batch.expired when the completion window runs out", async () => {
    upstream.plan = () => ({ kind: "delay", ms: 30_000 });
    const file = await uploadJsonl(client, chatLines(["x1"]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "1s" as "24h" }); // our extension: any duration
    const batch = await waitFor(client, created.id);
    expect(batch.status).toBe("expired");
    const { e } = await eventFor(batch.id);
    expect(e.type).toBe("batch.expired");
    expect(e.created_at).toBe(batch.expired_at);
  });

  it("a receiver that answers 500 gets the same webhook-id and body again, and the log shows both attempts", async () => {
    receiver.answer = (n) => (n === 1 ? 500 : 200);
    const file = await uploadJsonl(client, chatLines(["r1"]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, created.id);
    const [first, second] = await receiver.waitForCount(2);
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    expect(second!.body).toBe(first!.body);
    // Each attempt verifies on its own (its own timestamp and signature).
    expect((await unwrap(first!)).data).toEqual({ id: created.id });
    expect((await unwrap(second!)).data).toEqual({ id: created.id });

    await until(async () => (await deliveries(client, created.id)).data[0]?.status === "delivered", 10_000, "delivered");
    const log = await deliveries(client, created.id);
    expect(log).toMatchObject({ object: "list", has_more: false });
    expect(log.data).toHaveLength(1);
    const d = log.data[0]!;
    expect(d).toMatchObject({ object: "webhook_delivery", id: first!.headers["webhook-id"], event_type: "batch.completed", url: receiver.url, status: "delivered", next_attempt_at: null });
    expect(d.event_id).toBe((await unwrap(first!)).id);
    expect(d.attempts).toEqual([
      { attempt: 1, attempted_at: expect.any(Number), status_code: 500, error: expect.stringContaining("500"), next_attempt_at: expect.any(Number) },
      { attempt: 2, attempted_at: expect.any(Number), status_code: 200, error: null, next_attempt_at: null },
    ]);
  });

  it("the delivery log: an OpenAI list, 404 for an unknown batch, 400 for a bad cursor", async () => {
    const file = await uploadJsonl(client, chatLines(["l1"]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, created.id);
    await until(async () => (await deliveries(client, created.id)).data.length === 1, 10_000, "a delivery");
    const page = await deliveries(client, created.id, { after: (await deliveries(client, created.id)).data[0]!.id });
    expect(page).toMatchObject({ object: "list", data: [], has_more: false });
    const missing = await apiError(deliveries(client, "batch_doesnotexist"));
    expect(missing.status).toBe(404);
    const badCursor = await apiError(deliveries(client, created.id, { after: "wh_nope" }));
    expect(badCursor.status).toBe(400);
    const badLimit = await apiError(deliveries(client, created.id, { limit: 0 }));
    expect(badLimit.status).toBe(400);
  });
});

describe("webhook delivery policy", () => {
  let upstream: FakeUpstream;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
  });
  afterAll(async () => {
    await upstream.stop();
  });

  async function completeOne(client: OpenAI, key: string) {
    const file = await uploadJsonl(client, chatLines([key]));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    return waitFor(client, created.id);
  }

  it("an events filter: a webhook subscribed to batch.failed gets no batch.completed", async () => {
    const failedOnly = await new Receiver().start();
    const all = await new Receiver().start();
    const server = await startServer({
      ...upstreamConfig(upstream.url),
      webhooks: [
        { url: failedOnly.url, secret: SECRET, events: ["batch.failed"] },
        { url: all.url, secret: OTHER_SECRET },
      ],
      webhookDelivery: FAST,
    });
    try {
      const client = server.client();
      const done = await completeOne(client, "f1");
      const file = await uploadJsonl(client, "{broken\n");
      const failed = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      await all.waitForCount(2);
      await failedOnly.waitForCount(1);
      const types = async (r: Receiver, secret: string) => Promise.all(r.received.map(async (x) => (await unwrap(x, secret)).type));
      expect((await types(all, OTHER_SECRET)).sort()).toEqual(["batch.completed", "batch.failed"]);
      expect(await types(failedOnly, SECRET)).toEqual(["batch.failed"]);
      expect((await unwrap(failedOnly.received[0]!)).data).toEqual({ id: failed.id });
      // The completed batch has one delivery only: to the webhook that wants it.
      const log = await deliveries(client, done.id);
      expect(log.data.map((d) => d.url)).toEqual([all.url]);
    } finally {
      await server.close();
      await failedOnly.stop();
      await all.stop();
    }
  });

  it("a receiver down while the server restarts still gets the event, with the same webhook-id", async () => {
    const receiver = await new Receiver().start();
    await receiver.stop(); // keeps its port: nothing listens there for now
    const config = { ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: { baseDelayMs: 100, maxDelayMs: 200 } };
    const first = await startServer(config);
    const dataDir = first.dataDir;
    let batchId: string;
    let webhookId: string;
    try {
      const client = first.client();
      batchId = (await completeOne(client, "d1")).id;
      // At least one attempt failed against the closed port.
      await until(async () => ((await deliveries(client, batchId)).data[0]?.attempts.length ?? 0) >= 1, 10_000, "a failed attempt");
      const d = (await deliveries(client, batchId)).data[0]!;
      expect(d.status).toBe("pending");
      expect(d.attempts[0]).toMatchObject({ status_code: null, error: expect.stringContaining("ECONNREFUSED") });
      webhookId = d.id;
    } finally {
      // Stop the engine and server; the data dir stays.
      await first.app.close();
      await first.engine.close();
    }
    await receiver.start();
    const second = await startServer(config, { dataDir });
    try {
      const [got] = await receiver.waitForCount(1);
      const event = await unwrap(got!);
      expect(event).toMatchObject({ type: "batch.completed", data: { id: batchId } });
      expect(got!.headers["webhook-id"]).toBe(webhookId);
      const client = second.client();
      await until(async () => (await deliveries(client, batchId)).data[0]?.status === "delivered", 10_000, "delivered after restart");
      const d = (await deliveries(client, batchId)).data[0]!;
      expect(d.attempts.at(-1)).toMatchObject({ status_code: 200, error: null });
      expect(d.attempts.length).toBeGreaterThanOrEqual(2);
      // Delivered once: no repeat after the 200.
      await new Promise((r) => setTimeout(r, 400));
      expect(receiver.received).toHaveLength(1);
    } finally {
      await second.close();
      await receiver.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("kill -9 while a delivery is in flight: the restarted server sends it again at once, same webhook-id", async () => {
    const receiver = await new Receiver().start();
    receiver.answer = (n) => (n === 1 ? "hang" : 200);
    const dir = await mkdtemp(join(tmpdir(), "openbatch-webhook-crash-"));
    // Long per-attempt timeout: only the released claim can explain a prompt second attempt.
    const config = { ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: { ...FAST, timeoutMs: 600_000 } };
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    const port = await freePort();
    const child = spawnCli(["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")]);
    let batchId: string;
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
      batchId = (await completeOne(client, "k1")).id;
      await receiver.waitForCount(1); // the first attempt is in flight: the receiver holds it
    } finally {
      child.kill("SIGKILL");
      await exited(child);
    }
    const server = await startServer(config, { dataDir: join(dir, "data") });
    try {
      const [first, second] = await receiver.waitForCount(2);
      expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
      expect(await unwrap(second!)).toMatchObject({ type: "batch.completed", data: { id: batchId } });
      const client = server.client();
      await until(async () => (await deliveries(client, batchId)).data[0]?.status === "delivered", 10_000, "delivered after the crash");
      // The attempt cut short by the kill left no log entry; the one after the restart did.
      expect((await deliveries(client, batchId)).data[0]!.attempts).toEqual([
        { attempt: 1, attempted_at: expect.any(Number), status_code: 200, error: null, next_attempt_at: null },
      ]);
    } finally {
      await server.close();
      await receiver.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a receiver that never answers in time is retried after the per-attempt timeout", async () => {
    const receiver = await new Receiver().start();
    receiver.answer = (n) => (n === 1 ? "hang" : 200);
    const server = await startServer({ ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: { ...FAST, timeoutMs: 300 } });
    try {
      const client = server.client();
      const batch = await completeOne(client, "t1");
      const [first, second] = await receiver.waitForCount(2);
      expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
      await until(async () => (await deliveries(client, batch.id)).data[0]?.status === "delivered", 10_000, "delivered");
      const d = (await deliveries(client, batch.id)).data[0]!;
      expect(d.attempts[0]).toMatchObject({ status_code: null, error: expect.stringContaining("No answer within 300 ms") });
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  it("gives up once maxAgeMs has passed since the event, and says so in the log", async () => {
    const receiver = await new Receiver().start();
    receiver.answer = () => 503;
    const server = await startServer({ ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: { ...FAST, maxAgeMs: 600 } });
    try {
      const client = server.client();
      const batch = await completeOne(client, "g1");
      await until(async () => (await deliveries(client, batch.id)).data[0]?.status === "failed", 10_000, "given up");
      const d = (await deliveries(client, batch.id)).data[0]!;
      expect(d.next_attempt_at).toBeNull();
      expect(d.attempts.length).toBeGreaterThanOrEqual(2);
      expect(d.attempts.at(-1)).toMatchObject({ status_code: 503, next_attempt_at: null });
      const count = receiver.received.length;
      await new Promise((r) => setTimeout(r, 400));
      expect(receiver.received).toHaveLength(count);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  it("the delivery log is scoped to the batch's owner", async () => {
    const receiver = await new Receiver().start();
    const server = await startServer({ ...upstreamConfig(upstream.url), apiKeys: ["key-a", "key-b"], webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: FAST });
    try {
      const a = server.client("key-a");
      const batch = await completeOne(a, "o1");
      await receiver.waitForCount(1);
      expect((await deliveries(a, batch.id)).data).toHaveLength(1);
      expect((await apiError(deliveries(server.client("key-b"), batch.id))).status).toBe(404);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  it("an Anthropic batch's event names it as the Anthropic API does (msgbatch_…)", async () => {
    const receiver = await new Receiver().start();
    const server = await startServer({ ...upstreamConfig(upstream.url), webhooks: [{ url: receiver.url, secret: SECRET }], webhookDelivery: FAST });
    try {
      const anthropic = new Anthropic({ baseURL: server.url.replace(/\/v1$/, ""), apiKey: "unused" });
      const batch = await anthropic.messages.batches.create({
        requests: [{ custom_id: "q-1", params: { model: "claude-sonnet-4", max_tokens: 16, messages: [{ role: "user", content: "hi" }] } }],
      });
      const [got] = await receiver.waitForCount(1);
      expect(await unwrap(got!)).toMatchObject({ type: "batch.completed", data: { id: batch.id } });
      expect(batch.id).toMatch(/^msgbatch_/);
      // The log route takes the id as the Anthropic API shows it.
      expect((await deliveries(server.client(), batch.id)).data).toHaveLength(1);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });
});

describe("webhook config", () => {
  const hook = (extra: Record<string, unknown> = {}) => ({ webhooks: [{ url: "https://example.test/hook", secret: SECRET, ...extra }] });

  it("defaults events to all four batch events", () => {
    expect(parseConfig(hook()).webhooks[0]!.events).toEqual(["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]);
  });

  it("refuses an unknown event, naming it", () => {
    expect(() => parseConfig(hook({ events: ["batch.completed", "batch.finished"] }))).toThrow(/webhooks\.0\.events\.1.*"batch\.finished"/);
  });

  it("refuses a secret that is not whsec_<base64>, a missing env secret, a non-http URL, a repeated URL and unknown keys", () => {
    expect(() => parseConfig(hook({ secret: "hunter2" }))).toThrow(/webhooks\.0\.secret.*whsec_/);
    expect(() => parseConfig(hook({ secret: "whsec_!!!" }))).toThrow(/webhooks\.0\.secret/);
    expect(() => parseConfig(hook({ secret: "env:OPENBATCH_TEST_NO_SUCH_VAR" }), {})).toThrow(/OPENBATCH_TEST_NO_SUCH_VAR/);
    expect(() => parseConfig(hook({ url: "ftp://example.test/x" }))).toThrow(/webhooks\.0\.url/);
    expect(() => parseConfig({ webhooks: [hook().webhooks[0], hook().webhooks[0]] })).toThrow(/webhooks\.1\.url.*already webhooks\.0/);
    expect(() => parseConfig(hook({ evnts: ["batch.failed"] }))).toThrow(/evnts/);
    expect(() => parseConfig({ webhookDelivery: { maxAge: 5 } })).toThrow(/maxAge/);
  });

  it("reads the secret from the environment with env:NAME", () => {
    expect(parseConfig(hook({ secret: "env:HOOK_SECRET" }), { HOOK_SECRET: SECRET }).webhooks[0]!.secret).toBe(SECRET);
  });

  it("a server with a bad webhook entry does not start", async () => {
    await expect(startServer(hook({ events: ["batch.done"] }))).rejects.toThrow(/batch\.done/);
  });
});
