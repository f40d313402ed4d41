import { describe, expect, it } from "vitest";
import type { Endpoint, WireFormat } from "../src/core/wire-format.js";
import { readUsage } from "../src/engine/usage.js";
import { TranslationError, translateRequest, translateResponse } from "../src/providers/translate/translate.js";

/** Translates a request body object; returns the target endpoint and parsed body. */
function req(endpoint: Endpoint, body: unknown, to: WireFormat): { endpoint: Endpoint; body: any } {
  const out = translateRequest(endpoint, JSON.stringify(body), to);
  return { endpoint: out.endpoint, body: JSON.parse(out.body) };
}

function res(own: Endpoint, sent: Endpoint, body: unknown): any {
  return JSON.parse(translateResponse(own, sent, JSON.stringify(body)));
}

/** The TranslationError a translation throws (fails the test when none). */
function errorOf(fn: () => unknown): TranslationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TranslationError);
    return err as TranslationError;
  }
  throw new Error("expected a TranslationError");
}

const chat = {
  model: "m-1",
  messages: [
    { role: "system", content: "You answer in French." },
    { role: "user", content: "Hello" },
    { role: "assistant", content: "Bonjour" },
    { role: "user", content: [{ type: "text", text: "How are you?" }] },
  ],
  max_tokens: 64,
  temperature: 0.3,
  top_p: 0.9,
  stop: ["END", "STOP"],
};

describe("request translation", () => {
  it("is the identity when formats match", () => {
    const text = JSON.stringify({ ...chat, tools: [{ type: "function" }] });
    expect(translateRequest("/v1/chat/completions", text, "openai")).toEqual({ endpoint: "/v1/chat/completions", body: text });
  });

  it("OpenAI → Anthropic → OpenAI keeps system prompt, turns, max tokens, temperature, top_p, stop", () => {
    const a = req("/v1/chat/completions", chat, "anthropic");
    expect(a.endpoint).toBe("/v1/messages");
    expect(a.body).toEqual({
      model: "m-1",
      max_tokens: 64,
      system: "You answer in French.",
      messages: [
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Bonjour" },
        { role: "user", content: [{ type: "text", text: "How are you?" }] },
      ],
      temperature: 0.3,
      top_p: 0.9,
      stop_sequences: ["END", "STOP"],
    });
    const back = req("/v1/messages", a.body, "openai");
    expect(back.endpoint).toBe("/v1/chat/completions");
    expect(back.body).toEqual(chat);
  });

  it("OpenAI → Gemini → OpenAI keeps system prompt, turns, max tokens, temperature, top_p, stop and JSON mode", () => {
    const src = { ...chat, model: undefined, response_format: { type: "json_object" }, n: 2, max_tokens: undefined, max_completion_tokens: 32 };
    const g = req("/v1/chat/completions", src, "gemini");
    expect(g.endpoint).toBe("gemini:generateContent");
    expect(g.body).toEqual({
      systemInstruction: { parts: [{ text: "You answer in French." }] },
      contents: [
        { role: "user", parts: [{ text: "Hello" }] },
        { role: "model", parts: [{ text: "Bonjour" }] },
        { role: "user", parts: [{ text: "How are you?" }] },
      ],
      generationConfig: { maxOutputTokens: 32, temperature: 0.3, topP: 0.9, stopSequences: ["END", "STOP"], candidateCount: 2, responseMimeType: "application/json" },
    });
    expect(g.body.model).toBeUndefined(); // the model travels in the URL
    const back = req("gemini:generateContent", g.body, "openai");
    expect(back.body).toEqual({
      messages: [
        { role: "system", content: "You answer in French." },
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Bonjour" },
        { role: "user", content: "How are you?" },
      ],
      max_tokens: 32,
      temperature: 0.3,
      top_p: 0.9,
      stop: ["END", "STOP"],
      response_format: { type: "json_object" },
      n: 2,
    });
  });

  it("a developer message is a system prompt; a stop string becomes a list", () => {
    const a = req("/v1/chat/completions", { model: "m", messages: [{ role: "developer", content: "Be brief." }, { role: "user", content: "hi" }], stop: "\n" }, "anthropic");
    expect(a.body.system).toBe("Be brief.");
    expect(a.body.stop_sequences).toEqual(["\n"]);
  });

  it("merges consecutive same-role turns where the target needs alternation", () => {
    const body = { model: "m", messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }, { role: "assistant", content: "c" }] };
    expect(req("/v1/chat/completions", body, "anthropic").body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] },
      { role: "assistant", content: "c" },
    ]);
    expect(req("/v1/chat/completions", body, "gemini").body.contents).toEqual([
      { role: "user", parts: [{ text: "a" }, { text: "b" }] },
      { role: "model", parts: [{ text: "c" }] },
    ]);
  });

  it("gives Anthropic its required max_tokens (4096) when the request has none", () => {
    expect(req("/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "hi" }] }, "anthropic").body.max_tokens).toBe(4096);
  });

  it("Anthropic system blocks and top_k reach Gemini; Gemini snake_case fields are read", () => {
    const g = req(
      "/v1/messages",
      { model: "claude-x", max_tokens: 10, system: [{ type: "text", text: "A", cache_control: { type: "ephemeral" } }, { type: "text", text: "B" }], messages: [{ role: "user", content: "q" }], top_k: 5 },
      "gemini",
    );
    expect(g.body.systemInstruction).toEqual({ parts: [{ text: "A" }, { text: "B" }] });
    expect(g.body.generationConfig).toEqual({ maxOutputTokens: 10, topK: 5 });
    const a = req(
      "gemini:generateContent",
      { model: "models/gemini-x", system_instruction: { parts: [{ text: "sys" }] }, contents: [{ parts: [{ text: "q" }] }], generation_config: { max_output_tokens: 7, top_k: 3 } },
      "anthropic",
    );
    expect(a.body).toEqual({ model: "gemini-x", max_tokens: 7, system: "sys", messages: [{ role: "user", content: "q" }], top_k: 3 });
  });

  it("translates embeddings between Gemini embedContent and OpenAI /v1/embeddings", () => {
    const o = req("gemini:embedContent", { content: { parts: [{ text: "hello world" }] }, outputDimensionality: 64 }, "openai");
    expect(o).toEqual({ endpoint: "/v1/embeddings", body: { input: "hello world", dimensions: 64 } });
    const g = req("/v1/embeddings", { model: "text-embedding-004", input: ["hi"], encoding_format: "float" }, "gemini");
    expect(g).toEqual({ endpoint: "gemini:embedContent", body: { content: { parts: [{ text: "hi" }] } } });
  });
});

describe("untranslatable fields raise TranslationError naming their path", () => {
  const user = [{ role: "user", content: "hi" }];
  const cases: [string, Endpoint, unknown, WireFormat, string][] = [
    ["tools", "/v1/chat/completions", { model: "m", messages: user, tools: [{ type: "function", function: { name: "f" } }] }, "anthropic", "tools"],
    ["tools (Gemini)", "/v1/chat/completions", { model: "m", messages: user, tools: [{ type: "function", function: { name: "f" } }] }, "gemini", "tools"],
    ["an image part", "/v1/chat/completions", { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image_url", image_url: { url: "data:," } }] }] }, "gemini", "messages[0].content[1].image_url"],
    ["logprobs", "/v1/chat/completions", { model: "m", messages: user, logprobs: true, top_logprobs: 2 }, "anthropic", "logprobs"],
    ["JSON mode on Anthropic", "/v1/chat/completions", { model: "m", messages: user, response_format: { type: "json_object" } }, "anthropic", "response_format"],
    ["structured outputs", "/v1/chat/completions", { model: "m", messages: user, response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } }, "gemini", "response_format"],
    ["n > 1 on Anthropic", "/v1/chat/completions", { model: "m", messages: user, n: 3 }, "anthropic", "n"],
    ["seed on Anthropic", "/v1/chat/completions", { model: "m", messages: user, seed: 1 }, "anthropic", "seed"],
    ["a tool result message", "/v1/chat/completions", { model: "m", messages: [...user, { role: "tool", tool_call_id: "x", content: "r" }] }, "gemini", "messages[1]"],
    ["assistant tool calls", "/v1/chat/completions", { model: "m", messages: [...user, { role: "assistant", content: null, tool_calls: [{ id: "c" }] }] }, "anthropic", "messages[1].tool_calls"],
    ["a late system message", "/v1/chat/completions", { model: "m", messages: [...user, { role: "system", content: "now" }] }, "anthropic", "messages[1]"],
    ["stream", "/v1/chat/completions", { model: "m", messages: user, stream: true }, "gemini", "stream"],
    ["an unknown field", "/v1/chat/completions", { model: "m", messages: user, reasoning_effort: "high" }, "gemini", "reasoning_effort"],
    ["Gemini JSON mode on Anthropic", "gemini:generateContent", { contents: [{ parts: [{ text: "q" }] }], generationConfig: { responseMimeType: "application/json" } }, "anthropic", "generationConfig.responseMimeType"],
    ["Gemini candidateCount on Anthropic", "gemini:generateContent", { contents: [{ parts: [{ text: "q" }] }], generationConfig: { candidateCount: 2 } }, "anthropic", "generationConfig.candidateCount"],
    ["Gemini topK on OpenAI", "gemini:generateContent", { contents: [{ parts: [{ text: "q" }] }], generationConfig: { topK: 4 } }, "openai", "generationConfig.topK"],
    ["Gemini inline data", "gemini:generateContent", { contents: [{ role: "user", parts: [{ text: "q" }, { inlineData: { mimeType: "image/png", data: "" } }] }] }, "openai", "contents[0].parts[1].inlineData"],
    ["Gemini safety settings", "gemini:generateContent", { contents: [{ parts: [{ text: "q" }] }], safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }] }, "openai", "safetySettings"],
    ["Gemini response schema", "gemini:generateContent", { contents: [{ parts: [{ text: "q" }] }], generationConfig: { responseMimeType: "application/json", responseSchema: { type: "OBJECT" } } }, "openai", "generationConfig.responseSchema"],
    ["Anthropic top_k on OpenAI", "/v1/messages", { model: "c", max_tokens: 5, messages: user, top_k: 3 }, "openai", "top_k"],
    ["an Anthropic image block", "/v1/messages", { model: "c", max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "" } }] }] }, "gemini", "messages[0].content[0]"],
    ["Anthropic tools", "/v1/messages", { model: "c", max_tokens: 5, messages: user, tools: [{ name: "f", input_schema: {} }] }, "openai", "tools"],
    ["Anthropic thinking", "/v1/messages", { model: "c", max_tokens: 5, messages: user, thinking: { type: "enabled", budget_tokens: 1024 } }, "openai", "thinking"],
    ["completions endpoint", "/v1/completions", { model: "m", prompt: "p" }, "anthropic", "endpoint"],
    ["embeddings on Anthropic", "/v1/embeddings", { model: "m", input: "x" }, "anthropic", "endpoint"],
    ["several inputs to embedContent", "/v1/embeddings", { model: "m", input: ["a", "b"] }, "gemini", "input"],
    ["base64 embeddings", "/v1/embeddings", { model: "m", input: "a", encoding_format: "base64" }, "gemini", "encoding_format"],
    ["Gemini embedding taskType", "gemini:embedContent", { content: { parts: [{ text: "a" }] }, taskType: "RETRIEVAL_QUERY" }, "openai", "taskType"],
  ];
  it.each(cases)("%s", (_name, endpoint, body, to, param) => {
    const err = errorOf(() => translateRequest(endpoint, JSON.stringify(body), to));
    expect(err.param).toBe(param);
    expect(err.message.length).toBeGreaterThan(10);
  });
});

describe("response translation", () => {
  const completion = {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1700000000,
    model: "gpt-x",
    choices: [{ index: 0, message: { role: "assistant", content: "Bonjour !" }, finish_reason: "length" }],
    usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
  };

  it("is the identity when formats match", () => {
    expect(translateResponse("/v1/chat/completions", "/v1/chat/completions", "not json")).toBe("not json");
  });

  it("Anthropic message → OpenAI chat.completion: text, finish_reason, usage", () => {
    const msg = {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-x",
      content: [{ type: "text", text: "Bon" }, { type: "text", text: "jour" }],
      stop_reason: "max_tokens",
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 5 },
    };
    const o = res("/v1/chat/completions", "/v1/messages", msg);
    expect(o.object).toBe("chat.completion");
    expect(o.model).toBe("claude-x");
    expect(o.choices[0].message).toMatchObject({ role: "assistant", content: "Bonjour" });
    expect(o.choices[0].finish_reason).toBe("length");
    expect(o.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    expect(res("/v1/chat/completions", "/v1/messages", { ...msg, stop_reason: "end_turn" }).choices[0].finish_reason).toBe("stop");
    expect(res("/v1/chat/completions", "/v1/messages", { ...msg, stop_reason: "stop_sequence", stop_sequence: "END" }).choices[0].finish_reason).toBe("stop");
  });

  it("OpenAI chat.completion → Anthropic message, and back", () => {
    const a = res("/v1/messages", "/v1/chat/completions", completion);
    expect(a).toMatchObject({ type: "message", role: "assistant", model: "gpt-x", content: [{ type: "text", text: "Bonjour !" }], stop_reason: "max_tokens", stop_sequence: null });
    expect(a.usage).toMatchObject({ input_tokens: 12, output_tokens: 4 });
    expect(res("/v1/messages", "/v1/chat/completions", { ...completion, choices: [{ ...completion.choices[0], finish_reason: "stop" }] }).stop_reason).toBe("end_turn");
    const back = res("/v1/chat/completions", "/v1/messages", a);
    expect(back.choices[0].message.content).toBe("Bonjour !");
    expect(back.choices[0].finish_reason).toBe("length");
    expect(back.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
  });

  it("OpenAI chat.completion → Anthropic message has every field of the current Message, null where unknown, and a msg_ id", () => {
    const withCache = { ...completion, usage: { ...completion.usage, prompt_tokens_details: { cached_tokens: 5 }, completion_tokens_details: { reasoning_tokens: 3 } } };
    const a = res("/v1/messages", "/v1/chat/completions", withCache);
    expect(a.id).toMatch(/^msg_[0-9a-f]{24}$/);
    expect(a).toEqual({
      id: a.id,
      type: "message",
      role: "assistant",
      model: "gpt-x",
      content: [{ type: "text", text: "Bonjour !", citations: null }],
      stop_reason: "max_tokens",
      stop_sequence: null,
      stop_details: null,
      container: null,
      diagnostics: null,
      usage: {
        input_tokens: 7,
        output_tokens: 4,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 5,
        cache_creation: null,
        inference_geo: null,
        output_tokens_details: { thinking_tokens: 3 },
        server_tool_use: null,
        service_tier: null,
        speed: null,
      },
    });
    // A Gemini responseId is not an Anthropic id either; an msg_ id is kept; an answer without usage still has one.
    expect(res("/v1/messages", "gemini:generateContent", { candidates: [{ content: { parts: [{ text: "x" }] }, finishReason: "STOP" }], responseId: "r1" }).id).toMatch(/^msg_[0-9a-f]{24}$/);
    const noUsage = res("/v1/messages", "/v1/chat/completions", { ...completion, id: "msg_abc", usage: undefined });
    expect(noUsage.id).toBe("msg_abc");
    expect(noUsage.usage).toMatchObject({ input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: null, cache_read_input_tokens: null });
  });

  it("Gemini GenerateContentResponse → OpenAI chat.completion: every candidate, finish reasons, usage", () => {
    const g = {
      candidates: [
        { content: { role: "model", parts: [{ text: "one" }] }, finishReason: "STOP", index: 0 },
        { content: { role: "model", parts: [{ text: "t" }, { text: "wo" }] }, finishReason: "MAX_TOKENS", index: 1 },
      ],
      usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 6, totalTokenCount: 14 },
      modelVersion: "gemini-x",
      responseId: "r1",
    };
    const o = res("/v1/chat/completions", "gemini:generateContent", g);
    expect(o.model).toBe("gemini-x");
    expect(o.choices.map((c: any) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, "one", "stop"],
      [1, "two", "length"],
    ]);
    expect(o.usage).toMatchObject({ prompt_tokens: 8, completion_tokens: 6, total_tokens: 14 });
    const back = res("gemini:generateContent", "/v1/chat/completions", o);
    expect(back).toEqual({
      candidates: [
        { content: { role: "model", parts: [{ text: "one" }] }, finishReason: "STOP", index: 0 },
        { content: { role: "model", parts: [{ text: "two" }] }, finishReason: "MAX_TOKENS", index: 1 },
      ],
      usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 6, totalTokenCount: 14 },
      modelVersion: "gemini-x",
      responseId: "r1",
    });
  });

  it("OpenAI chat.completion → Gemini, and Anthropic → Gemini through the pivot", () => {
    const g = res("gemini:generateContent", "/v1/chat/completions", completion);
    expect(g.candidates[0]).toEqual({ content: { role: "model", parts: [{ text: "Bonjour !" }] }, finishReason: "MAX_TOKENS", index: 0 });
    expect(g.usageMetadata).toEqual({ promptTokenCount: 12, candidatesTokenCount: 4, totalTokenCount: 16 });
    const fromClaude = res("gemini:generateContent", "/v1/messages", { type: "message", role: "assistant", content: [{ type: "text", text: "hi" }], stop_reason: "end_turn", usage: { input_tokens: 3, output_tokens: 1 } });
    expect(fromClaude.candidates[0].finishReason).toBe("STOP");
    expect(fromClaude.usageMetadata).toEqual({ promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4 });
  });

  it("a blocked Gemini prompt becomes a content_filter choice", () => {
    const o = res("/v1/chat/completions", "gemini:generateContent", { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } });
    expect(o.choices).toEqual([expect.objectContaining({ index: 0, finish_reason: "content_filter", message: expect.objectContaining({ content: null }) })]);
  });

  it("embeddings answers both ways", () => {
    expect(res("gemini:embedContent", "/v1/embeddings", { object: "list", data: [{ object: "embedding", index: 0, embedding: [0.5, -1] }], model: "e", usage: { prompt_tokens: 2, total_tokens: 2 } })).toEqual({
      embedding: { values: [0.5, -1] },
    });
    const b64 = Buffer.from(new Float32Array([0.25, 2]).buffer).toString("base64");
    expect(res("gemini:embedContent", "/v1/embeddings", { data: [{ embedding: b64 }] }).embedding.values).toEqual([0.25, 2]);
    const o = res("/v1/embeddings", "gemini:embedContent", { embedding: { values: [1, 2, 3] } });
    expect(o.object).toBe("list");
    expect(o.data[0]).toEqual({ object: "embedding", index: 0, embedding: [1, 2, 3] });
  });

  it("a body that is not JSON is passed through for the dispatcher to judge", () => {
    expect(translateResponse("/v1/chat/completions", "/v1/messages", "oops")).toBe("oops");
  });
});

describe("readUsage", () => {
  it("reads Gemini usageMetadata", () => {
    expect(readUsage({ usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 4, cachedContentTokenCount: 2, totalTokenCount: 14 } })).toEqual({
      input_tokens: 10,
      cached_tokens: 2,
      output_tokens: 4,
      reasoning_tokens: 0,
    });
  });
  it("reads Anthropic usage with cache tokens", () => {
    expect(readUsage({ usage: { input_tokens: 5, cache_creation_input_tokens: 2, cache_read_input_tokens: 3, output_tokens: 7 } })).toEqual({
      input_tokens: 10,
      cached_tokens: 3,
      output_tokens: 7,
      reasoning_tokens: 0,
    });
    expect(readUsage({ usage: { input_tokens: 5, output_tokens: 7 } })).toMatchObject({ input_tokens: 5, output_tokens: 7 });
  });
});
