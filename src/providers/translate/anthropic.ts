import { absent, addSystem, count, isEmpty, isObject, mergeTurns, num, partsOf, randomId, stopList, str, usage, type ChatCore, type FinishReason, type JsonObject, type ResponseCore, type Text } from "./core.js";
import { TranslationError } from "./errors.js";
import { untranslatable } from "./openai.js";

/**
 * `max_tokens` is REQUIRED by Anthropic's Messages API; OpenAI and Gemini requests may leave it out (the model then
 * stops at its own limit). A request translated without one gets this many output tokens at most.
 */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

// ---------------------------------------------------------------------------------------------------------------
// Requests: Anthropic Messages params ↔ core

/** Reads Anthropic Messages params (`/v1/messages`). @throws TranslationError naming the first field the core cannot carry. */
export function anthropicToCore(body: JsonObject): ChatCore {
  const core: ChatCore = { system: [], turns: [], src: {} };
  const hasTools = !absent(body.tools) && !isEmpty(body.tools);
  for (const [key, v] of Object.entries(body)) {
    if (absent(v)) continue;
    switch (key) {
      case "model":
        core.model = str(v, key);
        break;
      case "max_tokens":
        core.maxTokens = num(v, key);
        core.src.maxTokens = key;
        break;
      case "system":
        addSystem(core, typeof v === "string" ? v : readBlocks(v, key));
        break;
      case "messages":
        if (!Array.isArray(v)) throw new TranslationError(key, "Expected a list of messages.");
        v.forEach((m: unknown, i) => {
          const p = `messages[${i}]`;
          if (!isObject(m)) throw new TranslationError(p, "Expected a message object.");
          for (const k of Object.keys(m)) if (k !== "role" && k !== "content" && !absent(m[k])) throw untranslatable(`${p}.${k}`, `'${k}' on a message`);
          if (m.role !== "user" && m.role !== "assistant") throw new TranslationError(`${p}.role`, `Unknown role ${JSON.stringify(m.role)}.`);
          core.turns.push({ role: m.role, text: typeof m.content === "string" ? m.content : readBlocks(m.content, `${p}.content`) });
        });
        break;
      case "temperature":
        core.temperature = num(v, key);
        core.src.temperature = key;
        break;
      case "top_p":
        core.topP = num(v, key);
        core.src.topP = key;
        break;
      case "top_k":
        core.topK = num(v, key);
        core.src.topK = key;
        break;
      case "stop_sequences":
        core.stop = stopList(v, key);
        core.src.stop = key;
        break;
      case "metadata":
        if (!isObject(v)) throw new TranslationError(key, "Expected an object.");
        for (const [k, val] of Object.entries(v)) {
          if (absent(val)) continue;
          if (k !== "user_id") throw untranslatable(`metadata.${k}`, `'metadata.${k}'`);
          core.user = str(val, "metadata.user_id");
          core.src.user = "metadata.user_id";
        }
        break;
      case "stream":
        if (v === false) break;
        throw untranslatable(key, "'stream'");
      case "tools":
        if (isEmpty(v)) break;
        throw untranslatable(key, "Tool use");
      case "tool_choice":
        if (!hasTools) break;
        throw untranslatable(key, "Tool use");
      case "thinking":
        if (isObject(v) && v.type === "disabled") break;
        throw untranslatable(key, "Extended thinking");
      case "service_tier":
        if (v === "auto") break;
        throw untranslatable(key, `service_tier ${JSON.stringify(v)}`);
      default:
        throw untranslatable(key, `'${key}'`);
    }
  }
  return core;
}

/** Text of a list of content blocks; `cache_control` (a caching hint) is dropped, any other block type throws. */
function readBlocks(v: unknown, p: string): string[] {
  if (!Array.isArray(v)) throw new TranslationError(p, "Expected a string or a list of content blocks.");
  return v.map((b: unknown, j) => {
    const bp = `${p}[${j}]`;
    if (!isObject(b)) throw new TranslationError(bp, "Expected a content block.");
    if (b.type !== "text" || typeof b.text !== "string") throw untranslatable(bp, `A '${String(b.type)}' block (only text is translated)`);
    for (const [k, val] of Object.entries(b)) {
      if (k === "type" || k === "text" || k === "cache_control" || absent(val) || isEmpty(val)) continue;
      throw untranslatable(`${bp}.${k}`, `'${k}' on a text block`);
    }
    return b.text;
  });
}

function blocksOf(t: Text): string | { type: "text"; text: string }[] {
  return typeof t === "string" ? t : t.map((text) => ({ type: "text", text }));
}

/** Writes Anthropic Messages params. @throws TranslationError for what Anthropic cannot express (JSON mode, n > 1, seed, penalties). */
export function coreToAnthropic(core: ChatCore): JsonObject {
  if (core.json) throw new TranslationError(core.src.json ?? "response_format", "Anthropic's Messages API has no JSON mode.");
  if (core.n !== undefined && core.n !== 1) throw new TranslationError(core.src.n ?? "n", "Anthropic returns one answer per request; n > 1 cannot be translated.");
  if (core.seed !== undefined) throw new TranslationError(core.src.seed ?? "seed", "Anthropic's Messages API has no seed.");
  if (core.presencePenalty !== undefined) throw new TranslationError(core.src.presencePenalty ?? "presence_penalty", "Anthropic's Messages API has no presence penalty.");
  if (core.frequencyPenalty !== undefined) throw new TranslationError(core.src.frequencyPenalty ?? "frequency_penalty", "Anthropic's Messages API has no frequency penalty.");
  const body: JsonObject = {};
  if (core.model !== undefined) body.model = core.model;
  body.max_tokens = core.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS;
  if (core.system.length === 1 && typeof core.system[0] === "string") body.system = core.system[0];
  else if (core.system.length > 0) body.system = core.system.flatMap(partsOf).map((text) => ({ type: "text", text }));
  body.messages = mergeTurns(core.turns).map((t) => ({ role: t.role, content: blocksOf(t.text) }));
  if (core.temperature !== undefined) body.temperature = core.temperature;
  if (core.topP !== undefined) body.top_p = core.topP;
  if (core.topK !== undefined) body.top_k = core.topK;
  if (core.stop !== undefined) body.stop_sequences = core.stop;
  if (core.user !== undefined) body.metadata = { user_id: core.user };
  return body;
}

// ---------------------------------------------------------------------------------------------------------------
// Responses: Anthropic message ↔ core

/** Reads an Anthropic `message` answer (text blocks joined; thinking blocks are not the answer and are left out). */
export function anthropicMessageToCore(body: JsonObject): ResponseCore {
  const blocks = Array.isArray(body.content) ? body.content : [];
  let text = "";
  blocks.forEach((b: unknown, j) => {
    if (!isObject(b)) return;
    if (b.type === "text" && typeof b.text === "string") text += b.text;
    else if (b.type !== "thinking" && b.type !== "redacted_thinking") throw untranslatable(`response.content[${j}]`, `A '${String(b.type)}' block in the answer`);
  });
  const out: ResponseCore = { choices: [{ index: 0, text, finish: finishFromAnthropic(body.stop_reason) }] };
  if (typeof body.id === "string") out.id = body.id;
  if (typeof body.model === "string") out.model = body.model;
  if (isObject(body.usage)) {
    const u = body.usage;
    // Anthropic's input_tokens leaves out cached and cache-written tokens; OpenAI's prompt_tokens counts them.
    const cached = count(u.cache_read_input_tokens);
    const input = count(u.input_tokens) + count(u.cache_creation_input_tokens) + cached;
    out.usage = usage(input, count(u.output_tokens), cached);
  }
  return out;
}

function finishFromAnthropic(v: unknown): FinishReason {
  if (v === "max_tokens" || v === "model_context_window_exceeded") return "length";
  if (v === "refusal") return "content_filter";
  if (v === "tool_use") return "tool_calls";
  return "stop"; // end_turn, stop_sequence, pause_turn
}

const TO_ANTHROPIC_FINISH: Record<FinishReason, string> = { stop: "end_turn", length: "max_tokens", content_filter: "refusal", tool_calls: "tool_use" };

/**
 * Writes an Anthropic `message` answer from the first choice, with every field the current Messages API `Message`
 * declares (@anthropic-ai/sdk 1.x: `Message`, `Usage`, `TextBlock`), `null` where the upstream told us nothing:
 * `container`, `diagnostics`, `stop_details`, `stop_sequence` (OpenAI and Gemini do not say which stop sequence
 * matched), text blocks' `citations`, and in `usage` `cache_creation`, `inference_geo`, `server_tool_use`,
 * `service_tier`, `speed`. `cache_creation_input_tokens` is 0 (these upstreams bill no cache writes);
 * `output_tokens_details.thinking_tokens` carries the upstream's reasoning tokens when it reported any.
 * `usage` is required, so an answer without usage gets zero input and output tokens.
 * The id is the upstream's when it is already an Anthropic `msg_…` id; any other (`chatcmpl-…`, a Gemini
 * `responseId`) is replaced by a fresh `msg_…`, because Anthropic clients expect that form and such ids are not
 * unique across upstreams (Ollama, vLLM). The answer is translated once, when it is recorded, so the id is stable.
 */
export function coreToAnthropicMessage(r: ResponseCore): JsonObject {
  const c = r.choices[0];
  const u = r.usage;
  return {
    id: r.id !== undefined && /^msg_[A-Za-z0-9_]+$/.test(r.id) ? r.id : randomId("msg_"),
    type: "message",
    role: "assistant",
    model: r.model ?? "",
    content: c && c.text !== null ? [{ type: "text", text: c.text, citations: null }] : [],
    stop_reason: TO_ANTHROPIC_FINISH[c?.finish ?? "stop"],
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: {
      // Anthropic's input_tokens leaves out tokens read from the cache (OpenAI's prompt_tokens counts them).
      input_tokens: u ? Math.max(0, u.input - u.cached) : 0,
      output_tokens: u?.output ?? 0,
      cache_creation_input_tokens: u ? 0 : null,
      cache_read_input_tokens: u ? u.cached : null,
      cache_creation: null,
      inference_geo: null,
      output_tokens_details: u && u.reasoning > 0 ? { thinking_tokens: u.reasoning } : null,
      server_tool_use: null,
      service_tier: null,
      speed: null,
    },
  };
}
