/**
 * Rate limits end to end, against an upstream that ENFORCES a capacity (test/support/load-target.ts) and records what
 * it accepted. Correctness only: no assertion here depends on how fast the machine is.
 */
import type OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { requestTokenCost } from "../src/engine/token-cost.js";
import { LoadTarget, tokenCost, type LoadTargetOptions } from "./support/load-target.js";
import { readJsonl, startServer, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

const open: { server: TestServer; target: LoadTarget }[] = [];
afterEach(async () => {
  while (open.length) {
    const { server, target } = open.pop()!;
    await server.close();
    await target.stop();
  }
});

interface Rig {
  target: LoadTarget;
  server: TestServer;
  client: OpenAI;
}

/** A load target with `capacity` and an OpenBatch whose one provider (`up`, every model) points at it. */
async function rig(capacity: LoadTargetOptions, provider: Record<string, unknown>): Promise<Rig> {
  const target = await new LoadTarget(capacity).start();
  const server = await startServer({
    providers: { up: { type: "openai-compatible", baseURL: target.url, apiKey: "upstream-key", timeoutMs: 10_000, ...provider } },
    models: { "*": "up" },
  });
  open.push({ server, target });
  return { target, server, client: server.client() };
}

/** Item i's chat body; its first message (the target's key) is `${prefix} ${i}`. */
const body = (prefix: string, i: number, maxTokens = 16) => ({ model: "load-model", messages: [{ role: "user" as const, content: `${prefix} ${i}` }], max_tokens: maxTokens });

/** JSONL of n chat requests, custom_id `${prefix}-<i>`. */
function lines(prefix: string, n: number, maxTokens = 16): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `${prefix}-${i}`, method: "POST", url: "/v1/chat/completions", body: body(prefix, i, maxTokens) })).join("\n") + "\n";
}

async function submit(client: OpenAI, prefix: string, n: number, maxTokens = 16): Promise<OpenAI.Batches.Batch> {
  const file = await uploadJsonl(client, lines(prefix, n, maxTokens));
  return client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
}

/**
 * The batch completed, its output holds every custom_id exactly once with a 200, its error file is empty, and the
 * target accepted every item exactly once (nothing lost, nothing repeated upstream).
 */
async function expectExactlyOnce(client: OpenAI, target: LoadTarget, batch: OpenAI.Batches.Batch, prefix: string, n: number): Promise<void> {
  expect(batch.status).toBe("completed");
  const out = await readJsonl(client, batch.output_file_id);
  const err = await readJsonl(client, batch.error_file_id);
  expect(err).toEqual([]);
  const ids = out.map((l) => l.custom_id as string);
  expect(ids).toHaveLength(n);
  expect(new Set(ids)).toEqual(new Set(Array.from({ length: n }, (_, i) => `${prefix}-${i}`)));
  for (const l of out) {
    expect(l.response.status_code).toBe(200);
    const i = Number((l.custom_id as string).slice(prefix.length + 1));
    expect(l.response.body.choices[0].message.content).toBe(`echo: ${prefix} ${i}`);
  }
  for (let i = 0; i < n; i++) expect(target.count(`${prefix} ${i}`), `${prefix} ${i} accepted upstream`).toBe(1);
  expect(batch.request_counts).toMatchObject({ total: n, completed: n, failed: 0 });
}

describe("the load target", () => {
  it("enforces its capacity and answers 429 with Retry-After and OpenAI's rate-limit headers", async () => {
    const target = await new LoadTarget({ rps: 5, tpm: 6000, latencyMs: [0, 0], headers: true }).start();
    try {
      const send = (i: number) =>
        fetch(`${target.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body("t", i)) });
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => send(i)));
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      const ok = answers.find((r) => r.status === 200)!;
      expect(ok.headers.get("x-ratelimit-limit-requests")).toBe("300");
      expect(ok.headers.get("x-ratelimit-limit-tokens")).toBe("6000");
      expect(Number(ok.headers.get("x-ratelimit-remaining-requests"))).toBeLessThan(300);
      expect(ok.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(\.\d+)?(ms|s)$/);
      const json = (await ok.json()) as { object: string; usage: { prompt_tokens: number; completion_tokens: number } };
      expect(json.object).toBe("chat.completion");
      expect(json.usage.prompt_tokens).toBe(1); // "t 0": 3 chars → ceil(3/4)
      const refused = answers.find((r) => r.status === 429)!;
      expect(Number(refused.headers.get("retry-after-ms"))).toBeGreaterThan(0);
      expect(Number(refused.headers.get("retry-after"))).toBe(1);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
      expect(target.acceptedTotal).toBe(5);
      expect(target.count429).toBe(3);
      expect(target.maxInAnyWindow(1000)).toBe(5);
      expect(target.maxInAnyWindow(60_000, "tokens")).toBe(5 * tokenCost(body("t", 0)));
    } finally {
      await target.stop();
    }
  });
});

describe("rate limits against an upstream that enforces them", () => {
  it("a configured rpm equal to the upstream's capacity stays within it and returns every item exactly once", async () => {
    // The target allows 10 requests in any 1 s (= 600 rpm quantized per second, as vendors do); the engine is told 600.
    const { target, client } = await rig({ rps: 10, latencyMs: [20, 80], headers: true }, { maxConcurrency: 32, rpm: 600 });
    const created = await submit(client, "rpm", 60);
    const done = await waitFor(client, created.id, undefined, 60_000);
    // Sends are paced 2 % under the budget (10 sends span 918 ms, 20 ms of slack per window); the target sees arrival
    // times, which a TCP connect or a loaded machine can shift by more than that, so at most two 429s may come from
    // it — never a run of them (sends unpaced at maxConcurrency 32 draw dozens).
    expect(target.rejected.length, "429s from the target").toBeLessThanOrEqual(2);
    expect(target.maxInAnyWindow(1000)).toBeLessThanOrEqual(10);
    await expectExactlyOnce(client, target, done, "rpm", 60);
  });

  it("a configured tpm equal to the upstream's stays within it and returns every item exactly once", async () => {
    // 30 items of ~100 tokens; the target allows 30,000 tpm quantized to 500 tokens in any 1 s; the engine is told 30,000.
    const n = 30;
    for (let i = 0; i < n; i++) {
      // The engine's count (real tokenizer) is never below the target's, so spending within the engine's budget is
      // spending within the target's.
      expect(requestTokenCost(JSON.stringify(body("tpm", i, 96)))).toBeGreaterThanOrEqual(tokenCost(body("tpm", i, 96)));
    }
    const { target, client } = await rig({ rps: 1000, tpm: 30_000, tokensWindowMs: 1000, latencyMs: [20, 80], headers: true }, { maxConcurrency: 32, tpm: 30_000 });
    const created = await submit(client, "tpm", n, 96);
    const done = await waitFor(client, created.id, undefined, 60_000);
    expect(target.rejected.length, "429s from the target").toBeLessThanOrEqual(1);
    expect(target.maxInAnyWindow(1000, "tokens")).toBeLessThanOrEqual(500);
    await expectExactlyOnce(client, target, done, "tpm", n);
  });

  it("with no budget configured, discovers the limit from the headers: completes with few 429s, nothing lost or repeated", async () => {
    const n = 100;
    const { target, client } = await rig({ rps: 20, latencyMs: [20, 80], headers: true }, { maxConcurrency: 32 });
    const created = await submit(client, "disc", n);
    const done = await waitFor(client, created.id, undefined, 60_000);
    await expectExactlyOnce(client, target, done, "disc", n);
    expect(target.count429).toBeLessThanOrEqual(n * 0.1);
  });

  it("honours Retry-After: after a 429 with retry-after-ms 1500 the provider sends nothing for 1.5 s", async () => {
    // The 6th request to arrive is refused once with Retry-After; the capacity itself never binds.
    let arrivals = 0;
    const { target, client } = await rig(
      { rps: 1000, latencyMs: [20, 40], headers: false, inject: () => (++arrivals === 6 ? { retryAfterMs: 1500 } : null) },
      { maxConcurrency: 4 },
    );
    const created = await submit(client, "ra", 30);
    const done = await waitFor(client, created.id, undefined, 60_000);
    await expectExactlyOnce(client, target, done, "ra", 30);
    expect(target.rejected).toHaveLength(1);
    const refusedAt = target.rejected[0]!.at;
    // Calls the engine had already sent when the 429 came back may still land a moment later; none after that.
    const slackMs = 30;
    expect(target.arrivalsBetween(refusedAt + slackMs, refusedAt + 1500)).toEqual([]);
    const next = target.accepted.find((a) => a.at > refusedAt + slackMs);
    expect(next).toBeDefined();
    expect(next!.at - refusedAt).toBeGreaterThanOrEqual(1500);
  });

  it("is fair: a 5-line batch created after a 200-line batch on the same provider finishes long before it", async () => {
    const { client } = await rig({ rps: 1000, latencyMs: [25, 25], headers: true }, { maxConcurrency: 1 });
    const big = await submit(client, "big", 200);
    await new Promise((r) => setTimeout(r, 300)); // the big batch is under way
    const small = await submit(client, "small", 5);
    const smallDone = await waitFor(client, small.id, undefined, 60_000);
    const bigThen = await client.batches.retrieve(big.id);
    expect(smallDone.status).toBe("completed");
    expect(bigThen.status).toBe("in_progress");
    expect(bigThen.request_counts!.completed).toBeLessThan(200);
    const bigDone = await waitFor(client, big.id, undefined, 60_000);
    expect(bigDone.status).toBe("completed");
    expect(smallDone.completed_at!).toBeLessThan(bigDone.completed_at!);
  });

  it("a 429 storm (each item refused once or twice, with Retry-After) loses and repeats nothing", async () => {
    const n = 60;
    const { target, client } = await rig(
      {
        rps: 1000,
        latencyMs: [10, 30],
        headers: true,
        // Even items are refused on their first arrival, odd ones on their first two; Retry-After 50–150 ms.
        inject: ({ key, n: nth }) => {
          const i = Number(key.split(" ")[1]);
          return nth <= (i % 2 === 0 ? 1 : 2) ? { retryAfterMs: 50 + (i % 3) * 50 } : null;
        },
      },
      { maxConcurrency: 16 },
    );
    const created = await submit(client, "storm", n);
    const done = await waitFor(client, created.id, undefined, 60_000);
    await expectExactlyOnce(client, target, done, "storm", n);
    expect(target.count429).toBe(n / 2 + n); // 30 even × 1 + 30 odd × 2
  });

  it("a storm from the capacity itself (no headers, 64 allowed in flight, 5 req/s) loses and repeats nothing", async () => {
    const n = 40;
    const { target, client } = await rig({ rps: 5, latencyMs: [10, 30], headers: false }, { maxConcurrency: 64 });
    const created = await submit(client, "cap", n);
    const done = await waitFor(client, created.id, undefined, 60_000);
    await expectExactlyOnce(client, target, done, "cap", n);
    expect(target.maxInAnyWindow(1000)).toBeLessThanOrEqual(5);
  });
});
