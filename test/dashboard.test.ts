import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, upstreamConfig, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/*
 * The dashboard's server side without a browser: the page loads without a key while its API needs one, each key sees
 * only its own batches (lists, pages, items, errors, the live stream), admin-only panels, the JSONL check, and 400s
 * for bad parameters. test/dashboard-browser.test.ts drives the page itself in chromium.
 */

const A = "key-tenant-a";
const B = "key-tenant-b";
const ADMIN = "key-admin";

let fake: FakeUpstream;
let server: TestServer;
let origin: string;

const api = (path: string, key?: string, init: RequestInit = {}) =>
  fetch(origin + path, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers as Record<string, string> | undefined) } });
const json = async (path: string, key?: string, init?: RequestInit) => {
  const res = await api(path, key, init);
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  fake = await new FakeUpstream().start();
  fake.plan = (call) => (call.key === "boom" ? { kind: "status", status: 400, body: JSON.stringify({ error: { message: "bad prompt: boom", type: "invalid_request_error" } }) } : { kind: "ok" });
  server = await startServer({ ...upstreamConfig(fake.url), apiKeys: [A, B], adminKeys: [ADMIN], prices: { "fake-model": { input: 2, output: 8 } } });
  origin = server.url.replace(/\/v1$/, "");
});
afterAll(async () => {
  await server?.close();
  await fake?.stop();
});

describe("dashboard API", () => {
  it("serves the page without a key, says auth is on, and refuses its API without one", async () => {
    const page = await api("/dashboard");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain("/dashboard/assets/app.js");
    const script = await api("/dashboard/assets/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await json("/dashboard/api/mode")).body).toEqual({ auth: true });
    const overview = await json("/dashboard/api/overview");
    expect(overview.status).toBe(401);
    expect(overview.body.error.code).toBe("missing_api_key");
    expect((await json("/dashboard/api/batches", "not-a-key")).status).toBe(401);
    expect((await api("/dashboard/assets/..%2f..%2fpackage.json")).status).toBe(404);
  });

  it("shows each key only its own batches, items and errors; provider panels to admins only", async () => {
    const a = server.client(A);
    const file = await uploadJsonl(a, chatLines(["hello", "boom", "world"]));
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { team: "red" } });
    await waitFor(a, batch.id);

    const mine = await json("/dashboard/api/batches", A);
    expect(mine.status).toBe(200);
    expect(mine.body.data.map((b: any) => b.id)).toContain(batch.id);
    const row = mine.body.data.find((b: any) => b.id === batch.id);
    expect(row.request_counts).toMatchObject({ total: 3, completed: 2, failed: 1 });
    expect(row.estimated_cost.batch).toBeGreaterThan(0);
    expect(JSON.stringify(mine.body)).not.toContain("upstream-key");

    const theirs = await json("/dashboard/api/batches", B);
    expect(theirs.body.data.map((b: any) => b.id)).not.toContain(batch.id);
    for (const path of [`/dashboard/api/batches/${batch.id}`, `/dashboard/api/batches/${batch.id}/items`, `/dashboard/api/batches/${batch.id}/errors`]) {
      expect((await json(path, B)).status).toBe(404);
    }
    expect((await json(`/dashboard/api/batches/${batch.id}/cancel`, B, { method: "POST" })).status).toBe(404);
    const overviewB = await json("/dashboard/api/overview", B);
    expect(overviewB.body.by_status).toEqual({});
    expect(overviewB.body.providers).toBeNull();
    const overviewA = await json("/dashboard/api/overview", A);
    expect(overviewA.body.by_status).toEqual({ completed: 1 });
    const admin = await json("/dashboard/api/overview", ADMIN);
    expect(admin.body.admin).toBe(true);
    expect(admin.body.providers.map((p: any) => p.name)).toEqual(["up"]);
    expect(admin.body.providers[0].max_concurrency).toBe(8);

    // Filters: metadata and status.
    expect((await json("/dashboard/api/batches?metadata=team=red", A)).body.data.map((b: any) => b.id)).toEqual([batch.id]);
    expect((await json("/dashboard/api/batches?metadata=team=blue", A)).body.data).toEqual([]);
    expect((await json("/dashboard/api/batches?status=in_progress", A)).body.data).toEqual([]);

    const found = await json(`/dashboard/api/batches/${batch.id}/items?custom_id=req-1`, A);
    expect(found.body.data).toHaveLength(1);
    const item = found.body.data[0];
    expect(item).toMatchObject({ custom_id: "req-1", state: "failed", status_code: 400 });
    expect(item.request.messages[0].content).toBe("boom");
    expect(item.response.error.message).toBe("bad prompt: boom");

    const errors = await json(`/dashboard/api/batches/${batch.id}/errors`, A);
    expect(errors.body.groups).toEqual([{ key: "http:400", code: null, status_code: 400, state: "failed", count: 1, samples: [{ custom_id: "req-1", message: "bad prompt: boom" }] }]);

    const detail = await json(`/dashboard/api/batches/${batch.id}`, A);
    expect(detail.body.timeline.map((e: any) => e.status)).toEqual(["validating", "in_progress", "finalizing", "completed"]);

    const retry = await json(`/dashboard/api/batches/${batch.id}/retry`, A, { method: "POST" });
    expect(retry.status).toBe(200);
    expect(retry.body.batch.metadata.retry_of).toBe(batch.id);
    expect(retry.body.batch.request_counts.total).toBe(1);
  });

  it("checks a JSONL file: line-numbered errors, counts, tokens and the cost estimate", async () => {
    const good = chatLines(["one", "two"]);
    const ok = await json("/dashboard/api/check", A, { method: "POST", body: good, headers: { "content-type": "text/plain" } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ requests: 2, endpoint: "/v1/chat/completions", model: "fake-model", provider: "up", errors: [] });
    expect(ok.body.input_tokens).toBeGreaterThan(0);
    expect(ok.body.max_output_tokens).toBe(32);
    expect(ok.body.cost.batch).toBeCloseTo(ok.body.cost.regular / 2);

    const bad = good + "{not json\n" + JSON.stringify({ custom_id: "req-0", method: "POST", url: "/v1/chat/completions", body: { model: "fake-model" } }) + "\n";
    const checked = await json("/dashboard/api/check", A, { method: "POST", body: bad, headers: { "content-type": "text/plain" } });
    expect(checked.body.errors.map((e: any) => [e.line, e.code])).toEqual([
      [3, "invalid_json_line"],
      [4, "duplicate_custom_id"],
    ]);
    const empty = await json("/dashboard/api/check", A, { method: "POST", body: "\n", headers: { "content-type": "text/plain" } });
    expect(empty.body.errors[0].code).toBe("empty_file");
    const notText = await json("/dashboard/api/check", A, { method: "POST", body: JSON.stringify({ a: 1 }), headers: { "content-type": "application/json" } });
    expect(notText.status).toBe(400);
  });

  it("answers bad parameters with a 400 naming them", async () => {
    const status = await json("/dashboard/api/batches?status=done", A);
    expect(status.status).toBe(400);
    expect(status.body.error.param).toBe("status");
    expect((await json("/dashboard/api/batches?limit=0", A)).body.error.param).toBe("limit");
    expect((await json("/dashboard/api/batches?limit=abc", A)).status).toBe(400);
    const a = server.client(A);
    const file = await uploadJsonl(a, chatLines(["x"]));
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const state = await json(`/dashboard/api/batches/${batch.id}/items?state=bogus`, A);
    expect(state.status).toBe(400);
    expect(state.body.error.param).toBe("state");
    expect((await json("/dashboard/api/collections/Nope/search", A, { method: "POST", body: JSON.stringify({}), headers: { "content-type": "application/json" } })).body.error.param).toBe("nearText");
    expect((await json("/dashboard/api/collections/Nope/objects?where=%7B", A)).body.error.param).toBe("where");
    expect((await json("/dashboard/api/collections/Nope", A)).status).toBe(404);
  });

  it("pushes a batch's progress over server-sent events, to its owner only", async () => {
    // Opens a stream; resolves once it is open, with a reader of its tick events until `until` holds.
    const open = async (key: string) => {
      const ctl = new AbortController();
      const res = await api("/dashboard/api/stream", key, { signal: ctl.signal });
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      return async (until: (data: any[]) => boolean) => {
        const ticks: any[] = [];
        let buf = "";
        const deadline = Date.now() + 30_000;
        while (!until(ticks) && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          for (let at = buf.indexOf("\n\n"); at >= 0; at = buf.indexOf("\n\n")) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            if (block.startsWith("event: tick\n")) ticks.push(JSON.parse(block.slice(block.indexOf("data: ") + 6)));
          }
        }
        ctl.abort();
        return ticks;
      };
    };
    let hold = true;
    fake.plan = () => (hold ? { kind: "held" } : { kind: "ok" });
    const a = server.client(A);
    const file = await uploadJsonl(a, chatLines(["s1", "s2"]));
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(a, batch.id, (b) => b.status === "in_progress");
    const streamA = await open(A);
    const streamB = await open(B);
    const watchA = streamA((t) => t.some((x) => x.changed.some((b: any) => b.id === batch.id && b.status === "completed")));
    const watchB = streamB((t) => t.length >= 4);
    hold = false;
    fake.release();
    const ticksA = await watchA;
    const mine = ticksA.flatMap((t) => t.changed).filter((b: any) => b.id === batch.id);
    expect(mine.at(-1)).toMatchObject({ status: "completed", request_counts: { completed: 2 } });
    const ticksB = await watchB;
    expect(ticksB.flatMap((t) => t.changed).map((b: any) => b.id)).not.toContain(batch.id);
  });
});
