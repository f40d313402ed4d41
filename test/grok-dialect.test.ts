import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { startServer, upstreamConfig, type TestServer } from "./support/harness.js";

describe("seed 001 batches over raw HTTP, step by step as the seed's example", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let http: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    server = await startServer(upstreamConfig(upstream.url, { maxConcurrency: 4 }));
    http = async (method, path, body) => {
      const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", authorization: "Bearer xai-key" }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  const requests = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ custom_id: `req-${from + i}`, body: { model: "grok-4", messages: [{ role: "user", content: `Classify: text ${from + i}` }] } }));

  it("create → add requests in two calls → start → poll → list requests → results", async () => {
    const created = await http("POST", "/batches", { name: "classification-batch", description: "Batch of classification requests", model: "grok-4", endpoint: "/v1/chat/completions" });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ object: "batch", name: "classification-batch", status: "created", request_count: 0 });
    expect(created.body.id).toMatch(/^batch_/);
    expect(created.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const id = created.body.id;

    const added = await http("POST", `/batches/${id}/requests`, { requests: requests(0, 3) });
    expect(added.body).toMatchObject({ status: "pending", request_count: 3 });
    expect((await http("POST", `/batches/${id}/requests`, { requests: requests(3, 2) })).body.request_count).toBe(5);
    expect(upstream.calls).toHaveLength(0); // nothing runs before start

    const pendingList = await http("GET", `/batches/${id}/requests?status=pending`);
    expect(pendingList.body.data.map((r: any) => r.custom_id)).toEqual(["req-0", "req-1", "req-2", "req-3", "req-4"]);
    expect(pendingList.body.data[0]).toMatchObject({ status: "pending" });

    expect((await http("POST", `/batches/${id}/start`)).body.status).toBe("processing");
    let batch: any;
    for (let i = 0; i < 200; i++) {
      batch = (await http("GET", `/batches/${id}`)).body;
      if (batch.status === "completed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(batch).toMatchObject({ status: "completed", request_count: 5, completed_count: 5, failed_count: 0 });

    const page1 = await http("GET", `/batches/${id}/results?limit=2`);
    expect(page1.body.object).toBe("list");
    expect(page1.body.has_more).toBe(true);
    expect(page1.body.data.map((r: any) => r.custom_id)).toEqual(["req-0", "req-1"]);
    expect(page1.body.data[0].response.choices[0].message.content).toBe("echo: Classify: text 0");
    const page2 = await http("GET", `/batches/${id}/results?limit=10&after=${page1.body.data[1].id}`);
    expect(page2.body.data.map((r: any) => r.custom_id)).toEqual(["req-2", "req-3", "req-4"]);
    expect(page2.body.has_more).toBe(false);
    expect((await http("GET", `/batches/${id}/requests?status=completed`)).body.data).toHaveLength(5);
    expect((await http("GET", `/batches/${id}/requests?status=failed`)).body.data).toHaveLength(0);

    const listed = await http("GET", "/batches?status=completed&limit=100");
    expect(listed.body.data.map((b: any) => b.id)).toContain(id);
    expect(listed.body.data.find((b: any) => b.id === id)).toMatchObject({ name: "classification-batch", request_count: 5, completed_count: 5 });
  });

  it("results are readable while processing, requests can be added while processing, and cancel ends it", async () => {
    upstream.plan = (call) => (call.key.endsWith(" 0") ? { kind: "ok" } : { kind: "delay", ms: 300 });
    const id = (await http("POST", "/batches", { name: "slow", model: "grok-4" })).body.id;
    await http("POST", `/batches/${id}/requests`, { requests: requests(0, 12) });
    await http("POST", `/batches/${id}/start`);
    let partial: any;
    for (let i = 0; i < 100; i++) {
      partial = (await http("GET", `/batches/${id}/results`)).body;
      if (partial.data.length > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(partial.data[0].custom_id).toBe("req-0");
    expect((await http("GET", `/batches/${id}`)).body.status).toBe("processing");
    expect((await http("POST", `/batches/${id}/requests`, { requests: requests(100, 1) })).body.request_count).toBe(13);

    const cancel = await http("POST", `/batches/${id}/cancel`);
    expect(cancel.body).toMatchObject({ id });
    expect(["cancelling", "cancelled"]).toContain(cancel.body.status);
    let batch: any;
    for (let i = 0; i < 100; i++) {
      batch = (await http("GET", `/batches/${id}`)).body;
      if (batch.status === "cancelled") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(batch.status).toBe("cancelled");
    const failed = (await http("GET", `/batches/${id}/results?limit=100`)).body.data.filter((r: any) => r.status === "failed");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0].error.code).toBe("batch_cancelled");
    expect(batch.completed_count + batch.failed_count).toBe(13);
    upstream.plan = () => ({ kind: "ok" });
  });

  it("answers bad calls with clear 4xx errors", async () => {
    expect((await http("POST", "/batches", { name: "x" })).status).toBe(400); // no model
    const id = (await http("POST", "/batches", { name: "empty", model: "grok-4" })).body.id;
    const start = await http("POST", `/batches/${id}/start`);
    expect(start.status).toBe(409);
    expect(start.body.error.code).toBe("batch_empty");
    const dup = await http("POST", `/batches/${id}/requests`, { requests: [...requests(0, 1), ...requests(0, 1)] });
    expect(dup.status).toBe(400);
    expect(dup.body.error.code).toBe("duplicate_custom_id");
    await http("POST", `/batches/${id}/requests`, { requests: requests(0, 1) });
    const again = await http("POST", `/batches/${id}/requests`, { requests: requests(0, 1) });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe("duplicate_custom_id");
    expect((await http("GET", `/batches/${id}`)).body.request_count).toBe(1);
    expect((await http("POST", "/batches/batch_missing/requests", { requests: requests(0, 1) })).status).toBe(404);
    expect((await http("GET", `/batches/${id}/requests?status=weird`)).status).toBe(400);
  });
});
