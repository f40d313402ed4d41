import { formatOf, type Endpoint, type WireFormat } from "../../core/wire-format.js";
import { anthropicMessageToCore, anthropicToCore, coreToAnthropic, coreToAnthropicMessage } from "./anthropic.js";
import { isObject, type ChatCore, type JsonObject, type ResponseCore } from "./core.js";
import { TranslationError } from "./errors.js";
import {
  coreToGemini,
  coreToGeminiResponse,
  geminiEmbeddingToOpenai,
  geminiEmbedToOpenai,
  geminiResponseToCore,
  geminiToCore,
  openaiEmbeddingsToGemini,
  openaiEmbedToGemini,
} from "./gemini.js";
import { coreToOpenaiChat, coreToOpenaiCompletion, openaiChatToCore, openaiCompletionToCore } from "./openai.js";

export { TranslationError } from "./errors.js";

/**
 * Translation between the request formats, through one pivot: OpenAI chat. Every chat request is read into the core
 * (./core.ts: system prompt, text turns, max tokens, temperature, top_p, top_k, stop, JSON mode, n, seed, penalties —
 * in OpenAI chat terms) and written in the target format; answers likewise, through an OpenAI chat.completion-shaped
 * core. Anything else a request carries (tools, images, logprobs, …) fails the item with a TranslationError naming the
 * field. Embeddings translate between Gemini embedContent and OpenAI /v1/embeddings (one text per request).
 */

type Kind = "chat" | "embed";

const ENDPOINTS: Record<WireFormat, Record<Kind, Endpoint | null>> = {
  openai: { chat: "/v1/chat/completions", embed: "/v1/embeddings" },
  anthropic: { chat: "/v1/messages", embed: null },
  gemini: { chat: "gemini:generateContent", embed: "gemini:embedContent" },
};

function kindOf(endpoint: Endpoint): Kind | null {
  if (endpoint === "/v1/chat/completions" || endpoint === "/v1/messages" || endpoint === "gemini:generateContent") return "chat";
  if (endpoint === "/v1/embeddings" || endpoint === "gemini:embedContent") return "embed";
  return null;
}

const FORMAT_NAMES: Record<WireFormat, string> = { openai: "OpenAI", anthropic: "Anthropic", gemini: "Gemini" };

/**
 * Translates a request item from its endpoint's format to `to`, the format of the provider that will serve it.
 * Identity when the formats match. @returns the endpoint and body (JSON text) in the target format.
 * @throws TranslationError naming a field that cannot be translated.
 */
export function translateRequest(endpoint: Endpoint, body: string, to: WireFormat): { endpoint: Endpoint; body: string } {
  const from = formatOf(endpoint);
  if (from === to) return { endpoint, body };
  const kind = kindOf(endpoint);
  const target = kind ? ENDPOINTS[to][kind] : null;
  if (!kind || !target) {
    throw new TranslationError("endpoint", `${endpoint} has no equivalent in the ${FORMAT_NAMES[to]} format (chat and embeddings are translated).`);
  }
  const source = parseRequest(body);
  let out: JsonObject;
  if (kind === "chat") {
    const core: ChatCore = from === "openai" ? openaiChatToCore(source) : from === "anthropic" ? anthropicToCore(source) : geminiToCore(source);
    out = to === "openai" ? coreToOpenaiChat(core) : to === "anthropic" ? coreToAnthropic(core) : coreToGemini(core);
  } else {
    // The embed pair is OpenAI ↔ Gemini (Anthropic has no embeddings API).
    out = from === "gemini" ? geminiEmbedToOpenai(source) : openaiEmbedToGemini(source);
  }
  return { endpoint: target, body: JSON.stringify(out) };
}

/**
 * Translates a successful upstream answer (to `sent`, in the provider's format) back into the format of the item's
 * own endpoint. Identity when the formats match; a body that is not a JSON object is passed through for the caller to
 * judge. @returns the body as JSON text.
 */
export function translateResponse(own: Endpoint, sent: Endpoint, body: string): string {
  const from = formatOf(sent);
  const to = formatOf(own);
  if (from === to) return body;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body;
  }
  if (!isObject(parsed)) return body;
  const kind = kindOf(sent);
  if (kind === "embed") {
    return JSON.stringify(from === "openai" ? openaiEmbeddingsToGemini(parsed) : geminiEmbeddingToOpenai(parsed));
  }
  if (kind !== "chat") throw new TranslationError("response", `Answers from ${sent} cannot be rendered as ${own}.`);
  const core: ResponseCore = from === "openai" ? openaiCompletionToCore(parsed) : from === "anthropic" ? anthropicMessageToCore(parsed) : geminiResponseToCore(parsed);
  const out = to === "openai" ? coreToOpenaiCompletion(core) : to === "anthropic" ? coreToAnthropicMessage(core) : coreToGeminiResponse(core);
  return JSON.stringify(out);
}

function parseRequest(body: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new TranslationError("body", "The request body is not valid JSON.");
  }
  if (!isObject(v)) throw new TranslationError("body", "The request body is not a JSON object.");
  return v;
}
