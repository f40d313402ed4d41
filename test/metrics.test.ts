import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { chatLines, startServer, uploadJsonl, upstreamConfig, waitFor, type TestServer } from "./support/harness.js";

/** Reads one sample of a Prometheus text exposition. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

describe("GET /metrics", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    // Every third key is throttled once.
    upstream.plan = (call, n) => (n === 1 && Number(call.key.split(" ")[1]) % 3 === 0 ? { kind: "status", status: 429, headers: { "retry-after-ms": "10" } } : { kind: "ok" });
    server = await startServer(upstreamConfig(upstream.url, { maxConcurrency: 6 }));
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("counts items by state, 429s, latency, and shows each provider's concurrency", async () => {
    const client = server.client();
    const keys = Array.from({ length: 30 }, (_, i) => `item ${i}`);
    const file = await uploadJsonl(client, chatLines(keys));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await waitFor(client, batch.id);
    const res = await fetch(server.url.replace(/\/v1$/, "/metrics"));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(sample(text, "openbatch_items", 'state="succeeded"')).toBe(30);
    expect(sample(text, "openbatch_items", 'state="pending"')).toBe(0);
    expect(sample(text, "openbatch_queue_depth")).toBe(0);
    expect(sample(text, "openbatch_upstream_429_total", 'provider="up"')).toBe(10);
    expect(sample(text, "openbatch_upstream_answers_total", 'provider="up",status="200"')).toBe(30);
    expect(sample(text, "openbatch_upstream_latency_seconds_count", 'provider="up",outcome="2xx"')).toBe(30);
    const window = sample(text, "openbatch_provider_concurrency", 'provider="up"');
    expect(window).toBeGreaterThanOrEqual(1);
    expect(window).toBeLessThanOrEqual(6);
    expect(sample(text, "openbatch_provider_in_flight", 'provider="up"')).toBe(0);
  });
});
