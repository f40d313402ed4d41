import { describe, expect, it } from "vitest";
import { chatLines, startServer, upstreamConfig, uploadJsonl, waitFor } from "./support/harness.js";
import { listenLocal } from "./support/local-http.js";

/**
 * An upstream in this process whose every answer costs 2 ms of this process's CPU (a synchronous busy wait): latency
 * grows with calls in flight because our own event loop is the queue, not the server. The latency-aware limit must
 * not read that as an upstream queue and hold concurrency down (engine/dispatcher.ts leaves the loop's busy share of
 * each call out of the latency it learns from).
 */
async function busyUpstream() {
  return listenLocal((req, res) => {
    req.resume();
    req.on("end", () => {
      const until = performance.now() + 2;
      while (performance.now() < until);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", created: 0, model: "fake-model", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
  });
}

describe("engine overhead", () => {
  it("our own event loop's lag is not read as upstream queueing: with no budget the limit opens to maxConcurrency", async () => {
    const upstream = await busyUpstream();
    const server = await startServer(upstreamConfig(upstream.origin + "/v1", { maxConcurrency: 64 }));
    try {
      const client = server.client();
      const n = 600;
      const file = await uploadJsonl(client, chatLines(Array.from({ length: n }, (_, i) => `item ${i}`)));
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      const done = await waitFor(client, batch.id);
      expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      const limiter = server.engine.rateLimiters().get("up")!;
      // Read as queueing, the limit falls to 1 (measured; n × base ÷ rtt with rtt ∝ n); our lag left out, it opens (to 64 when the loop is saturated throughout).
      expect(limiter.adaptiveLimit).toBeGreaterThanOrEqual(16);
    } finally {
      await server.close();
      await upstream.stop();
    }
  });
});
