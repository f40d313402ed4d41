import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUpstream } from "./support/fake-upstream.js";
import { apiError, startServer, upstreamConfig, type TestServer } from "./support/harness.js";

/** A real 1.2 MB GGUF (llama architecture, no chat template); its text is children's-story gibberish. */
const MODEL = fileURLToPath(new URL("../../shared/models/stories260K.gguf", import.meta.url));

type ChatChunk = OpenAI.Chat.Completions.ChatCompletionChunk;

/** Every chunk of a stream, in order. */
async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

/** Choice `index`'s text, joined from its chunks. */
const joined = (chunks: ChatChunk[], index = 0) =>
  chunks
    .flatMap((c) => c.choices)
    .filter((c) => c.index === index)
    .map((c) => c.delta.content ?? "")
    .join("");

/** Polls `check` until it holds (a condition, not a timing: the deadline only stops a hang). */
async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("streaming from the local GGUF model through the openai SDK", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startServer({
      providers: {
        llm: { type: "local-llm", model: MODEL, parallelSequences: 2 },
        // One sequence: a stream that kept it after its client left would block every later call.
        solo: { type: "local-llm", model: MODEL, parallelSequences: 1, timeoutMs: 60_000 },
        missing: { type: "local-llm", model: join(tmpdir(), "openbatch-no-such-model.gguf") },
      },
      models: { "stories*": "llm", "solo*": "solo", "missing*": "missing" },
    });
    client = server.client();
  }, 120_000);
  afterAll(async () => {
    await server.close();
  });

  const messages = [{ role: "user" as const, content: "Once upon a time" }];

  it("streams chat chunks in OpenAI's shape whose text joins to the non-streamed answer", async () => {
    const whole = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 24, temperature: 0 });
    const chunks = await collect(await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 24, temperature: 0, stream: true }));

    expect(chunks.length).toBeGreaterThan(3); // role, several pieces, finish
    const first = chunks[0]!;
    expect(first.id).toMatch(/^chatcmpl-/);
    expect(first.choices[0]!.delta).toEqual({ role: "assistant", content: "", refusal: null });
    for (const c of chunks) {
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.id).toBe(first.id);
      expect(c.created).toBe(first.created);
      expect(c.model).toBe("stories260K");
      expect(c.usage).toBeUndefined(); // no include_usage
      expect(typeof c.obfuscation).toBe("string"); // OpenAI's default include_obfuscation
      expect(c.choices).toHaveLength(1);
      expect(c.choices[0]!.index).toBe(0);
      expect(c.choices[0]!.logprobs).toBeNull();
    }
    const pieces = chunks.filter((c) => c.choices[0]!.delta.content);
    expect(pieces.length).toBeGreaterThan(1); // token by token, not one piece
    const finishes = chunks.map((c) => c.choices[0]!.finish_reason);
    expect(finishes.slice(0, -1).every((f) => f === null)).toBe(true);
    expect(finishes.at(-1)).toBe(whole.choices[0]!.finish_reason);
    expect(chunks.at(-1)!.choices[0]!.delta).toEqual({});

    const text = joined(chunks);
    expect(text.length).toBeGreaterThan(0);
    expect(text).toBe(whole.choices[0]!.message.content);
  });

  it("include_usage: usage null on every chunk, then one last chunk with usage and no choices", async () => {
    const whole = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 12, temperature: 0 });
    const chunks = await collect(
      await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true, include_obfuscation: false } }),
    );
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    for (const c of chunks.slice(0, -1)) {
      expect(c.usage).toBeNull();
      expect(c.obfuscation).toBeUndefined();
    }
  });

  it("cuts at a stop string exactly as the non-streamed answer does (text before it is never sent)", async () => {
    const free = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 40, temperature: 0 });
    const text = free.choices[0]!.message.content!;
    // A stop string of two words from the middle of the answer: the first word comes out a token (or more) before the
    // second, so the stream must hold it back until it knows whether the stop string completes.
    const words = text.split(" ");
    expect(words.length).toBeGreaterThan(4);
    const at = Math.floor(words.length / 2);
    const stop = " " + words[at] + " " + words[at + 1];
    const cut = text.slice(0, text.indexOf(stop));
    const whole = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 40, temperature: 0, stop });
    expect(whole.choices[0]!.message.content).toBe(cut);
    const chunks = await collect(await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 40, temperature: 0, stop, stream: true }));
    expect(joined(chunks)).toBe(cut);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
  });

  it("streams n choices, each with its own index, role chunk and finish reason", async () => {
    const chunks = await collect(await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 6, n: 2, seed: 7, stream: true }));
    for (const index of [0, 1]) {
      const mine = chunks.flatMap((c) => c.choices).filter((c) => c.index === index);
      expect(mine[0]!.delta.role).toBe("assistant");
      expect(mine.at(-1)!.finish_reason).not.toBeNull();
      expect(mine.filter((c) => c.finish_reason !== null)).toHaveLength(1);
    }
  });

  it("streams completions as text_completion chunks, with usage when asked", async () => {
    const whole = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
    const stream = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks = await collect(stream);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    for (const c of chunks) {
      expect(c.object).toBe("text_completion");
      expect(c.id).toMatch(/^cmpl-/);
      expect(c.model).toBe("stories260K");
    }
    expect(withChoices.length).toBeGreaterThan(1);
    expect(withChoices.map((c) => c.choices[0]!.text).join("")).toBe(whole.choices[0]!.text);
    expect(withChoices.at(-1)!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it("answers a bad streamed request with a JSON error and its status, before any event", async () => {
    const bad = await apiError(client.chat.completions.create({ model: "stories260K", messages, temperature: "hot" as never, stream: true }));
    expect(bad.status).toBe(400);
    expect((bad.error as { param?: string }).param).toBe("temperature");
    const options = await apiError(client.chat.completions.create({ model: "stories260K", messages, stream_options: { include_usage: true } }));
    expect(options.status).toBe(400);
    expect((options.error as { param?: string }).param).toBe("stream_options");
    const unavailable = await apiError(client.chat.completions.create({ model: "missing", messages, stream: true }));
    expect(unavailable.status).toBe(424);
    expect(unavailable.code).toBe("model_unavailable");
    const notBool = await apiError(client.chat.completions.create({ model: "stories260K", messages, stream: "yes" as never }));
    expect(notBool.status).toBe(400);
    expect((notBool.error as { param?: string }).param).toBe("stream");
  });

  it("stops generating when the client leaves mid-stream, and frees the sequence", async () => {
    const stream = await client.chat.completions.create({ model: "solo", messages, max_tokens: 100_000, stream: true });
    let seen = 0;
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) seen++;
      if (seen === 3) break; // the SDK aborts the request
    }
    expect(seen).toBe(3);
    // The only sequence is free again: this call would wait for it (and time out) otherwise.
    const after = await client.chat.completions.create({ model: "solo", messages, max_tokens: 4 });
    expect(after.choices[0]!.message.content).toBeTypeOf("string");
  });

  it("refuses stream on /v1/embeddings with a 400 naming stream", async () => {
    const err = await apiError(client.embeddings.create({ model: "local/glove-100d", input: "a red apple", stream: true } as never));
    expect(err.status).toBe(400);
    expect((err.error as { param?: string }).param).toBe("stream");
  });
});

describe("streaming through an OpenAI-compatible upstream", () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    upstream = await new FakeUpstream().start();
    const base = upstreamConfig(upstream.url) as { providers: Record<string, unknown>; models: Record<string, string> };
    server = await startServer({
      providers: { ...base.providers, claude: { type: "anthropic", baseURL: upstream.url.replace(/\/v1$/, ""), apiKey: "k" } },
      models: { "claude*": "claude", ...base.models },
    });
    client = server.client();
  });
  afterAll(async () => {
    await server.close();
    await upstream.stop();
  });

  it("passes the upstream's chunks through as they come", async () => {
    upstream.plan = () => ({ kind: "ok" });
    const chunks = await collect(
      await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "pass me through" }], stream: true, stream_options: { include_usage: true } }),
    );
    expect(chunks[0]!.id).toBe("chatcmpl-fake");
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(joined(chunks)).toBe("echo: pass me through");
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBe(4); // one chunk per word
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("stop");
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
    const call = upstream.calls.find((c) => c.key === "pass me through")!;
    expect(call.body.stream).toBe(true);
    expect(call.body.stream_options).toEqual({ include_usage: true });
    expect(call.authorization).toBe("Bearer upstream-key");
  });

  it("passes completions streams through", async () => {
    upstream.plan = () => ({ kind: "ok" });
    const chunks = await collect(await client.completions.create({ model: "gpt-test", prompt: "complete me", stream: true }));
    expect(chunks.map((c) => c.choices[0]!.text).join("")).toBe("echo: complete me");
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
  });

  it("aborts the upstream call when the client leaves mid-stream", async () => {
    upstream.plan = (call) => (call.key === "leave early" ? { kind: "stream", holdAfter: 3 } : { kind: "ok" });
    const stream = await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "leave early" }], stream: true });
    let got = 0;
    for await (const _ of stream) {
      got++;
      if (got === 2) break;
    }
    expect(got).toBe(2);
    // The fake holds the stream open until its client goes away: in flight 0 means our server hung up on it.
    await eventually(() => upstream.inFlight === 0, "the upstream call closed");
  });

  it("answers the upstream's error status before the stream as an APIError with that status", async () => {
    upstream.plan = (call) =>
      call.key === "refused"
        ? { kind: "status", status: 400, body: JSON.stringify({ error: { message: "upstream says no", type: "invalid_request_error", param: "messages", code: null } }) }
        : call.key === "overloaded"
          ? { kind: "status", status: 503 }
          : { kind: "ok" };
    const refused = await apiError(client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "refused" }], stream: true }));
    expect(refused.status).toBe(400);
    expect(refused.message).toContain("upstream says no");
    const overloaded = await apiError(client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "overloaded" }], stream: true }));
    expect(overloaded.status).toBe(503);
  });

  it("ends with an error event when the upstream breaks off midway (what came before stays)", async () => {
    upstream.plan = (call) => (call.key === "break off" ? { kind: "stream", breakAfter: 3 } : { kind: "ok" });
    const stream = await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "break off" }], stream: true });
    const got: ChatChunk[] = [];
    let failure: unknown = null;
    try {
      for await (const c of stream) got.push(c);
    } catch (err) {
      failure = err;
    }
    expect(got).toHaveLength(3); // role, "echo: ", "break " — the half event after them is dropped
    expect(joined(got)).toBe("echo: break ");
    expect(failure).toBeInstanceOf(APIError);
    expect((failure as APIError).message).toMatch(/stopped answering/);
    expect((failure as APIError).code).toBe("upstream_unreachable");
  });

  it("streamed calls count in the provider's rate limiter (a limit the upstream announces is learnt from them)", async () => {
    upstream.plan = (call) => (call.key === "limits" ? { kind: "stream", headers: { "x-ratelimit-limit-requests": "600" } } : { kind: "ok" });
    const before = await (await fetch(server.url.replace(/\/v1$/, "/metrics"))).text();
    expect(before).not.toMatch(/openbatch_provider_rpm_budget\{provider="up"\}/);
    await collect(await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "limits" }], stream: true }));
    const after = await (await fetch(server.url.replace(/\/v1$/, "/metrics"))).text();
    expect(after).toMatch(/openbatch_provider_rpm_budget\{provider="up"\} 588\b/);
  });

  it("answers 400 naming stream for a provider type that cannot stream (anthropic), never a silent whole answer", async () => {
    const before = upstream.calls.length;
    const err = await apiError(client.chat.completions.create({ model: "claude-test", messages: [{ role: "user", content: "x" }], stream: true }));
    expect(err.status).toBe(400);
    expect((err.error as { param?: string }).param).toBe("stream");
    expect(err.message).toContain("anthropic");
    expect(upstream.calls.length).toBe(before);
  });
});
