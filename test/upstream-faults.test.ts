import type OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { FakeUpstream, type Fault, type UpstreamCall } from "./support/fake-upstream.js";
import { chatLines, readJsonl, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

/** Everything a test started, closed after it (server first, so no call is left hanging on the upstream). */
const open: { server: TestServer; upstream: FakeUpstream }[] = [];
afterEach(async () => {
  while (open.length) {
    const { server, upstream } = open.pop()!;
    await server.close();
    await upstream.stop();
  }
});

interface Rig {
  upstream: FakeUpstream;
  server: TestServer;
  client: OpenAI;
}

/**
 * A fresh fake upstream + OpenBatch server for one test. `provider` overrides upstreamConfig fields (maxConcurrency,
 * timeoutMs); `retry` replaces the harness retry settings (baseDelayMs/maxDelayMs keep the harness's short values).
 */
async function rig(plan: (call: UpstreamCall, n: number) => Fault, opts: { provider?: Record<string, unknown>; retry?: Record<string, number> } = {}): Promise<Rig> {
  const upstream = await new FakeUpstream().start();
  upstream.plan = plan;
  const config: Record<string, unknown> = upstreamConfig(upstream.url, opts.provider ?? {});
  if (opts.retry) config.retry = { baseDelayMs: 20, maxDelayMs: 200, ...opts.retry };
  const server = await startServer(config);
  open.push({ server, upstream });
  return { upstream, server, client: server.client() };
}

const keysOf = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix} ${i}`);

/** Uploads chat lines for `keys` (custom_id `req-<i>`) and creates a batch. */
async function submit(client: OpenAI, keys: string[], completionWindow = "24h"): Promise<OpenAI.Batches.Batch> {
  const file = await uploadJsonl(client, chatLines(keys));
  return client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/chat/completions",
    // OpenBatch accepts any duration; the SDK's type only knows "24h".
    completion_window: completionWindow as "24h",
  });
}

/** Output and error lines of a finished batch, checked to hold every custom_id exactly once between them. */
async function results(client: OpenAI, batch: OpenAI.Batches.Batch, n: number) {
  const out = await readJsonl(client, batch.output_file_id);
  const err = await readJsonl(client, batch.error_file_id);
  const ids = [...out, ...err].map((l) => l.custom_id as string);
  expect(ids).toHaveLength(n);
  expect(new Set(ids)).toEqual(new Set(Array.from({ length: n }, (_, i) => `req-${i}`)));
  for (const l of out) {
    expect(l.id).toMatch(/^batch_req_/);
    expect(l.response.status_code).toBe(200);
    expect(l.error).toBeNull();
  }
  for (const l of err) expect(l.id).toMatch(/^batch_req_/);
  return { out, err };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("upstream faults", () => {
  it("429 storm with Retry-After: waits at least Retry-After before the next call, then completes", async () => {
    // Every item: call 1 → 429 retry-after: 1 (seconds); odd items also call 2 → 429 retry-after-ms: 600.
    const times = new Map<string, number[]>();
    const { upstream, client } = await rig(
      (call, n): Fault => {
        const list = times.get(call.key) ?? [];
        list.push(Date.now());
        times.set(call.key, list);
        const i = Number(call.key.split(" ")[1]);
        if (n === 1) return { kind: "status", status: 429, headers: { "retry-after": "1" }, body: JSON.stringify({ error: { message: "slow down", type: "rate_limit_error" } }) };
        if (n === 2 && i % 2 === 1) return { kind: "status", status: 429, headers: { "retry-after-ms": "600" }, body: JSON.stringify({ error: { message: "slow down", type: "rate_limit_error" } }) };
        return { kind: "ok" };
      },
      { provider: { maxConcurrency: 4 } },
    );
    const keys = keysOf(10, "storm");
    const created = await submit(client, keys);
    const done = await waitFor(client, created.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 10, completed: 10, failed: 0 });
    expect(done.error_file_id).toBeNull();
    const { out, err } = await results(client, done, 10);
    expect(out).toHaveLength(10);
    expect(err).toHaveLength(0);
    keys.forEach((k, i) => {
      const expected = i % 2 === 1 ? 3 : 2;
      expect(upstream.count(k), k).toBe(expected);
      const t = times.get(k)!;
      // Honouring Retry-After: the next call comes no sooner than the wait the 429 asked for (small clock slack).
      expect(t[1]! - t[0]!, `${k}: gap after retry-after: 1`).toBeGreaterThanOrEqual(1000 - 25);
      if (i % 2 === 1) expect(t[2]! - t[1]!, `${k}: gap after retry-after-ms: 600`).toBeGreaterThanOrEqual(600 - 25);
    });
  });

  it("500s on the first calls, then success: completes, each failing key called failures+1 times", async () => {
    const failures = (key: string) => Number(key.split(" ")[1]) % 3; // 0, 1 or 2 failures
    const { upstream, client } = await rig((call, n) => (n <= failures(call.key) ? { kind: "status", status: 500 } : { kind: "ok" }));
    const keys = keysOf(12, "five-hundred");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 12, completed: 12, failed: 0 });
    const { out, err } = await results(client, done, 12);
    expect(out).toHaveLength(12);
    expect(err).toHaveLength(0);
    for (const k of keys) expect(upstream.count(k), k).toBe(failures(k) + 1);
    for (const l of out) expect(l.response.body.choices[0].message.content).toBe("echo: " + keys[Number(l.custom_id.slice(4))]);
  });

  it("connection reset on the first call: retried and completes", async () => {
    const { upstream, client } = await rig((_call, n) => (n === 1 ? { kind: "reset" } : { kind: "ok" }));
    const keys = keysOf(6, "reset");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    const { out, err } = await results(client, done, 6);
    expect(out).toHaveLength(6);
    expect(err).toHaveLength(0);
    for (const k of keys) expect(upstream.count(k), k).toBe(2);
  });

  it("a response slower than the provider timeout is retried", async () => {
    const { upstream, client } = await rig((_call, n) => (n === 1 ? { kind: "delay", ms: 1000 } : { kind: "ok" }), { provider: { timeoutMs: 300 } });
    const keys = keysOf(4, "slow-once");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    const { out, err } = await results(client, done, 4);
    expect(out).toHaveLength(4);
    expect(err).toHaveLength(0);
    for (const k of keys) expect(upstream.count(k), k).toBe(2);
  });

  it("a response always slower than the timeout ends as upstream_timeout after maxAttempts calls", async () => {
    // The answer comes far past the timeout: a loaded machine and a coarse timer may fire the 300 ms timeout late.
    const { upstream, client } = await rig(() => ({ kind: "delay", ms: 5000 }), { provider: { timeoutMs: 300 }, retry: { maxAttempts: 2 } });
    const keys = keysOf(3, "slow-always");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 3, completed: 0, failed: 3 });
    expect(done.output_file_id).toBeNull();
    const { err } = await results(client, done, 3);
    expect(err).toHaveLength(3);
    for (const l of err) {
      expect(l.response).toBeNull();
      expect(l.error.code).toBe("upstream_timeout");
      expect(typeof l.error.message).toBe("string");
    }
    for (const k of keys) expect(upstream.count(k), k).toBe(2);
  });

  it("a non-JSON 200 body is retried", async () => {
    const { upstream, client } = await rig((_call, n) => (n === 1 ? { kind: "non_json" } : { kind: "ok" }));
    const keys = keysOf(5, "html-once");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    const { out, err } = await results(client, done, 5);
    expect(out).toHaveLength(5);
    expect(err).toHaveLength(0);
    for (const k of keys) expect(upstream.count(k), k).toBe(2);
  });

  it("a persistent non-JSON 200 body ends as invalid_upstream_response", async () => {
    const { upstream, client } = await rig(() => ({ kind: "non_json" }), { retry: { maxAttempts: 3 } });
    const keys = keysOf(3, "html-always");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 3, completed: 0, failed: 3 });
    const { err } = await results(client, done, 3);
    expect(err).toHaveLength(3);
    for (const l of err) {
      expect(l.response).toBeNull();
      expect(l.error.code).toBe("invalid_upstream_response");
    }
    for (const k of keys) expect(upstream.count(k), k).toBe(3);
  });

  it("a non-retryable 400 goes straight to the error file with the upstream status and body", async () => {
    const body = { error: { message: "max_tokens is too large", type: "invalid_request_error", param: "max_tokens", code: "bad_max_tokens" } };
    const { upstream, client } = await rig((call) =>
      call.key === "bad 1" ? { kind: "status", status: 400, body: JSON.stringify(body), headers: { "x-request-id": "req_upstream_400" } } : { kind: "ok" },
    );
    const keys = keysOf(3, "bad");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 3, completed: 2, failed: 1 });
    const { out, err } = await results(client, done, 3);
    expect(out.map((l) => l.custom_id).sort()).toEqual(["req-0", "req-2"]);
    expect(err).toHaveLength(1);
    const [line] = err;
    expect(line.custom_id).toBe("req-1");
    expect(line.response.status_code).toBe(400);
    expect(line.response.request_id).toBe("req_upstream_400");
    expect(line.response.body).toEqual(body);
    expect(line.error).toBeNull();
    expect(upstream.count("bad 1")).toBe(1);
  });

  it("exhausted retries on a persistent 503 keep the last status and body", async () => {
    const body = { error: { message: "overloaded, try later", type: "server_error", code: "overloaded" } };
    const { upstream, client } = await rig((call) => (call.key === "busy 0" ? { kind: "status", status: 503, body: JSON.stringify(body) } : { kind: "ok" }), {
      retry: { maxAttempts: 3 },
    });
    const keys = keysOf(2, "busy");
    const done = await waitFor(client, (await submit(client, keys)).id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toMatchObject({ total: 2, completed: 1, failed: 1 });
    const { out, err } = await results(client, done, 2);
    expect(out.map((l) => l.custom_id)).toEqual(["req-1"]);
    expect(err).toHaveLength(1);
    expect(err[0].custom_id).toBe("req-0");
    expect(err[0].response.status_code).toBe(503);
    expect(err[0].response.body).toEqual(body);
    expect(err[0].error).toBeNull();
    expect(upstream.count("busy 0")).toBe(3);
    expect(upstream.count("busy 1")).toBe(1);
  });

  it("never has more than maxConcurrency calls in flight", async () => {
    const { upstream, client } = await rig(() => ({ kind: "delay", ms: 50 }), { provider: { maxConcurrency: 4 } });
    const done = await waitFor(client, (await submit(client, keysOf(100, "bound"))).id);
    expect(done.status).toBe("completed");
    const { out } = await results(client, done, 100);
    expect(out).toHaveLength(100);
    expect(upstream.calls).toHaveLength(100);
    expect(upstream.maxInFlight).toBeLessThanOrEqual(4);
    expect(upstream.maxInFlight).toBeGreaterThan(1);
  });

  it("cancel mid-run: partial output kept, the rest batch_cancelled, no calls after it settles", async () => {
    const { upstream, client } = await rig(() => ({ kind: "delay", ms: 200 }), { provider: { maxConcurrency: 4 } });
    const created = await submit(client, keysOf(200, "cancel"));
    await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 8, 30_000);
    const cancelling = await client.batches.cancel(created.id);
    expect(["cancelling", "cancelled"]).toContain(cancelling.status);
    expect(cancelling.cancelling_at).toBeTruthy();
    const done = await waitFor(client, created.id);
    expect(done.status).toBe("cancelled");
    expect(done.cancelled_at).toBeTruthy();
    const { out, err } = await results(client, done, 200);
    expect(out.length).toBeGreaterThanOrEqual(8);
    expect(err.length).toBeGreaterThan(0);
    expect(done.request_counts?.completed).toBe(out.length);
    for (const l of err) {
      expect(l.response).toBeNull();
      expect(l.error).toEqual({ code: "batch_cancelled", message: expect.any(String) });
    }
    // The upstream gets nothing new once the cancel has settled.
    const calls = upstream.calls.length;
    expect(calls).toBeLessThan(200);
    await sleep(1000);
    expect(upstream.calls.length).toBe(calls);
    // Output files hold only items that really got an answer.
    expect(out.length).toBeLessThanOrEqual(calls);
  });

  it("expiry: a short completion window ends expired, partial output kept, the rest batch_expired", async () => {
    const { upstream, client } = await rig(() => ({ kind: "delay", ms: 300 }), { provider: { maxConcurrency: 2 } });
    const created = await submit(client, keysOf(40, "expire"), "2s");
    expect(created.expires_at! - created.created_at).toBe(2);
    const done = await waitFor(client, created.id, undefined, 30_000);
    expect(done.status).toBe("expired");
    expect(done.expired_at).toBeTruthy();
    const { out, err } = await results(client, done, 40);
    expect(out.length).toBeGreaterThan(0);
    expect(err.length).toBeGreaterThan(0);
    expect(done.request_counts?.completed).toBe(out.length);
    for (const l of err) {
      expect(l.response).toBeNull();
      expect(l.error).toEqual({ code: "batch_expired", message: "This request could not be executed before the completion window expired." });
    }
    const calls = upstream.calls.length;
    expect(calls).toBeLessThan(40);
    await sleep(700);
    expect(upstream.calls.length).toBe(calls);
  });
});
