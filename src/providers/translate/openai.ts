import {
  absent,
  addSystem,
  isEmpty,
  isObject,
  nowSeconds,
  num,
  randomId,
  stopList,
  str,
  usage,
  count,
  type ChatCore,
  type FinishReason,
  type JsonObject,
  type ResponseCore,
  type Text,
} from "./core.js";
import { TranslationError } from "./errors.js";

/** The error for a source field the shared core has no room for. */
export function untranslatable(param: string, what: string): TranslationError {
  return new TranslationError(
    param,
    `${what} is not translated between request formats: only the system prompt, text turns, max tokens, temperature, ` +
      `top_p, top_k, stop, JSON mode, n, seed and penalties are (where the target has them). Send it to a provider of ` +
      `its own format, or remove the field.`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Requests: OpenAI chat completions body ↔ core

/** Reads an OpenAI `/v1/chat/completions` body. @throws TranslationError naming the first field the core cannot carry. */
export function openaiChatToCore(body: JsonObject): ChatCore {
  const core: ChatCore = { system: [], turns: [], src: {} };
  const hasTools = (!absent(body.tools) && !isEmpty(body.tools)) || (!absent(body.functions) && !isEmpty(body.functions));
  for (const [key, v] of Object.entries(body)) {
    if (absent(v)) continue;
    switch (key) {
      case "model":
        core.model = str(v, key);
        break;
      case "messages":
        readMessages(v, core);
        break;
      case "max_tokens":
      case "max_completion_tokens":
        if (key === "max_tokens" && !absent(body.max_completion_tokens)) break; // the newer name wins
        core.maxTokens = num(v, key);
        core.src.maxTokens = key;
        break;
      case "temperature":
        core.temperature = num(v, key);
        core.src.temperature = key;
        break;
      case "top_p":
        core.topP = num(v, key);
        core.src.topP = key;
        break;
      case "stop":
        core.stop = stopList(v, key);
        core.src.stop = key;
        break;
      case "response_format": {
        const type = isObject(v) ? v.type : undefined;
        if (type === "text") break;
        if (type === "json_object") {
          core.json = true;
          core.src.json = key;
          break;
        }
        throw untranslatable(key, `response_format ${JSON.stringify(type ?? v)} (structured outputs)`);
      }
      case "n":
        core.n = num(v, key);
        core.src.n = key;
        break;
      case "seed":
        core.seed = num(v, key);
        core.src.seed = key;
        break;
      case "presence_penalty":
      case "frequency_penalty": {
        if (v === 0) break;
        const field = key === "presence_penalty" ? "presencePenalty" : "frequencyPenalty";
        core[field] = num(v, key);
        core.src[field] = key;
        break;
      }
      case "user":
        core.user = str(v, key);
        core.src.user = key;
        break;
      case "stream":
      case "logprobs":
        if (v === false) break;
        throw untranslatable(key, `'${key}'`);
      case "tools":
      case "functions":
      case "logit_bias":
        if (isEmpty(v)) break;
        throw untranslatable(key, key === "logit_bias" ? "logit_bias" : "Tool use");
      case "tool_choice":
      case "function_call":
      case "parallel_tool_calls":
        if (!hasTools) break; // meaningless without tools
        throw untranslatable(key, "Tool use");
      // Bookkeeping that changes no output: stored-completion flags, end-user and cache keys.
      case "store":
      case "metadata":
      case "safety_identifier":
      case "prompt_cache_key":
        break;
      default:
        throw untranslatable(key, `'${key}'`);
    }
  }
  return core;
}

function readMessages(v: unknown, core: ChatCore): void {
  if (!Array.isArray(v)) throw new TranslationError("messages", "Expected a list of messages.");
  let started = false;
  v.forEach((m: unknown, i) => {
    const p = `messages[${i}]`;
    if (!isObject(m)) throw new TranslationError(p, "Expected a message object.");
    const role = m.role;
    if (role !== "system" && role !== "developer" && role !== "user" && role !== "assistant") {
      throw untranslatable(p, `A '${String(role)}' message (tool or function result)`);
    }
    for (const [k, val] of Object.entries(m)) {
      if (absent(val) || k === "role" || k === "content") continue;
      if ((k === "tool_calls" || k === "annotations") && isEmpty(val)) continue;
      throw untranslatable(`${p}.${k}`, k === "tool_calls" || k === "function_call" ? "Tool use" : `'${k}' on a message`);
    }
    if (role === "system" || role === "developer") {
      if (started) {
        throw new TranslationError(
          p,
          "A system message after the conversation has started cannot be translated: the other formats take one system prompt, before every turn.",
        );
      }
      addSystem(core, readContent(m.content, p));
    } else {
      started = true;
      core.turns.push({ role, text: readContent(m.content, p) });
    }
  });
}

function readContent(c: unknown, p: string): Text {
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    return c.map((part: unknown, j) => {
      if (isObject(part) && part.type === "text" && typeof part.text === "string") return part.text;
      const type = isObject(part) && typeof part.type === "string" ? part.type : "?";
      throw untranslatable(`${p}.content[${j}].${type}`, `A '${type}' content part (only text is translated)`);
    });
  }
  throw new TranslationError(`${p}.content`, "A message without text content cannot be translated.");
}

function contentOf(t: Text): string | { type: "text"; text: string }[] {
  return typeof t === "string" ? t : t.map((text) => ({ type: "text", text }));
}

/** Writes an OpenAI `/v1/chat/completions` body. @throws TranslationError for top_k, which OpenAI lacks. */
export function coreToOpenaiChat(core: ChatCore): JsonObject {
  if (core.topK !== undefined) throw new TranslationError(core.src.topK ?? "top_k", "OpenAI chat completions have no top_k.");
  const body: JsonObject = {};
  if (core.model !== undefined) body.model = core.model;
  body.messages = [
    ...core.system.map((t) => ({ role: "system", content: contentOf(t) })),
    ...core.turns.map((t) => ({ role: t.role, content: contentOf(t.text) })),
  ];
  // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server (vLLM, Ollama, llama.cpp, xAI)
  // reads it; OpenAI's reasoning models want the newer name and answer 400, which the item then reports.
  if (core.maxTokens !== undefined) body.max_tokens = core.maxTokens;
  if (core.temperature !== undefined) body.temperature = core.temperature;
  if (core.topP !== undefined) body.top_p = core.topP;
  if (core.stop !== undefined) body.stop = core.stop;
  if (core.json) body.response_format = { type: "json_object" };
  if (core.n !== undefined) body.n = core.n;
  if (core.seed !== undefined) body.seed = core.seed;
  if (core.presencePenalty !== undefined) body.presence_penalty = core.presencePenalty;
  if (core.frequencyPenalty !== undefined) body.frequency_penalty = core.frequencyPenalty;
  if (core.user !== undefined) body.user = core.user;
  return body;
}

// ---------------------------------------------------------------------------------------------------------------
// Responses: OpenAI chat.completion ↔ core

/** Reads an OpenAI `chat.completion` answer. */
export function openaiCompletionToCore(body: JsonObject): ResponseCore {
  if (!Array.isArray(body.choices)) throw new TranslationError("response.choices", "The upstream answer has no choices.");
  const choices = body.choices.map((c: unknown, i): ResponseCore["choices"][number] => {
    const p = `response.choices[${i}]`;
    if (!isObject(c)) throw new TranslationError(p, "Expected a choice object.");
    const msg = isObject(c.message) ? c.message : {};
    if (Array.isArray(msg.tool_calls) && msg.tool_calls.length > 0) throw untranslatable(`${p}.message.tool_calls`, "A tool call");
    let text = typeof msg.content === "string" ? msg.content : null;
    let finish = finishFromOpenai(c.finish_reason);
    if (text === null && typeof msg.refusal === "string") {
      text = msg.refusal;
      finish = "content_filter";
    }
    return { index: typeof c.index === "number" ? c.index : i, text, finish };
  });
  const out: ResponseCore = { choices };
  if (typeof body.id === "string") out.id = body.id;
  if (typeof body.model === "string") out.model = body.model;
  if (typeof body.created === "number") out.created = body.created;
  if (isObject(body.usage)) {
    const u = body.usage;
    const pd = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
    const cd = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
    const input = count(u.prompt_tokens);
    const output = count(u.completion_tokens);
    out.usage = usage(input, output, count(pd.cached_tokens), count(cd.reasoning_tokens), typeof u.total_tokens === "number" ? u.total_tokens : undefined);
  }
  return out;
}

function finishFromOpenai(v: unknown): FinishReason {
  if (v === "length") return "length";
  if (v === "content_filter") return "content_filter";
  if (v === "tool_calls" || v === "function_call") return "tool_calls";
  return "stop";
}

/** Writes an OpenAI `chat.completion` answer. */
export function coreToOpenaiCompletion(r: ResponseCore): JsonObject {
  const body: JsonObject = {
    id: r.id ?? randomId("chatcmpl-"),
    object: "chat.completion",
    created: r.created ?? nowSeconds(),
    model: r.model ?? "",
    choices: r.choices.map((c) => ({
      index: c.index,
      message: { role: "assistant", content: c.text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: c.finish,
    })),
  };
  if (r.usage) {
    body.usage = {
      prompt_tokens: r.usage.input,
      completion_tokens: r.usage.output,
      total_tokens: r.usage.total,
      prompt_tokens_details: { cached_tokens: r.usage.cached },
      completion_tokens_details: { reasoning_tokens: r.usage.reasoning },
    };
  }
  return body;
}
