import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeVector } from "../bench/fake-embeddings.js";
import { exited, freePort, spawnCli, waitHealthy } from "./support/child.js";
import { readJsonl, uploadJsonl, waitFor } from "./support/harness.js";
import { listenLocal, type LocalHttpServer } from "./support/local-http.js";

const countTokens = (createRequire(import.meta.url)("gpt-tokenizer/encoding/cl100k_base") as { countTokens: (t: string) => number }).countTokens;

const N = 1000;
const MAX_CONCURRENCY = 4;
/** The provider default (`embeddingsCoalesce`), which the config below leaves unset. */
const COALESCE = 64;
/** Inputs on the wire whose outcome is uncommitted never exceed this: one group per concurrency slot. */
const BOUND = MAX_CONCURRENCY * COALESCE;
/** Calls answered at once before the fake starts holding every answer. */
const ANSWERED_FIRST = 5;

const texts = Array.from({ length: N }, (_, i) => `crash text ${i}: ${"lorem ".repeat(i % 4)}ipsum`);

/**
 * An OpenAI-compatible `/v1/embeddings` upstream that counts how often each text reached it (list or string
 * `input`), answers each input with `fakeVector(text)` and its cl100k token count (what a one-text call gets), and runs
 * `onCall` as each call arrives, which says whether to hold that call's answer (never sent while held).
 */
class CountingEmbeddings {
  readonly perText = new Map<string, number>();
  readonly calls: string[][] = [];
  onCall: (inputs: string[]) => "answer" | "hold" = () => "answer";
  private readonly held: (() => void)[] = [];
  private http: LocalHttpServer | null = null;
  url = "";

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res));
    this.url = this.http.origin + "/v1";
    return this;
  }

  /** Lets every held call end (its client is gone by then; nothing is written to a closed socket). */
  releaseAll(): void {
    for (const go of this.held.splice(0)) go();
  }

  async stop(): Promise<void> {
    this.releaseAll();
    await this.http?.stop();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { model: string; input: string | string[] };
    const inputs = typeof body.input === "string" ? [body.input] : body.input;
    this.calls.push(inputs);
    for (const t of inputs) this.perText.set(t, (this.perText.get(t) ?? 0) + 1);
    if (this.onCall(inputs) === "hold") {
      await new Promise<void>((go) => this.held.push(go));
      if (res.destroyed || res.writableEnded) return;
    }
    let tokens = 0;
    const data = inputs.map((t, index) => {
      tokens += countTokens(t);
      return { object: "embedding", index, embedding: fakeVector(t) };
    });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }
}

/**
 * Coalesced embeddings and kill -9 (issue 16): a group call holds one concurrency slot until its items' outcomes are
 * committed, so what a crash makes OpenBatch send again is at most the groups in flight, maxConcurrency ×
 * embeddingsCoalesce inputs, each sent twice at most, and every item is recorded once.
 *
 * The fake answers the first calls at once, then holds every answer; the server is killed once a held call sits in
 * every slot — or earlier, at the first call that finds more inputs received and uncommitted (read from the server's
 * database) than the bound allows, so a broken bound is caught at its worst moment.
 */
describe("coalesced embeddings: kill -9 mid-group", () => {
  let upstream: CountingEmbeddings;
  let dir: string;
  beforeEach(async () => {
    upstream = await new CountingEmbeddings().start();
    dir = await mkdtemp(join(tmpdir(), "openbatch-coalesce-crash-"));
    await writeFile(
      join(dir, "config.json"),
      // rpm known: the window opens straight to maxConcurrency, so every slot holds a group when the kill comes.
      JSON.stringify({ providers: { up: { type: "openai-compatible", baseURL: upstream.url, apiKey: "k", maxConcurrency: MAX_CONCURRENCY, rpm: 1_000_000 } }, models: { "*": "up" }, retry: { baseDelayMs: 20, maxDelayMs: 200 } }),
    );
  });
  afterEach(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`repeats at most the groups in flight (${MAX_CONCURRENCY} × ${COALESCE} inputs), each input at most twice, every custom_id recorded once with its own vector`, async () => {
    const port = await freePort();
    const args = ["serve", "--port", String(port), "--data-dir", join(dir, "data"), "--config", join(dir, "config.json")];
    let server = spawnCli(args);
    let killed = false;
    let heldCalls = 0;
    let received = 0;
    let worstExposed = 0;
    let db: Database.Database | null = null;
    const kill = () => {
      killed = true;
      server.kill("SIGKILL");
    };
    upstream.onCall = (inputs) => {
      if (killed) return "answer";
      received += inputs.length;
      db ??= new Database(join(dir, "data", "openbatch.db"), { readonly: true, fileMustExist: true });
      const { done } = db.prepare(`SELECT count(*) AS done FROM request_items WHERE state NOT IN ('queued', 'in_flight')`).get() as { done: number };
      worstExposed = Math.max(worstExposed, received - done);
      if (received - done > BOUND) {
        kill();
        return "answer";
      }
      if (upstream.calls.length <= ANSWERED_FIRST) return "answer";
      if (++heldCalls >= MAX_CONCURRENCY) kill();
      return "hold";
    };
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
      const jsonl = texts.map((input, i) => JSON.stringify({ custom_id: `e-${i}`, method: "POST", url: "/v1/embeddings", body: { model: "text-embedding-3-small", input } })).join("\n") + "\n";
      const file = await uploadJsonl(client, jsonl);
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" });
      await exited(server);
      (db as Database.Database | null)?.close(); // assigned in onCall, which TypeScript cannot see
      upstream.releaseAll();
      expect(killed).toBe(true);
      // The kill landed with groups on the wire: coalesced calls, some of them held unanswered.
      expect(upstream.calls.every((c) => c.length <= COALESCE)).toBe(true);
      expect(upstream.calls.some((c) => c.length > 1)).toBe(true);
      expect(heldCalls).toBeGreaterThan(0);
      expect(upstream.perText.size).toBeLessThan(N);

      server = spawnCli(args);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`);
      const done = await waitFor(client, batch.id, undefined, 120_000);
      expect(done.status).toBe("completed");
      expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
      expect(await readJsonl(client, done.error_file_id)).toEqual([]);
      const out = await readJsonl(client, done.output_file_id);
      // Every custom_id exactly once, each with the answer it gets sent alone: its own vector, index 0, its own usage.
      expect(out.map((l) => l.custom_id).sort()).toEqual(texts.map((_, i) => `e-${i}`).sort());
      for (const line of out) {
        const text = texts[Number(line.custom_id.slice(2))]!;
        expect(line.response.status_code).toBe(200);
        expect(line.response.body.data).toEqual([{ object: "embedding", index: 0, embedding: fakeVector(text) }]);
        expect(line.response.body.usage).toEqual({ prompt_tokens: countTokens(text), total_tokens: countTokens(text) });
      }

      // Each input reached the upstream once or twice; the repeats are bounded by the groups in flight at the kill,
      // and include every input of a held group (never answered before the kill, so sent again).
      expect(upstream.perText.size).toBe(N);
      const counts = [...upstream.perText.values()];
      expect(Math.max(...counts)).toBeLessThanOrEqual(2);
      const repeated = [...upstream.perText.entries()].filter(([, n]) => n === 2).map(([t]) => t);
      expect(worstExposed).toBeLessThanOrEqual(BOUND);
      expect(repeated.length).toBeLessThanOrEqual(BOUND);
      const heldInputs = upstream.calls.slice(ANSWERED_FIRST, ANSWERED_FIRST + heldCalls).flat();
      expect(repeated.length).toBeGreaterThanOrEqual(heldInputs.length);
      for (const t of heldInputs) expect(upstream.perText.get(t), t).toBe(2);
    } finally {
      server.kill("SIGKILL");
      await exited(server);
    }
  }, 180_000);
});
