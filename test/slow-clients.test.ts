import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import OpenAI, { toFile } from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { buildServer, type ClientTimeouts } from "../src/api/server.js";
import { parseConfig } from "../src/core/config.js";
import { Engine } from "../src/engine/engine.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { upstreamConfig } from "./support/harness.js";

/** Short timeouts so the tests run in seconds; each test says which one it exercises. */
const SHORT: ClientTimeouts = { headersMs: 1000, requestMs: 2000, idleMs: 800, keepAliveMs: 800 };
/** "Closed within a generous bound": far above every timeout here, far below what a trickle would last. */
const BOUND_MS = 15_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/** An engine + server (not the harness's: it takes no server options) with `clientTimeouts`. */
async function serve(clientTimeouts: Partial<ClientTimeouts>, config: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; port: number; url: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), "openbatch-slow-"));
  const parsed = parseConfig(config);
  const engine = await Engine.open({ dataDir, config: parsed, pollMs: 50 });
  await engine.start();
  cleanup.push(async () => {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const app = await buildServer({ engine, apiKeys: [], maxFileBytes: parsed.limits.maxFileBytes, dataDir, clientTimeouts });
  cleanup.push(() => app.close());
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, port: Number(new URL(address).port), url: `${address}/v1` };
}

/** What a raw connection saw: bytes received, and whether the server closed it (vs. the bound running out). */
interface Seen {
  data: string;
  closedByServer: boolean;
  /** Bytes of `text` written before the connection closed. */
  sent: number;
}

/**
 * Opens a raw TCP connection and writes `text` in pieces of `step` bytes every `everyMs`, after writing `head`
 * at once; resolves when the server closes the connection, or after BOUND_MS (then destroys it).
 */
function trickle(port: number, head: string, text: string, step: number, everyMs: number): Promise<Seen> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, "127.0.0.1");
    let data = "";
    let sent = 0;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(bound);
      socket.destroy();
      resolve({ data, closedByServer, sent });
    };
    socket.on("data", (d) => (data += d.toString("latin1")));
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    socket.on("connect", () => head && socket.write(head));
    const timer = setInterval(() => {
      if (sent >= text.length || socket.destroyed) return;
      socket.write(text.slice(sent, sent + step));
      sent += step;
    }, everyMs);
    const bound = setTimeout(() => finish(false), BOUND_MS);
  });
}

/** A 408, if the server answered before closing, is in the called dialect's shape. */
function expect408IfAnswered(data: string): void {
  if (!data) return;
  expect(data.startsWith("HTTP/1.1 408")).toBe(true);
}

describe("slow clients do not hold a connection forever", () => {
  it("headers sent a byte at a time are cut off after headersMs (408 or close)", async () => {
    const { port } = await serve(SHORT);
    const headers = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + "a".repeat(400) + "\r\n\r\n";
    // A byte every 100 ms: the whole head would take 45 s.
    const seen = await trickle(port, "", headers, 1, 100);
    expect(seen.closedByServer).toBe(true);
    expect(seen.sent).toBeLessThan(headers.length);
    expect408IfAnswered(seen.data);
  });

  it("a body trickled slower than requestMs allows is cut off (408 or close)", async () => {
    const { port } = await serve({ ...SHORT, idleMs: 60_000 });
    const body = JSON.stringify({ input_file_id: "file-x", endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { pad: "p".repeat(300) } });
    const head = `POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    // 4 bytes every 100 ms: steady enough for the idle bound, but the body would take 9 s against requestMs 2 s.
    const seen = await trickle(port, head, body, 4, 100);
    expect(seen.closedByServer).toBe(true);
    expect(seen.sent).toBeLessThan(body.length);
    if (seen.data) {
      expect(seen.data.startsWith("HTTP/1.1 408")).toBe(true);
      // The OpenAI dialect's shape: the request line named /v1/batches.
      const json = JSON.parse(seen.data.slice(seen.data.indexOf("\r\n\r\n") + 4));
      expect(json.error).toMatchObject({ message: expect.any(String), type: "invalid_request_error" });
    }
  });

  it("a body that stops arriving is cut off after idleMs, long before requestMs", async () => {
    const { port } = await serve({ ...SHORT, requestMs: 60_000 });
    const head = `POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"input_file_id":`;
    // Nothing after the first bytes of the body: only the idle bound can free this connection within BOUND_MS.
    const seen = await trickle(port, head, "", 1, 100);
    expect(seen.closedByServer).toBe(true);
  });

  it("an idle keep-alive connection is closed after keepAliveMs", async () => {
    const { port } = await serve(SHORT);
    const seen = await trickle(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", "", 1, 100);
    expect(seen.closedByServer).toBe(true);
    expect(seen.data.startsWith("HTTP/1.1 200")).toBe(true);
    // After a request with a body too (its idle bound is lifted when the body is in, the keep-alive one still holds).
    const body = "{}";
    const post = await trickle(port, `POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, "", 1, 100);
    expect(post.closedByServer).toBe(true);
    expect(post.data.startsWith("HTTP/1.1 400")).toBe(true);
  });

  it("normal requests still work through the SDK: an upload, and a synchronous call answered later than idleMs", async () => {
    const upstream = await new FakeUpstream().start();
    cleanup.push(() => upstream.stop());
    // The upstream takes 3 s, longer than idleMs (0.8 s) and requestMs (2 s): neither bounds the time we answer in.
    upstream.plan = () => ({ kind: "delay", ms: 3000 });
    const { url } = await serve(SHORT, upstreamConfig(upstream.url, { timeoutMs: 10_000 }));
    const client = new OpenAI({ baseURL: url, apiKey: "unused", maxRetries: 0 });
    const text = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: "hi" }] } }) + "\n";
    const file = await client.files.create({ file: await toFile(Buffer.from(text), "in.jsonl"), purpose: "batch" });
    expect(file.bytes).toBe(text.length);
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "slow question" }] });
    expect(answer.choices[0]!.message.content).toBe("echo: slow question");
  });

  it("refuses timeouts that cannot work", async () => {
    await expect(serve({ headersMs: 5000, requestMs: 1000 })).rejects.toThrow(/headersMs/);
    await expect(serve({ idleMs: 0 })).rejects.toThrow(/idleMs/);
  });
});
