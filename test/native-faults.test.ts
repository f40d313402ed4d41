import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { answerLine, FakeBatchVendor } from "./support/fake-batch-vendor.js";
import { chatLines, readJsonl, startServer, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/** Native mode against a fault-injecting fake OpenAI Batch API: errors are retried, ends are mapped item by item. */
describe("native mode: vendor faults and ends", () => {
  let vendor: FakeBatchVendor;
  let a: TestServer | null = null;
  const keys = (n: number, p = "k") => Array.from({ length: n }, (_, i) => `${p} ${i}`);
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `req-${i}`);

  beforeEach(async () => {
    vendor = await new FakeBatchVendor().start();
  });
  afterEach(async () => {
    await a?.close();
    a = null;
    await vendor.stop();
  });

  async function serverA(extra: Record<string, unknown> = {}) {
    a = await startServer({
      providers: { v: { type: "openai-compatible", baseURL: vendor.url, apiKey: "vendor-key", batchMode: "native", nativePollMs: 20, timeoutMs: 5000, ...extra } },
      models: { "*": "v" },
    });
    return a;
  }

  async function run(server: TestServer, list: string[]) {
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(list));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    return { done, out: await readJsonl(client, done.output_file_id), errors: await readJsonl(client, done.error_file_id) };
  }

  it("429 and 500 on upload, create, poll and download are retried: every item once, one vendor batch per chunk", async () => {
    const server = await serverA({ nativeMaxRequests: 4 });
    vendor.fault = (op, n) => (["upload", "create", "poll", "download"].includes(op) && n <= 2 ? { kind: "status", status: n === 1 ? 429 : 500 } : { kind: "ok" });
    const { done, out, errors } = await run(server, keys(10));
    expect(done.status).toBe("completed");
    expect(errors).toEqual([]);
    expect(out.map((l) => l.custom_id).sort()).toEqual(ids(10).sort());
    expect(out.every((l) => l.response.body.choices[0].message.content.startsWith("vendor: "))).toBe(true);
    expect(vendor.batches.size).toBe(3);
    const metrics = await (await fetch(server.url.replace(/\/v1$/, "/metrics"))).text();
    expect(metrics).toMatch(/openbatch_vendor_errors_total\{provider="v",op="create"\} 2/);
    expect(metrics).toMatch(/openbatch_vendor_jobs\{state="recorded"\} 3/);
    expect(metrics).toMatch(/openbatch_vendor_polls_total\{provider="v"\} \d+/);
  });

  it("a create the vendor accepted but answered 500 to is found by its tag, not created twice", async () => {
    const server = await serverA();
    vendor.fault = (op, n) => (op === "create" && n === 1 ? { kind: "apply-then-status", status: 500 } : { kind: "ok" });
    const { done, out } = await run(server, keys(5));
    expect(done.request_counts).toEqual({ total: 5, completed: 5, failed: 0 });
    expect(out).toHaveLength(5);
    expect(vendor.batches.size).toBe(1);
    expect(vendor.count("create")).toBe(1);
    expect(vendor.count("list")).toBeGreaterThanOrEqual(1);
  });

  it("a vendor batch that failed its validation: every item fails with the vendor's message, its line error where given", async () => {
    const server = await serverA();
    vendor.finish = () => ({ status: "failed", output: [], errors: [], batchErrors: { data: [{ code: "invalid_value", message: "max_tokens is too large", line: 2 }] } });
    const { done, out, errors } = await run(server, keys(3));
    expect(done.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
    expect(out).toEqual([]);
    const byId = Object.fromEntries(errors.map((l) => [l.custom_id, l.error]));
    expect(byId["req-1"]).toEqual({ code: "invalid_value", message: "max_tokens is too large" });
    expect(byId["req-0"].code).toBe("vendor_batch_failed");
    expect(byId["req-0"].message).toContain("line 2: max_tokens is too large");
  });

  it("expired with partial output: finished items are kept, the rest run directly while the window has time", async () => {
    const server = await serverA();
    const list = keys(6);
    vendor.finish = (b) => ({
      status: "expired",
      output: b.lines.slice(0, 3).map((l) => answerLine(l)),
      errors: b.lines.slice(3).map((l) => ({ id: "x", custom_id: l.custom_id, response: null, error: { code: "batch_expired", message: "expired" } })),
    });
    const { done, out, errors } = await run(server, list);
    expect(done.request_counts).toEqual({ total: 6, completed: 6, failed: 0 });
    expect(errors).toEqual([]);
    const text = Object.fromEntries(out.map((l) => [l.custom_id, l.response.body.choices[0].message.content]));
    expect([0, 1, 2].map((i) => text[`req-${i}`])).toEqual(list.slice(0, 3).map((k) => `vendor: ${k}`));
    expect([3, 4, 5].map((i) => text[`req-${i}`])).toEqual(list.slice(3).map((k) => `direct: ${k}`));
    // Only what the vendor left was sent directly, each once.
    expect([...vendor.direct.entries()].sort()).toEqual(list.slice(3).map((k) => [k, 1]));
  });

  it("expired with nativeFallback none: the rest end batch_expired", async () => {
    const server = await serverA({ nativeFallback: "none" });
    vendor.finish = (b) => ({
      status: "expired",
      output: b.lines.slice(0, 2).map((l) => answerLine(l)),
      errors: b.lines.slice(2).map((l) => ({ id: "x", custom_id: l.custom_id, response: null, error: { code: "batch_expired", message: "expired" } })),
    });
    const { out, errors } = await run(server, keys(4));
    expect(out.map((l) => l.custom_id).sort()).toEqual(["req-0", "req-1"]);
    expect(errors.map((l) => [l.custom_id, l.error.code]).sort()).toEqual([
      ["req-2", "batch_expired"],
      ["req-3", "batch_expired"],
    ]);
    expect(vendor.direct.size).toBe(0);
  });

  it("results lacking an item fail it with vendor_result_missing; results naming unknown ids are ignored", async () => {
    const server = await serverA();
    vendor.finish = (b) => ({
      status: "completed",
      output: [
        ...b.lines.slice(0, 2).map((l) => answerLine(l)),
        answerLine({ ...b.lines[0]!, custom_id: "batch_000000000000000000000000-1" }),
        answerLine({ ...b.lines[0]!, custom_id: b.lines[0]!.custom_id.replace(/-\d+$/, "-999") }),
        answerLine(b.lines[1]!, 400),
      ],
      errors: [],
    });
    const { done, out, errors } = await run(server, keys(3));
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    expect(out.map((l) => l.custom_id).sort()).toEqual(["req-0", "req-1"]);
    expect(errors.map((l) => [l.custom_id, l.error.code])).toEqual([["req-2", "vendor_result_missing"]]);
    const metrics = await (await fetch(server.url.replace(/\/v1$/, "/metrics"))).text();
    expect(metrics).toMatch(/openbatch_vendor_unknown_results_total\{provider="v"\} 2/);
  });

  it("cancelling our batch cancels the vendor job; what it never ran ends batch_cancelled", async () => {
    const server = await serverA();
    vendor.pollsToEnd = 1_000_000;
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(keys(4)));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (let i = 0; i < 400 && vendor.count("poll") === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await client.batches.cancel(batch.id);
    const done = await waitFor(client, batch.id);
    expect(done.status).toBe("cancelled");
    expect(vendor.count("cancel")).toBe(1);
    expect([...vendor.batches.values()][0]!.status).toBe("cancelled");
    const errors = await readJsonl(client, done.error_file_id);
    expect(errors.map((l) => l.error.code)).toEqual(Array(4).fill("batch_cancelled"));
  });

  it("request_counts follow the vendor's progress while its job runs", async () => {
    const server = await serverA();
    vendor.pollsToEnd = 1_000_000;
    const client = server.client();
    const file = await uploadJsonl(client, chatLines(keys(4)));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    for (let i = 0; i < 400 && vendor.batches.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const vb = [...vendor.batches.values()][0]!;
    vb.reported = { completed: 2, failed: 1 };
    const running = await waitFor(client, batch.id, (b) => (b.request_counts?.completed ?? 0) > 0);
    expect(running.status).toBe("in_progress");
    expect(running.request_counts).toEqual({ total: 4, completed: 2, failed: 1 });
    vendor.pollsToEnd = 0;
    const done = await waitFor(client, batch.id);
    expect(done.request_counts).toEqual({ total: 4, completed: 4, failed: 0 });
  });
});
