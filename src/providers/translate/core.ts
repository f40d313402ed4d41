import { randomBytes } from "node:crypto";
import { TranslationError } from "./errors.js";

/**
 * The pivot every cross-format translation goes through: the shared core of a chat request and of its answer, in
 * OpenAI chat terms (roles system/user/assistant, OpenAI finish reasons, prompt/completion token counts). Each format
 * has a reader (its body → core, throwing on what the core cannot carry) and a writer (core → its body, throwing on
 * what the format cannot express). `src` remembers where each field came from, so a writer's error names the path in
 * the SOURCE request (e.g. "generationConfig.topK", not "top_k").
 */

export type JsonObject = Record<string, unknown>;

/** Text of one turn: a plain string, or a list of text parts (blocks) kept apart. */
export type Text = string | string[];

export interface ChatCore {
  model?: string;
  /** System prompt parts, in order (each leading system/developer message, Anthropic `system`, Gemini `systemInstruction`). */
  system: Text[];
  turns: { role: "user" | "assistant"; text: Text }[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  stop?: string[];
  /** JSON mode (OpenAI response_format json_object, Gemini responseMimeType "application/json"). */
  json?: boolean;
  n?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** End-user id (OpenAI `user`, Anthropic `metadata.user_id`); dropped where a format has none (it changes no output). */
  user?: string;
  /** Source path of each field, for errors. */
  src: Partial<Record<Exclude<keyof ChatCore, "src" | "system" | "turns" | "model">, string>>;
}

/** OpenAI finish reasons are the core's vocabulary. */
export type FinishReason = "stop" | "length" | "content_filter" | "tool_calls";

export interface ResponseCore {
  id?: string;
  model?: string;
  /** Unix seconds. */
  created?: number;
  choices: { index: number; text: string | null; finish: FinishReason }[];
  usage?: { input: number; output: number; cached: number; reasoning: number; total: number };
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Absent in the JSON sense: undefined or null. */
export function absent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

export function num(v: unknown, param: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new TranslationError(param, "Expected a number.");
  return v;
}

export function str(v: unknown, param: string): string {
  if (typeof v !== "string") throw new TranslationError(param, "Expected a string.");
  return v;
}

/** A stop value: a string or a list of strings. */
export function stopList(v: unknown, param: string): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === "string")) return v as string[];
  throw new TranslationError(param, "Expected a string or a list of strings.");
}

/** Empty list or empty object: a field sent at its neutral value. */
export function isEmpty(v: unknown): boolean {
  return (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
}

/** The parts of a Text as a list. */
export function partsOf(t: Text): string[] {
  return typeof t === "string" ? [t] : t;
}

/** Appends `t` to `into` (consecutive turns of one role merged where a format needs alternation). */
export function mergeText(into: Text, t: Text): string[] {
  return [...partsOf(into), ...partsOf(t)];
}

/** Adds a system prompt part unless it is empty. */
export function addSystem(core: ChatCore, t: Text): void {
  if (partsOf(t).some((x) => x.length > 0)) core.system.push(t);
}

/** Merges consecutive turns of the same role. */
export function mergeTurns(turns: ChatCore["turns"]): ChatCore["turns"] {
  const out: ChatCore["turns"] = [];
  for (const t of turns) {
    const last = out[out.length - 1];
    if (last && last.role === t.role) last.text = mergeText(last.text, t.text);
    else out.push({ role: t.role, text: t.text });
  }
  return out;
}

/** snake_case → camelCase, for Gemini keys (its REST API accepts both spellings). */
export function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function randomId(prefix: string): string {
  return prefix + randomBytes(12).toString("hex");
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Usage counts with the total filled in. */
export function usage(input: number, output: number, cached = 0, reasoning = 0, total?: number): NonNullable<ResponseCore["usage"]> {
  return { input, output, cached, reasoning, total: total ?? input + output };
}

/** A finite non-negative number, or 0. */
export function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}
