import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal, type LocalHttpServer } from "./local-http.js";

/** What the fake upstream does with one call. */
export type Fault =
  | { kind: "ok" }
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "reset" }
  | { kind: "delay"; ms: number; then?: Fault }
  | { kind: "non_json"; status?: number }
  /** Waits until `release()` is called, then answers ok. */
  | { kind: "held" }
  /**
   * Streams the answer as server-sent events (what "ok" does for a `stream: true` request); `breakAfter` events, then
   * half an event and a reset; `holdAfter` events, then nothing more until the client goes away; `headers` added.
   */
  | { kind: "stream"; breakAfter?: number; holdAfter?: number; headers?: Record<string, string> };

/** One call the fake upstream received. */
export interface UpstreamCall {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
  /** Custom key the test put in the request (the last user message, prompt or input). */
  key: string;
}

/**
 * An OpenAI-compatible test upstream on 127.0.0.1 that answers chat/completions, completions, embeddings and responses,
 * records every call, counts calls in flight (and the peak), and injects faults chosen by `plan(call, n)` where n is
 * the 1-based number of the call for that key.
 */
export class FakeUpstream {
  readonly calls: UpstreamCall[] = [];
  readonly perKey = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;
  plan: (call: UpstreamCall, n: number) => Fault = () => ({ kind: "ok" });
  private held: (() => void)[] = [];
  private released = false;
  private http: LocalHttpServer | null = null;

  /** Base URL including `/v1`. */
  url = "";

  async start(): Promise<this> {
    this.http = await listenLocal((req, res) => void this.handle(req, res));
    this.url = this.http.origin + "/v1";
    return this;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }

  /** Lets every held call (and any later one) answer. */
  release(): void {
    this.released = true;
    for (const go of this.held.splice(0)) go();
  }

  /** Calls received for a key. */
  count(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "bad json" } }));
      return;
    }
    const call: UpstreamCall = { path: req.url ?? "", authorization: req.headers.authorization, body, key: keyOf(body) };
    this.calls.push(call);
    const n = (this.perKey.get(call.key) ?? 0) + 1;
    this.perKey.set(call.key, n);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let closed = false;
    res.on("close", () => {
      if (!closed) this.inFlight--;
      closed = true;
    });
    await this.apply(this.plan(call, n), call, req, res);
  }

  private async apply(fault: Fault, call: UpstreamCall, req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (fault.kind) {
      case "held":
        if (!this.released) await new Promise<void>((go) => this.held.push(go));
        return this.apply({ kind: "ok" }, call, req, res);
      case "delay":
        await new Promise((r) => setTimeout(r, fault.ms));
        if (res.destroyed) return;
        return this.apply(fault.then ?? { kind: "ok" }, call, req, res);
      case "reset":
        req.socket.destroy();
        return;
      case "non_json":
        res.writeHead(fault.status ?? 200, { "content-type": "text/html" }).end("<html>upstream proxy error</html>");
        return;
      case "status":
        res
          .writeHead(fault.status, { "content-type": "application/json", ...fault.headers })
          .end(fault.body ?? JSON.stringify({ error: { message: `injected ${fault.status}`, type: "server_error", code: null } }));
        return;
      case "stream":
        return streamAnswer(call, req, res, fault);
      case "ok":
        if (call.body.stream === true) return streamAnswer(call, req, res, {});
        res.writeHead(200, { "content-type": "application/json", "x-request-id": "req_fake_" + this.calls.length }).end(JSON.stringify(answer(call)));
        return;
    }
  }
}

function keyOf(body: Record<string, unknown>): string {
  const messages = body.messages as { role?: string; content?: unknown }[] | undefined;
  const lastUser = Array.isArray(messages) ? messages.filter((m) => m.role === "user").at(-1) : undefined;
  if (typeof lastUser?.content === "string") return lastUser.content;
  if (typeof body.prompt === "string") return body.prompt;
  if (typeof body.input === "string") return body.input;
  return JSON.stringify(body);
}

/**
 * The answer as OpenAI's server-sent events: chat chunks (role, one per word of "echo: <key>", finish) or completions
 * chunks, the usage chunk with `stream_options.include_usage`, then `[DONE]`, each event written on its own.
 */
async function streamAnswer(call: UpstreamCall, req: IncomingMessage, res: ServerResponse, fault: { breakAfter?: number; holdAfter?: number; headers?: Record<string, string> }): Promise<void> {
  const chat = call.path.endsWith("/chat/completions");
  const head = { id: chat ? "chatcmpl-fake" : "cmpl-fake", object: chat ? "chat.completion.chunk" : "text_completion", created: Math.floor(Date.now() / 1000), model: String(call.body.model ?? "fake-model") };
  const withUsage = (call.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const words = ("echo: " + call.key).split(/(?<= )/);
  const choice = (delta: string | null, finish: string | null) =>
    chat ? { index: 0, delta: delta === null ? {} : { content: delta }, logprobs: null, finish_reason: finish } : { text: delta ?? "", index: 0, logprobs: null, finish_reason: finish };
  const events: unknown[] = [];
  if (chat) events.push({ ...head, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] });
  for (const w of words) events.push({ ...head, choices: [choice(w, null)] });
  events.push({ ...head, choices: [choice(null, "stop")] });
  if (withUsage) {
    const promptTokens = call.key.split(/\s+/).length;
    events.push({ ...head, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: words.length, total_tokens: promptTokens + words.length } });
  }
  res.writeHead(200, { "content-type": "text/event-stream", "x-request-id": "req_fake_stream", ...fault.headers });
  for (const [i, e] of [...events, "[DONE]"].entries()) {
    if (fault.breakAfter === i) {
      res.write('data: {"id":"chatcmpl-fa');
      await new Promise((r) => setTimeout(r, 20));
      req.socket.destroy();
      return;
    }
    if (fault.holdAfter === i) {
      await new Promise((r) => res.once("close", r));
      return;
    }
    res.write(`data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`);
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

/** A deterministic OpenAI-shaped answer that echoes the key, with usage. */
function answer(call: UpstreamCall): unknown {
  const model = String(call.body.model ?? "fake-model");
  const promptTokens = call.key.split(/\s+/).length;
  if (call.path.endsWith("/embeddings")) {
    return { object: "list", model, data: [{ object: "embedding", index: 0, embedding: [call.key.length, 1, 0] }], usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
  }
  if (call.path.endsWith("/responses")) {
    return { id: "resp_1", object: "response", model, output: [{ type: "message", content: [{ type: "output_text", text: "echo: " + call.key }] }], usage: { input_tokens: promptTokens, output_tokens: 3, total_tokens: promptTokens + 3 } };
  }
  if (call.path.endsWith("/completions") && !call.path.endsWith("/chat/completions")) {
    return { id: "cmpl-1", object: "text_completion", model, choices: [{ index: 0, text: "echo: " + call.key, finish_reason: "stop" }], usage: { prompt_tokens: promptTokens, completion_tokens: 3, total_tokens: promptTokens + 3 } };
  }
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: "echo: " + call.key }, finish_reason: "stop" }],
    usage: { prompt_tokens: promptTokens, completion_tokens: 3, total_tokens: promptTokens + 3 },
  };
}
