import type { ChatHistoryItem } from "node-llama-cpp";

/** Output tokens per choice when a request names no `max_tokens` / `max_completion_tokens`. */
export const DEFAULT_MAX_TOKENS = 256;
/** Most choices (`n`, times the prompts of a completions request) one request may ask for. */
export const MAX_CHOICES = 16;
/** Most inputs in one embeddings request (OpenAI's limit). */
const MAX_INPUTS = 2048;

/** A request the local model cannot serve as written: answered 400 naming `param` (OpenAI's error shape). */
export class BadRequest extends Error {
  constructor(
    message: string,
    readonly param: string | null,
  ) {
    super(message);
  }
}

/** One choice's generation settings, already validated. */
export interface GenerationOptions {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Sampler seed (uint32), or undefined for a time-based one. */
  seed: number | undefined;
  /** Stop strings: the text ends before the first one, which is not part of it. */
  stop: string[];
  frequencyPenalty: number;
  presencePenalty: number;
}

/** How a request wants its answer delivered: whole (`stream` absent or false) or as server-sent events. */
export interface StreamOptions {
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with `usage` and `choices: []`, and `usage: null` on the others. */
  includeUsage: boolean;
  /** `stream_options.include_obfuscation` (OpenAI's default: true): random padding in an `obfuscation` field. */
  includeObfuscation: boolean;
}

const CHAT_ONLY_UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  tools: (v) => Array.isArray(v) && v.length > 0,
  functions: (v) => Array.isArray(v) && v.length > 0,
  logprobs: (v) => v === true,
  top_logprobs: (v) => v !== undefined && v !== null && v !== 0,
  response_format: (v) => typeof v === "object" && v !== null && (v as { type?: unknown }).type !== "text",
  audio: (v) => v !== undefined && v !== null,
  modalities: (v) => Array.isArray(v) && v.some((m) => m !== "text"),
  prediction: (v) => v !== undefined && v !== null,
};
const COMPLETIONS_ONLY_UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  suffix: (v) => v !== undefined && v !== null && v !== "",
  logprobs: (v) => v !== undefined && v !== null && v !== 0,
  best_of: (v) => v !== undefined && v !== null && v !== 1,
};
const COMMON_UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  logit_bias: (v) => typeof v === "object" && v !== null && Object.keys(v).length > 0,
};

/** @throws BadRequest naming the first field set to something the local model cannot do (tools, logprobs, …). */
export function rejectUnsupported(body: Record<string, unknown>, kind: "chat" | "completions"): void {
  const checks = { ...COMMON_UNSUPPORTED, ...(kind === "chat" ? CHAT_ONLY_UNSUPPORTED : COMPLETIONS_ONLY_UNSUPPORTED) };
  for (const [field, unsupported] of Object.entries(checks)) {
    if (unsupported(body[field])) throw new BadRequest(`'${field}' is not supported by the local model provider.`, field);
  }
}

/**
 * Reads `stream` and `stream_options` as OpenAI does: `stream_options` only with `stream: true`.
 * @param streaming whether the caller can stream the answer (the synchronous endpoints can, a batch item cannot).
 * @throws BadRequest naming `stream` or `stream_options`.
 */
export function readStreamOptions(body: Record<string, unknown>, streaming: boolean): StreamOptions {
  const stream = readBoolean(body.stream, "stream") ?? false;
  if (stream && !streaming) {
    throw new BadRequest("'stream': true is only served on the synchronous endpoints (POST /v1/chat/completions, /v1/completions); a batch item is answered whole.", "stream");
  }
  const o = body.stream_options;
  if (o === undefined || o === null) return { stream, includeUsage: false, includeObfuscation: true };
  if (!stream) throw new BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
  if (typeof o !== "object" || Array.isArray(o)) throw new BadRequest("'stream_options' must be an object.", "stream_options");
  const { include_usage, include_obfuscation, ...rest } = o as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new BadRequest(`'stream_options.${unknown}' is not a known stream option (include_usage, include_obfuscation).`, `stream_options.${unknown}`);
  return {
    stream,
    includeUsage: readBoolean(include_usage, "stream_options.include_usage") ?? false,
    includeObfuscation: readBoolean(include_obfuscation, "stream_options.include_obfuscation") ?? true,
  };
}

/** Chat `messages` (system/developer/user/assistant, text content) as node-llama-cpp chat history. @throws BadRequest */
export function readMessages(value: unknown): ChatHistoryItem[] {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest("'messages' must be a non-empty array of messages.", "messages");
  const history: ChatHistoryItem[] = [];
  value.forEach((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== "object" || m === null) throw new BadRequest(`'${where}' must be an object with 'role' and 'content'.`, where);
    const { role, content } = m as { role?: unknown; content?: unknown };
    const text = readContent(content, `${where}.content`, role === "assistant");
    switch (role) {
      case "system":
      case "developer":
        history.push({ type: "system", text });
        break;
      case "user":
        history.push({ type: "user", text });
        break;
      case "assistant":
        history.push({ type: "model", response: [text] });
        break;
      default:
        throw new BadRequest(`'${where}.role' must be "system", "developer", "user" or "assistant" (got ${JSON.stringify(role)}); the local model provider has no tools.`, `${where}.role`);
    }
  });
  return history;
}

function readContent(content: unknown, where: string, nullable: boolean): string {
  if (typeof content === "string") return content;
  if ((content === null || content === undefined) && nullable) return "";
  if (Array.isArray(content)) {
    return content
      .map((part, k) => {
        const p = part as { type?: unknown; text?: unknown } | null;
        if (p && p.type === "text" && typeof p.text === "string") return p.text;
        throw new BadRequest(`'${where}[${k}]' must be a text part ({"type":"text","text":…}); the local model reads text only.`, `${where}[${k}]`);
      })
      .join("\n");
  }
  throw new BadRequest(`'${where}' must be a string or an array of text parts.`, where);
}

/** A completions `prompt`: text or token ids, one or many. @throws BadRequest */
export function readPrompts(value: unknown): (string | number[])[] {
  const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  if (typeof value === "string") return [value];
  if (isTokens(value)) return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string" || isTokens(v))) return value as (string | number[])[];
  throw new BadRequest("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.", "prompt");
}

/** An embeddings `input`: 1 to 2048 texts or token-id arrays, no empty string. @throws BadRequest */
export function readEmbeddingInputs(value: unknown): (string | number[])[] {
  const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  let inputs: (string | number[])[] | null = null;
  if (typeof value === "string") inputs = [value];
  else if (isTokens(value)) inputs = [value];
  else if (Array.isArray(value) && value.every((v) => typeof v === "string" || isTokens(v))) inputs = value as (string | number[])[];
  if (!inputs) throw new BadRequest("'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.", "input");
  if (inputs.length === 0 || inputs.length > MAX_INPUTS) throw new BadRequest(`'input' must hold 1 to ${MAX_INPUTS} items.`, "input");
  if (inputs.some((x) => x === "")) throw new BadRequest("'input' must not contain empty strings.", "input");
  return inputs;
}

/** Sampling settings shared by chat and completions (OpenAI's ranges and defaults). @throws BadRequest */
export function readGenerationOptions(body: Record<string, unknown>, kind: "chat" | "completions"): GenerationOptions {
  const maxField = kind === "chat" && body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = readNumber(body[maxField], maxField, { integer: true, min: 1 }) ?? DEFAULT_MAX_TOKENS;
  const temperature = readNumber(body.temperature, "temperature", { min: 0, max: 2 }) ?? 1;
  const topP = readNumber(body.top_p, "top_p", { min: 0, max: 1 }) ?? 1;
  const seed = readNumber(body.seed, "seed", { integer: true });
  const frequencyPenalty = readNumber(body.frequency_penalty, "frequency_penalty", { min: 0, max: 2 }) ?? 0;
  const presencePenalty = readNumber(body.presence_penalty, "presence_penalty", { min: 0, max: 2 }) ?? 0;
  return { maxTokens, temperature, topP, seed, stop: readStop(body.stop), frequencyPenalty, presencePenalty };
}

function readStop(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return value ? [value] : [];
  if (Array.isArray(value) && value.length <= 4 && value.every((s) => typeof s === "string")) return (value as string[]).filter(Boolean);
  throw new BadRequest("'stop' must be a string or an array of at most 4 strings.", "stop");
}

/** `n`: 1 to 16 choices, default 1. @throws BadRequest */
export function readChoices(value: unknown): number {
  return readNumber(value, "n", { integer: true, min: 1, max: MAX_CHOICES }) ?? 1;
}

/** @returns the boolean, or undefined when absent/null. @throws BadRequest naming `field` for any other type. */
export function readBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new BadRequest(`'${field}' must be true or false.`, field);
  return value;
}

function readNumber(value: unknown, field: string, limits: { integer?: boolean; min?: number; max?: number }): number | undefined {
  if (value === undefined || value === null) return undefined;
  const okType = typeof value === "number" && Number.isFinite(value) && (!limits.integer || Number.isSafeInteger(value));
  const okRange = okType && (limits.min === undefined || value >= limits.min) && (limits.max === undefined || value <= limits.max);
  if (!okRange) {
    const range = limits.min !== undefined && limits.max !== undefined ? ` from ${limits.min} to ${limits.max}` : limits.min !== undefined ? ` of at least ${limits.min}` : "";
    throw new BadRequest(`'${field}' must be ${limits.integer ? "an integer" : "a number"}${range} (got ${JSON.stringify(value)}).`, field);
  }
  return value as number;
}
