import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerConfigSchema } from "../src/core/config.js";
import { AnthropicProvider } from "../src/providers/anthropic.js";
import { GeminiProvider } from "../src/providers/gemini.js";
import { OpenAICompatibleProvider } from "../src/providers/openai-compatible.js";
import { translateRequest, translateResponse } from "../src/providers/translate/translate.js";
import { FakeUpstream } from "./support/fake-upstream.js";
import { readJsonl, startServer, uploadJsonl, waitFor, type TestServer } from "./support/harness.js";

/** One call the fake native upstream received. */
interface NativeCall {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

/** Text of the last user turn of an Anthropic or Gemini request. */
function lastUserText(body: any): string {
  if (Array.isArray(body.messages)) {
    const m = body.messages.filter((x: any) => x.role === "user").at(-1);
    return typeof m.content === "string" ? m.content : m.content.map((b: any) => b.text).join("");
  }
  const c = body.contents.filter((x: any) => x.role !== "model").at(-1);
  return c.parts.map((p: any) => p.text).join("");
}

/**
 * A fake of both native APIs: Anthropic `POST /v1/messages` and Gemini `POST /v1beta/models/{m}:generateContent` /
 * `:embedContent`, answering in their own shapes and recording every call.
 */
class FakeNative {
  readonly calls: NativeCall[] = [];
  url = "";
  private server: Server | null = null;

  async start(): Promise<this> {
    this.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const path = req.url ?? "";
      this.calls.push({ path, headers: req.headers, body });
      const send = (status: number, payload: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(payload));
      if (req.method === "POST" && path === "/v1/messages") {
        const text = `claude: ${lastUserText(body)}`;
        const cut = body.max_tokens < 10;
        return send(200, {
          id: "msg_fake",
          type: "message",
          role: "assistant",
          model: body.model,
          content: [{ type: "text", text }],
          stop_reason: cut ? "max_tokens" : "end_turn",
          stop_sequence: null,
          usage: { input_tokens: 11, output_tokens: 5 },
        });
      }
      const m = /^\/v1beta\/models\/([^/:]+):(generateContent|embedContent)$/.exec(path);
      if (req.method === "POST" && m) {
        if (m[2] === "embedContent") return send(200, { embedding: { values: [0.25, -0.5, 1] } });
        const cut = (body.generationConfig?.maxOutputTokens ?? 100) < 10;
        return send(200, {
          candidates: [{ content: { role: "model", parts: [{ text: `gemini: ${lastUserText(body)}` }] }, finishReason: cut ? "MAX_TOKENS" : "STOP", index: 0 }],
          usageMetadata: { promptTokenCount: 7, candidatesTokenCount: 3, totalTokenCount: 10 },
          modelVersion: m[1],
          responseId: "resp_fake",
        });
      }
      send(404, { error: { message: `no route ${req.method} ${path}` } });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

function line(custom_id: string, body: Record<string, unknown>, url = "/v1/chat/completions"): string {
  return JSON.stringify({ custom_id, method: "POST", url, body });
}

/** Three chat items for `model`: a full one, a short multi-turn one, and one using tools. */
function chatBatch(model: string): string {
  return (
    [
      line("full", {
        model,
        messages: [
          { role: "system", content: "Answer in one word." },
          { role: "user", content: "Capital of France?" },
        ],
        max_tokens: 50,
        temperature: 0.2,
        top_p: 0.8,
        stop: ["END"],
      }),
      line("short", {
        model,
        messages: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello!" },
          { role: "user", content: "Tell me a story" },
        ],
        max_completion_tokens: 5,
      }),
      line("tools", {
        model,
        messages: [{ role: "user", content: "Weather?" }],
        tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
      }),
    ].join("\n") + "\n"
  );
}

describe("OpenAI batches served by native Anthropic and Gemini providers", () => {
  let fake: FakeNative;
  let server: TestServer;
  beforeAll(async () => {
    fake = await new FakeNative().start();
    server = await startServer({
      providers: {
        claude: { type: "anthropic", baseURL: fake.url, apiKey: "ant-key", maxConcurrency: 4, timeoutMs: 5000 },
        gem: { type: "gemini", baseURL: fake.url, apiKey: "goog-key", maxConcurrency: 4, timeoutMs: 5000 },
      },
      models: { "claude-*": "claude", "gemini-*": "gem", "text-embedding-*": "gem" },
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.stop();
  });

  async function run(input: string, endpoint: "/v1/chat/completions" | "/v1/embeddings" = "/v1/chat/completions") {
    const client = server.client();
    const file = await uploadJsonl(client, input);
    const batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h" });
    const done = await waitFor(client, batch.id);
    const out = await readJsonl(client, done.output_file_id);
    const errors = await readJsonl(client, done.error_file_id);
    const byId = (rows: any[]) => Object.fromEntries(rows.map((r) => [r.custom_id, r]));
    return { done, out: byId(out), errors: byId(errors) };
  }

  it("an anthropic provider answers OpenAI chat lines with chat.completion bodies", async () => {
    const before = fake.calls.length;
    const { done, out, errors } = await run(chatBatch("claude-test"));
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });

    const full = out.full.response;
    expect(full.status_code).toBe(200);
    expect(full.body.object).toBe("chat.completion");
    expect(full.body.choices[0].message).toMatchObject({ role: "assistant", content: "claude: Capital of France?" });
    expect(full.body.choices[0].finish_reason).toBe("stop");
    expect(full.body.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
    expect(out.short.response.body.choices[0].finish_reason).toBe("length");
    expect(out.short.response.body.choices[0].message.content).toBe("claude: Tell me a story");
    expect(done.usage).toMatchObject({ input_tokens: 22, output_tokens: 10 });

    const calls = fake.calls.slice(before);
    expect(calls).toHaveLength(2); // the tools item never left
    for (const c of calls) {
      expect(c.path).toBe("/v1/messages");
      expect(c.headers["x-api-key"]).toBe("ant-key");
      expect(c.headers["anthropic-version"]).toBe("2023-06-01");
      expect(c.headers.authorization).toBeUndefined();
    }
    const sent = calls.find((c) => c.body.system !== undefined)!.body;
    expect(sent).toEqual({
      model: "claude-test",
      max_tokens: 50,
      system: "Answer in one word.",
      messages: [{ role: "user", content: "Capital of France?" }],
      temperature: 0.2,
      top_p: 0.8,
      stop_sequences: ["END"],
    });
    const short = calls.find((c) => c.body.system === undefined)!.body;
    expect(short.max_tokens).toBe(5);
    expect(short.messages.map((m: any) => m.role)).toEqual(["user", "assistant", "user"]);

    const err = errors.tools;
    expect(err.response).toBeNull();
    expect(err.error.code).toBe("untranslatable_field");
    expect(err.error.message).toContain("'tools'");
  });

  it("a gemini provider answers OpenAI chat lines; JSON mode reaches it as responseMimeType", async () => {
    const before = fake.calls.length;
    const input =
      chatBatch("gemini-test") +
      line("json", { model: "gemini-test", messages: [{ role: "user", content: "Give JSON" }], response_format: { type: "json_object" } }) +
      "\n";
    const { done, out, errors } = await run(input);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 4, completed: 3, failed: 1 });

    const full = out.full.response.body;
    expect(full.object).toBe("chat.completion");
    expect(full.model).toBe("gemini-test");
    expect(full.choices[0].message.content).toBe("gemini: Capital of France?");
    expect(full.choices[0].finish_reason).toBe("stop");
    expect(full.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(out.short.response.body.choices[0].finish_reason).toBe("length");
    expect(done.usage).toMatchObject({ input_tokens: 21, output_tokens: 9 });

    const calls = fake.calls.slice(before);
    expect(calls).toHaveLength(3);
    for (const c of calls) {
      expect(c.path).toBe("/v1beta/models/gemini-test:generateContent");
      expect(c.headers["x-goog-api-key"]).toBe("goog-key");
      expect(c.body.model).toBeUndefined();
    }
    const sent = calls.find((c) => c.body.systemInstruction !== undefined)!.body;
    expect(sent).toEqual({
      systemInstruction: { parts: [{ text: "Answer in one word." }] },
      contents: [{ role: "user", parts: [{ text: "Capital of France?" }] }],
      generationConfig: { maxOutputTokens: 50, temperature: 0.2, topP: 0.8, stopSequences: ["END"] },
    });
    const short = calls.find((c) => c.body.generationConfig?.maxOutputTokens === 5)!.body;
    expect(short.contents.map((c: any) => c.role)).toEqual(["user", "model", "user"]);
    expect(calls.find((c) => c.body.generationConfig?.responseMimeType === "application/json")).toBeDefined();

    expect(errors.tools.error.code).toBe("untranslatable_field");
    expect(errors.tools.error.message).toContain("'tools'");
  });

  it("JSON mode on the anthropic provider fails the item, naming response_format", async () => {
    const { done, errors } = await run(line("json", { model: "claude-test", messages: [{ role: "user", content: "Give JSON" }], response_format: { type: "json_object" } }) + "\n");
    expect(done.request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
    expect(errors.json.error.code).toBe("untranslatable_field");
    expect(errors.json.error.message).toContain("'response_format'");
  });

  it("OpenAI embedding lines run on Gemini embedContent", async () => {
    const before = fake.calls.length;
    const { done, out } = await run(line("e", { model: "text-embedding-004", input: "hello world" }, "/v1/embeddings") + "\n", "/v1/embeddings");
    expect(done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect(out.e.response.body.data[0].embedding).toEqual([0.25, -0.5, 1]);
    const call = fake.calls.slice(before)[0]!;
    expect(call.path).toBe("/v1beta/models/text-embedding-004:embedContent");
    expect(call.body).toEqual({ content: { parts: [{ text: "hello world" }] } });
  });
});

describe("providers fill the model a translated Gemini body leaves out", () => {
  const geminiBody = JSON.stringify({ systemInstruction: { parts: [{ text: "sys" }] }, contents: [{ role: "user", parts: [{ text: "ping" }] }], generationConfig: { maxOutputTokens: 20 } });
  const signal = new AbortController().signal;

  it("anthropic: the model comes from the upstream request", async () => {
    const fake = await new FakeNative().start();
    const provider = new AnthropicProvider("c", providerConfigSchema.parse({ type: "anthropic", baseURL: fake.url + "/v1", apiKey: "k" }) as any);
    try {
      const wire = translateRequest("gemini:generateContent", geminiBody, "anthropic");
      const res = await provider.send({ endpoint: wire.endpoint, model: "claude-x", body: wire.body }, signal);
      expect(res.status).toBe(200);
      expect(fake.calls[0]!.path).toBe("/v1/messages"); // a trailing /v1 in baseURL is tolerated
      expect(fake.calls[0]!.body).toEqual({ model: "claude-x", max_tokens: 20, system: "sys", messages: [{ role: "user", content: "ping" }] });
      const back = JSON.parse(translateResponse("gemini:generateContent", wire.endpoint, res.body));
      expect(back.candidates[0].content.parts[0].text).toBe("claude: ping");
      expect(back.usageMetadata).toEqual({ promptTokenCount: 11, candidatesTokenCount: 5, totalTokenCount: 16 });
    } finally {
      await provider.close();
      await fake.stop();
    }
  });

  it("openai-compatible: the model comes from the upstream request", async () => {
    const up = await new FakeUpstream().start();
    const provider = new OpenAICompatibleProvider("o", providerConfigSchema.parse({ type: "openai-compatible", baseURL: up.url }) as any);
    try {
      const wire = translateRequest("gemini:generateContent", geminiBody, "openai");
      const res = await provider.send({ endpoint: wire.endpoint, model: "gpt-x", body: wire.body }, signal);
      expect(res.status).toBe(200);
      expect(up.calls[0]!.body).toMatchObject({ model: "gpt-x", max_tokens: 20, messages: [{ role: "system", content: "sys" }, { role: "user", content: "ping" }] });
    } finally {
      await provider.close();
      await up.stop();
    }
  });

  it("gemini: a models/ prefix is stripped and a body's model moves to the URL", async () => {
    const fake = await new FakeNative().start();
    const provider = new GeminiProvider("g", providerConfigSchema.parse({ type: "gemini", baseURL: fake.url }) as any);
    try {
      const a = await provider.send({ endpoint: "gemini:generateContent", model: "models/gemini-a", body: geminiBody, apiKey: "per-batch" }, signal);
      expect(a.status).toBe(200);
      expect(fake.calls[0]!.path).toBe("/v1beta/models/gemini-a:generateContent");
      expect(fake.calls[0]!.headers["x-goog-api-key"]).toBe("per-batch");
      const withModel = JSON.stringify({ model: "models/gemini-b", ...JSON.parse(geminiBody) });
      await provider.send({ endpoint: "gemini:generateContent", model: null, body: withModel }, signal);
      expect(fake.calls[1]!.path).toBe("/v1beta/models/gemini-b:generateContent");
      expect(fake.calls[1]!.body.model).toBeUndefined();
      const none = await provider.send({ endpoint: "gemini:generateContent", model: null, body: geminiBody }, signal);
      expect(none.status).toBe(400);
      expect(fake.calls).toHaveLength(2);
    } finally {
      await provider.close();
      await fake.stop();
    }
  });
});

describe("native provider config", () => {
  it("fills defaults and resolves env: secrets for anthropic and gemini", async () => {
    const { parseConfig } = await import("../src/core/config.js");
    const c = parseConfig(
      { providers: { c: { type: "anthropic", apiKey: "env:ANT", headers: { "anthropic-beta": "env:BETA" } }, g: { type: "gemini", apiKey: "env:GOOG" } } },
      { ANT: "a-key", BETA: "b", GOOG: "g-key" },
    );
    expect(c.providers.c).toMatchObject({ baseURL: "https://api.anthropic.com", apiKey: "a-key", headers: { "anthropic-beta": "b" }, maxConcurrency: 16, timeoutMs: 600000, modelBudgets: {} });
    expect(c.providers.g).toMatchObject({ baseURL: "https://generativelanguage.googleapis.com", apiKey: "g-key" });
    expect(() => parseConfig({ providers: { g: { type: "gemini", apiKey: "env:MISSING" } } }, {})).toThrow(/MISSING/);
  });
});
