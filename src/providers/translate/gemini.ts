import { absent, addSystem, camel, count, isEmpty, isObject, mergeTurns, num, partsOf, stopList, str, usage, type ChatCore, type FinishReason, type JsonObject, type ResponseCore, type Text } from "./core.js";
import { TranslationError } from "./errors.js";
import { untranslatable } from "./openai.js";

/**
 * Gemini's REST API reads both camelCase and snake_case field names (its docs' curl examples use `system_instruction`),
 * so readers match keys by their camelCase form and name the field as the request spelled it.
 * @returns [camelCase key, key as written, value] for each present (non-null) field.
 */
function fields(o: JsonObject): [string, string, unknown][] {
  return Object.entries(o)
    .filter(([, v]) => !absent(v))
    .map(([k, v]) => [camel(k), k, v]);
}

/** A model name without Gemini's "models/" resource prefix. */
export function bareModel(model: string): string {
  return model.replace(/^models\//, "");
}

// ---------------------------------------------------------------------------------------------------------------
// Requests: Gemini GenerateContentRequest ↔ core

/** Reads a Gemini `generateContent` body. @throws TranslationError naming the first field the core cannot carry. */
export function geminiToCore(body: JsonObject): ChatCore {
  const core: ChatCore = { system: [], turns: [], src: {} };
  const hasTools = fields(body).some(([k, , v]) => k === "tools" && !isEmpty(v));
  for (const [key, as, v] of fields(body)) {
    switch (key) {
      case "model":
        core.model = bareModel(str(v, as));
        break;
      case "contents":
        if (!Array.isArray(v)) throw new TranslationError(as, "Expected a list of contents.");
        v.forEach((c: unknown, i) => {
          const p = `${as}[${i}]`;
          if (!isObject(c)) throw new TranslationError(p, "Expected a content object.");
          let role: "user" | "assistant" = "user"; // a single-turn request may leave the role out
          let text: Text = [];
          for (const [k, kas, val] of fields(c)) {
            if (k === "role") {
              if (val === "model") role = "assistant";
              else if (val !== "user") throw untranslatable(`${p}.${kas}`, `Role ${JSON.stringify(val)}`);
            } else if (k === "parts") text = readParts(val, `${p}.${kas}`);
            else throw untranslatable(`${p}.${kas}`, `'${kas}' on a content`);
          }
          core.turns.push({ role, text });
        });
        break;
      case "systemInstruction":
        if (typeof v === "string") addSystem(core, v);
        else if (isObject(v)) {
          for (const [k, kas, val] of fields(v)) {
            if (k === "parts") addSystem(core, readParts(val, `${as}.${kas}`));
            else if (k !== "role") throw untranslatable(`${as}.${kas}`, `'${kas}' on the system instruction`);
          }
        } else throw new TranslationError(as, "Expected a content object.");
        break;
      case "generationConfig":
        if (!isObject(v)) throw new TranslationError(as, "Expected an object.");
        readGenerationConfig(v, as, core);
        break;
      case "safetySettings":
        if (isEmpty(v)) break;
        throw untranslatable(as, "Safety settings");
      case "tools":
        if (isEmpty(v)) break;
        throw untranslatable(as, "Tool use");
      case "toolConfig":
        if (!hasTools) break;
        throw untranslatable(as, "Tool use");
      default:
        throw untranslatable(as, `'${as}'`);
    }
  }
  return core;
}

/** Text parts of a content: one part → a string, more → a list. @throws for any part that is not plain text. */
function readParts(v: unknown, p: string): Text {
  if (!Array.isArray(v)) throw new TranslationError(p, "Expected a list of parts.");
  const texts = v.map((part: unknown, j) => {
    const pp = `${p}[${j}]`;
    if (!isObject(part)) throw new TranslationError(pp, "Expected a part object.");
    let text: string | undefined;
    for (const [k, kas, val] of fields(part)) {
      if (k === "text" && typeof val === "string") text = val;
      else if (k === "thought" && val === false) continue;
      else throw untranslatable(`${pp}.${kas}`, `A '${kas}' part (only text is translated)`);
    }
    if (text === undefined) throw new TranslationError(pp, "A part without text cannot be translated.");
    return text;
  });
  return texts.length === 1 ? texts[0]! : texts;
}

function readGenerationConfig(gc: JsonObject, path: string, core: ChatCore): void {
  for (const [key, as, v] of fields(gc)) {
    const p = `${path}.${as}`;
    switch (key) {
      case "maxOutputTokens":
        core.maxTokens = num(v, p);
        core.src.maxTokens = p;
        break;
      case "temperature":
        core.temperature = num(v, p);
        core.src.temperature = p;
        break;
      case "topP":
        core.topP = num(v, p);
        core.src.topP = p;
        break;
      case "topK":
        core.topK = num(v, p);
        core.src.topK = p;
        break;
      case "stopSequences":
        core.stop = stopList(v, p);
        core.src.stop = p;
        break;
      case "candidateCount":
        core.n = num(v, p);
        core.src.n = p;
        break;
      case "seed":
        core.seed = num(v, p);
        core.src.seed = p;
        break;
      case "presencePenalty":
      case "frequencyPenalty":
        if (v === 0) break;
        core[key] = num(v, p);
        core.src[key] = p;
        break;
      case "responseMimeType":
        if (v === "text/plain") break;
        if (v === "application/json") {
          core.json = true;
          core.src.json = p;
          break;
        }
        throw untranslatable(p, `responseMimeType ${JSON.stringify(v)}`);
      case "responseLogprobs":
        if (v === false) break;
        throw untranslatable(p, "Log probabilities");
      case "responseModalities":
        if (Array.isArray(v) && v.every((m) => m === "TEXT")) break;
        throw untranslatable(p, "Non-text response modalities");
      default:
        throw untranslatable(p, `'${as}'`);
    }
  }
}

/** Writes a Gemini `generateContent` body (no `model`: it travels in the URL). */
export function coreToGemini(core: ChatCore): JsonObject {
  const body: JsonObject = {};
  if (core.system.length > 0) body.systemInstruction = { parts: core.system.flatMap(partsOf).map((text) => ({ text })) };
  body.contents = mergeTurns(core.turns).map((t) => ({ role: t.role === "assistant" ? "model" : "user", parts: partsOf(t.text).map((text) => ({ text })) }));
  const gc: JsonObject = {};
  if (core.maxTokens !== undefined) gc.maxOutputTokens = core.maxTokens;
  if (core.temperature !== undefined) gc.temperature = core.temperature;
  if (core.topP !== undefined) gc.topP = core.topP;
  if (core.topK !== undefined) gc.topK = core.topK;
  if (core.stop !== undefined) gc.stopSequences = core.stop;
  if (core.n !== undefined) gc.candidateCount = core.n;
  if (core.seed !== undefined) gc.seed = core.seed;
  if (core.presencePenalty !== undefined) gc.presencePenalty = core.presencePenalty;
  if (core.frequencyPenalty !== undefined) gc.frequencyPenalty = core.frequencyPenalty;
  if (core.json) gc.responseMimeType = "application/json";
  if (Object.keys(gc).length > 0) body.generationConfig = gc;
  // `user` is dropped: Gemini has no end-user field, and it changes no output.
  return body;
}

// ---------------------------------------------------------------------------------------------------------------
// Responses: Gemini GenerateContentResponse ↔ core

/** Reads a Gemini `GenerateContentResponse` (thought parts are not the answer and are left out). */
export function geminiResponseToCore(body: JsonObject): ResponseCore {
  const candidates = Array.isArray(body.candidates) ? body.candidates : [];
  const choices: ResponseCore["choices"] = candidates.map((c: unknown, i) => {
    const p = `response.candidates[${i}]`;
    const cand = isObject(c) ? c : {};
    const parts = isObject(cand.content) && Array.isArray(cand.content.parts) ? cand.content.parts : null;
    let text: string | null = null;
    parts?.forEach((part: unknown, j) => {
      if (!isObject(part) || part.thought === true) return;
      if (typeof part.text !== "string") throw untranslatable(`${p}.content.parts[${j}]`, "A non-text part in the answer");
      text = (text ?? "") + part.text;
    });
    return { index: typeof cand.index === "number" ? cand.index : i, text, finish: finishFromGemini(cand.finishReason) };
  });
  // No candidate at all: the prompt itself was blocked (promptFeedback.blockReason).
  if (choices.length === 0) choices.push({ index: 0, text: null, finish: isObject(body.promptFeedback) && body.promptFeedback.blockReason ? "content_filter" : "stop" });
  const out: ResponseCore = { choices };
  if (typeof body.responseId === "string") out.id = body.responseId;
  if (typeof body.modelVersion === "string") out.model = body.modelVersion;
  if (isObject(body.usageMetadata)) {
    const u = body.usageMetadata;
    const thoughts = count(u.thoughtsTokenCount);
    const input = count(u.promptTokenCount) + count(u.toolUsePromptTokenCount);
    const output = count(u.candidatesTokenCount) + thoughts; // OpenAI's completion_tokens count reasoning tokens
    out.usage = usage(input, output, count(u.cachedContentTokenCount), thoughts, typeof u.totalTokenCount === "number" ? u.totalTokenCount : undefined);
  }
  return out;
}

function finishFromGemini(v: unknown): FinishReason {
  if (v === "MAX_TOKENS") return "length";
  if (typeof v === "string" && ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"].includes(v)) return "content_filter";
  return "stop"; // STOP, OTHER, FINISH_REASON_UNSPECIFIED, absent
}

const TO_GEMINI_FINISH: Record<FinishReason, string> = { stop: "STOP", length: "MAX_TOKENS", content_filter: "SAFETY", tool_calls: "STOP" };

/** Writes a Gemini `GenerateContentResponse`, one candidate per choice. */
export function coreToGeminiResponse(r: ResponseCore): JsonObject {
  const body: JsonObject = {
    candidates: r.choices.map((c) => ({
      content: { role: "model", parts: c.text === null ? [] : [{ text: c.text }] },
      finishReason: TO_GEMINI_FINISH[c.finish],
      index: c.index,
    })),
  };
  if (r.usage) {
    const u: JsonObject = { promptTokenCount: r.usage.input, candidatesTokenCount: r.usage.output - r.usage.reasoning, totalTokenCount: r.usage.total };
    if (r.usage.cached > 0) u.cachedContentTokenCount = r.usage.cached;
    if (r.usage.reasoning > 0) u.thoughtsTokenCount = r.usage.reasoning;
    body.usageMetadata = u;
  }
  if (r.model !== undefined) body.modelVersion = r.model;
  if (r.id !== undefined) body.responseId = r.id;
  return body;
}

// ---------------------------------------------------------------------------------------------------------------
// Embeddings: Gemini embedContent ↔ OpenAI /v1/embeddings (one text per request)

/** Gemini `embedContent` body → OpenAI `/v1/embeddings` body. */
export function geminiEmbedToOpenai(body: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, as, v] of fields(body)) {
    switch (key) {
      case "model":
        out.model = bareModel(str(v, as));
        break;
      case "content": {
        if (!isObject(v)) throw new TranslationError(as, "Expected a content object.");
        const parts = fields(v).find(([k]) => k === "parts");
        if (!parts) throw new TranslationError(`${as}.parts`, "A content without parts cannot be translated.");
        // Gemini embeds all text parts of the content as one text.
        out.input = partsOf(readParts(parts[2], `${as}.${parts[1]}`)).join("\n");
        break;
      }
      case "outputDimensionality":
        out.dimensions = num(v, as);
        break;
      default: // taskType and title shape Gemini's vectors; OpenAI embeddings have no equivalent
        throw untranslatable(as, `'${as}'`);
    }
  }
  return out;
}

/** OpenAI `/v1/embeddings` body (one input) → Gemini `embedContent` body (no `model`: it travels in the URL). */
export function openaiEmbedToGemini(body: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(body)) {
    if (absent(v)) continue;
    switch (key) {
      case "model":
      case "user":
        break;
      case "input": {
        const list = Array.isArray(v) ? v : [v];
        if (list.length !== 1) throw new TranslationError(key, `Gemini's embedContent embeds one text per request; a list of ${list.length} inputs cannot be translated.`);
        if (typeof list[0] !== "string") throw untranslatable(Array.isArray(v) ? "input[0]" : key, "Token-id input");
        out.content = { parts: [{ text: list[0] }] };
        break;
      }
      case "dimensions":
        out.outputDimensionality = num(v, key);
        break;
      case "encoding_format":
        if (v === "float") break;
        throw untranslatable(key, `encoding_format ${JSON.stringify(v)}`);
      default:
        throw untranslatable(key, `'${key}'`);
    }
  }
  return out;
}

/** OpenAI embeddings answer → Gemini `{embedding:{values}}`. */
export function openaiEmbeddingsToGemini(body: JsonObject): JsonObject {
  const first = Array.isArray(body.data) && isObject(body.data[0]) ? body.data[0] : null;
  if (!first) throw new TranslationError("response.data", "The upstream answer holds no embedding.");
  let values: unknown = first.embedding;
  if (typeof values === "string") {
    const bytes = new Uint8Array(Buffer.from(values, "base64")); // a copy, aligned for Float32Array
    values = Array.from(new Float32Array(bytes.buffer, 0, bytes.byteLength >> 2));
  }
  if (!Array.isArray(values)) throw new TranslationError("response.data[0].embedding", "The upstream answer holds no embedding.");
  return { embedding: { values } };
}

/** Gemini `{embedding:{values}}` → OpenAI embeddings answer (Gemini reports no token usage for it). */
export function geminiEmbeddingToOpenai(body: JsonObject): JsonObject {
  const values = isObject(body.embedding) ? body.embedding.values : undefined;
  if (!Array.isArray(values)) throw new TranslationError("response.embedding", "The upstream answer holds no embedding.");
  return { object: "list", data: [{ object: "embedding", index: 0, embedding: values }], model: "", usage: { prompt_tokens: 0, total_tokens: 0 } };
}
