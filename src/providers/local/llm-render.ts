import { randomBytes, randomInt } from "node:crypto";
import type { UpstreamResponse } from "../provider.js";
import type { BadRequest, StreamOptions } from "./llm-request.js";

/** Token counts in OpenAI's `usage` shape. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** `usage` from prompt and completion token counts (total is their sum). */
export function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A 200 answer with `answer` as its JSON body. */
export function ok(answer: unknown): UpstreamResponse {
  return { status: 200, headers: {}, body: JSON.stringify(answer) };
}

/** An answer in OpenAI's error shape (`{error:{message,type,param,code}}`); 400s are `invalid_request_error`. */
export function errorAnswer(status: number, message: string, param: string | null, code: string | null = null): UpstreamResponse {
  const type = status === 400 ? "invalid_request_error" : "server_error";
  return { status, headers: {}, body: JSON.stringify({ error: { message, type, param, code } }) };
}

/** A 400 answer naming the field `err` names. */
export function badRequestAnswer(err: BadRequest): UpstreamResponse {
  return errorAnswer(400, err.message, err.param);
}

/** What every answer and chunk of one request shares. */
export interface AnswerHead {
  /** `chatcmpl-…` or `cmpl-…`. */
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

/** A fresh head for a chat (`chatcmpl-`) or completions (`cmpl-`) answer. */
export function answerHead(kind: "chat" | "completions", model: string): AnswerHead {
  return { id: (kind === "chat" ? "chatcmpl-" : "cmpl-") + randomBytes(12).toString("hex"), created: Math.floor(Date.now() / 1000), model };
}

/** A whole `chat.completion` answer (OpenAI's shape: message with refusal null, logprobs null, no fingerprint). */
export function chatCompletion(head: AnswerHead, choices: { text: string; finishReason: string }[], u: Usage): unknown {
  return {
    id: head.id,
    object: "chat.completion",
    created: head.created,
    model: head.model,
    choices: choices.map((c, index) => ({ index, message: { role: "assistant", content: c.text, refusal: null }, logprobs: null, finish_reason: c.finishReason })),
    usage: u,
    system_fingerprint: null,
  };
}

/** A whole `text_completion` answer. */
export function textCompletion(head: AnswerHead, choices: { text: string; finishReason: string }[], u: Usage): unknown {
  return {
    id: head.id,
    object: "text_completion",
    created: head.created,
    model: head.model,
    choices: choices.map((c, index) => ({ text: c.text, index, logprobs: null, finish_reason: c.finishReason })),
    usage: u,
    system_fingerprint: null,
  };
}

/** The event that ends every OpenAI stream. */
export const SSE_DONE = "data: [DONE]\n\n";

/** One server-sent event carrying `data` as JSON. */
export function sseEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/**
 * The server-sent events of one streamed answer, in OpenAI's chunk shapes (openai SDK `ChatCompletionChunk` /
 * `Completion`): every chunk repeats id, object, created and model; a choice's chunks carry `logprobs: null` and
 * `finish_reason: null` until its last one. With `include_usage`, every chunk has `usage: null` and one more chunk
 * before `[DONE]` has the usage and `choices: []`. With `include_obfuscation` (OpenAI's default), every chunk of a
 * choice gets an `obfuscation` field of random characters that pads their size. No `system_fingerprint` (the local
 * model has none; the SDK's type has it optional and non-null).
 */
export class ChunkRenderer {
  constructor(
    private readonly kind: "chat" | "completions",
    private readonly head: AnswerHead,
    private readonly options: StreamOptions,
  ) {}

  /** A chat choice's first chunk: the assistant role with empty content (OpenAI sends it before any token). */
  role(index: number): string {
    return this.choice(index, { role: "assistant", content: "", refusal: null }, null, "");
  }

  /** A piece of a choice's text. */
  text(index: number, piece: string): string {
    return this.choice(index, { content: piece }, null, piece);
  }

  /** A choice's last chunk: empty delta (or text) and its finish reason. */
  finish(index: number, reason: "stop" | "length"): string {
    return this.choice(index, {}, reason, "");
  }

  /** The usage chunk (`choices: []`), only with `include_usage`; null otherwise. */
  usage(u: Usage): string | null {
    if (!this.options.includeUsage) return null;
    return sseEvent({ ...this.common(), choices: [], usage: u });
  }

  private choice(index: number, delta: Record<string, unknown>, finishReason: string | null, text: string): string {
    const choice =
      this.kind === "chat"
        ? { index, delta, logprobs: null, finish_reason: finishReason }
        : { text: (delta.content as string | undefined) ?? "", index, logprobs: null, finish_reason: finishReason };
    const chunk: Record<string, unknown> = { ...this.common(), choices: [choice] };
    if (this.options.includeUsage) chunk.usage = null;
    if (this.options.includeObfuscation) chunk.obfuscation = obfuscation(text.length);
    return sseEvent(chunk);
  }

  private common() {
    return { id: this.head.id, object: this.kind === "chat" ? "chat.completion.chunk" : "text_completion", created: this.head.created, model: this.head.model };
  }
}

const OBFUSCATION_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Random characters that round a chunk's text up to a multiple of 16 plus 0-15 more, so sizes leak less. */
function obfuscation(textLength: number): string {
  const n = 16 - (textLength % 16) + randomInt(16);
  let s = "";
  for (let i = 0; i < n; i++) s += OBFUSCATION_CHARS[randomInt(OBFUSCATION_CHARS.length)];
  return s;
}
