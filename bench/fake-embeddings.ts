/**
 * Test and bench upstreams for embeddings and concurrency, on 127.0.0.1:
 *
 * - FakeEmbeddings: an OpenAI-compatible `/v1/embeddings` (string or list `input`, `encoding_format` float|base64,
 *   `dimensions`) and Gemini `:embedContent` / `:batchEmbedContents`. Vectors are a deterministic function of the text
 *   (full double precision, so "equal to the last bit" means something); usage counts cl100k_base tokens per input as
 *   OpenAI does. A call with an input containing "INVALID" answers 400 as a whole, as OpenAI does for one bad input.
 *   `rpm` enforces a request budget over a sliding 1 s window (rpm ÷ 60 per second), answering 429 with
 *   retry-after-ms past it. Every call is recorded (path, number of inputs).
 * - QueueingUpstream: an OpenAI-compatible chat server with `slots` parallel workers, `serviceMs` per request and an
 *   unlimited FIFO queue: it never answers 429, more concurrency only waits longer (vLLM, Ollama, TGI). `slots` can be
 *   changed while it runs.
 */
import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal, type LocalHttpServer } from "../test/support/local-http.js";

const countTokens = (createRequire(import.meta.url)("gpt-tokenizer/encoding/cl100k_base") as { countTokens: (t: string) => number }).countTokens;

/** The fake's vector for `text`: `dims` doubles in (-1, 1), a function of the text alone. */
export function fakeVector(text: string, dims = 8): number[] {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return Array.from({ length: dims }, (_, d) => Math.sin(h * 1e-6 + d * 1.7 + text.length));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

export class FakeEmbeddings {
  /** Every call: its path and how many inputs it carried. */
  readonly calls: { path: string; inputs: number }[] = [];
  /** Inputs embedded in 2xx answers. */
  embedded = 0;
  count429 = 0;
  /** 1-based call numbers the fake answers 500 to (a transient failure of that one call). */
  readonly fail500 = new Set<number>();
  private readonly accepted: number[] = [];
  private head = 0;
  private http: LocalHttpServer | null = null;
  /** Origin, e.g. http://127.0.0.1:1234 (OpenAI base URL: origin + "/v1"). */
  origin = "";

  constructor(private readonly opts: { rpm?: number; dims?: number } = {}) {}

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res));
    this.origin = this.http.origin;
    return this;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }

  /** True when one more request fits the budget now (sliding 1 s window of rpm ÷ 60). */
  private admit(now: number): boolean {
    if (!this.opts.rpm) return true;
    const perSecond = this.opts.rpm / 60;
    while (this.head < this.accepted.length && this.accepted[this.head]! <= now - 1000) this.head++;
    if (this.accepted.length - this.head >= perSecond) return false;
    this.accepted.push(now);
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const path = (req.url ?? "").split("?")[0]!;
    if (!body) return send(res, 400, { error: { message: "bad json", type: "invalid_request_error" } });
    const gemini = path.includes(":");
    const texts: string[] = gemini
      ? path.endsWith(":batchEmbedContents")
        ? ((body.requests as { content: { parts: { text: string }[] } }[]) ?? []).map((r) => r.content.parts.map((p) => p.text).join(""))
        : [((body.content as { parts: { text: string }[] }) ?? { parts: [] }).parts.map((p) => p.text).join("")]
      : typeof body.input === "string"
        ? [body.input]
        : (body.input as string[]);
    this.calls.push({ path, inputs: texts.length });
    if (this.fail500.has(this.calls.length)) return send(res, 500, { error: { message: "injected 500", type: "server_error" } });
    if (!this.admit(Date.now())) {
      this.count429++;
      return send(res, 429, { error: { message: "Rate limit reached for requests", type: "requests", code: "rate_limit_exceeded" } }, { "retry-after-ms": "200" });
    }
    if (texts.some((t) => typeof t !== "string" || t.includes("INVALID"))) {
      return gemini
        ? send(res, 400, { error: { code: 400, message: "Request contains an invalid argument.", status: "INVALID_ARGUMENT" } })
        : send(res, 400, { error: { message: "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", type: "invalid_request_error", param: null, code: null } });
    }
    this.embedded += texts.length;
    const dims = typeof body.dimensions === "number" ? body.dimensions : (this.opts.dims ?? 8);
    if (gemini) {
      if (path.endsWith(":batchEmbedContents")) return send(res, 200, { embeddings: texts.map((t) => ({ values: fakeVector(t, dims) })) });
      return send(res, 200, { embedding: { values: fakeVector(texts[0]!, dims) } });
    }
    const base64 = body.encoding_format === "base64";
    let tokens = 0;
    const data = texts.map((t, index) => {
      tokens += countTokens(t);
      const v = fakeVector(t, dims);
      return { object: "embedding", index, embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v };
    });
    send(res, 200, { object: "list", data, model: String(body.model), usage: { prompt_tokens: tokens, total_tokens: tokens } }, { "x-request-id": `req_${this.calls.length}` });
  }
}

/** An OpenAI-compatible chat server that queues: `slots` requests served at once, each `serviceMs`, the rest wait. */
export class QueueingUpstream {
  /** Parallel workers; may change while running (takes effect as slots free up). */
  slots: number;
  busy = 0;
  served = 0;
  /** Server-side latencies (arrival → answer), ms. */
  readonly latencies: number[] = [];
  private readonly queue: (() => void)[] = [];
  private http: LocalHttpServer | null = null;
  url = "";

  constructor(
    slots: number,
    private readonly serviceMs: number,
  ) {
    this.slots = slots;
  }

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res));
    this.url = this.http.origin + "/v1";
    return this;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const arrived = performance.now();
    // A freed slot is handed to the next in the queue directly, so no newcomer can slip in between.
    if (this.busy < this.slots) this.busy++;
    else await new Promise<void>((go) => this.queue.push(go));
    await new Promise((r) => setTimeout(r, this.serviceMs));
    this.served++;
    this.latencies.push(performance.now() - arrived);
    if (this.busy > this.slots || this.queue.length === 0) this.busy--;
    else this.queue.shift()!();
    // More slots than before: start as many waiting requests as now fit.
    while (this.busy < this.slots && this.queue.length > 0) {
      this.busy++;
      this.queue.shift()!();
    }
    send(res, 200, {
      id: "chatcmpl-q",
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: String(body?.model ?? "queue-model"),
      choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
    });
  }
}
