import type { LlamaContextSequence, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import type { LoadedModel } from "./llm-model.js";
import type { GenerationOptions } from "./llm-request.js";

/** One finished choice. */
export interface Generated {
  /** The output text, cut before a stop string or stop token sequence. */
  text: string;
  /** Tokens generated, stop tokens included (what usage counts). */
  completionTokens: number;
  finishReason: "stop" | "length";
}

/** One choice to generate: its prompt, settings, and the template's stop token sequences. */
export interface ChoiceInput {
  prompt: Token[];
  options: GenerationOptions;
  stopTokens: Token[][];
}

/** Counts generations decoding right now (the provider's stats). */
export interface ActivityMeter {
  start(): void;
  end(): void;
}

/**
 * Generates one choice on `seq` from `input.prompt`: stops at an end-of-generation token, a stop string (cut from the
 * text), a stop token sequence, `maxTokens`, or the end of the sequence's context ("length"). The tokens are decoded
 * by llama.cpp's native threads; this loop only awaits each one, so the event loop stays free.
 *
 * Yields the output text in pieces as it is generated, for streaming: a piece is yielded only once it can no longer
 * change, i.e. it does not end in an incomplete multi-byte character, no stop string may start inside it, and no stop
 * token sequence is half matched. The pieces join to exactly the returned `text`.
 * @returns the whole choice. @throws the signal's reason when `signal` aborts.
 */
export async function* generateChoice(loaded: LoadedModel, seq: LlamaContextSequence, input: ChoiceInput, signal: AbortSignal, meter: ActivityMeter): AsyncGenerator<string, Generated, undefined> {
  const { prompt, options: o, stopTokens } = input;
  if (signal.aborted) throw signal.reason;
  await seq.clearHistory();
  const room = loaded.contextSize - prompt.length;
  const limit = Math.min(o.maxTokens, room);
  const out: Token[] = [];
  // Text is decoded incrementally: `stable` is the text of out[0, cut) and only the tail after it is decoded again
  // each token (a tail may end inside a multi-byte character, so it is committed only once it decodes cleanly).
  let stable = "";
  let cut = 0;
  const tail = () => loaded.model.detokenize(out.slice(cut), false, (cut === 0 ? prompt : out.slice(0, cut)).slice(-8));
  const longestStop = Math.max(0, ...o.stop.map((s) => s.length));
  let text = "";
  /** Characters of `text` already yielded. */
  let shown = 0;
  let finishReason: "stop" | "length" = "stop";
  const evaluateOptions: SequenceEvaluateOptions = { temperature: o.temperature, topP: o.topP < 1 ? o.topP : undefined, seed: o.seed };
  if (o.frequencyPenalty > 0 || o.presencePenalty > 0) {
    evaluateOptions.repeatPenalty = { punishTokens: () => out.slice(-64), penalty: 1, frequencyPenalty: o.frequencyPenalty, presencePenalty: o.presencePenalty };
  }
  meter.start();
  try {
    for await (const token of seq.evaluate(prompt, evaluateOptions)) {
      if (signal.aborted) break;
      out.push(token);
      const tokenStop = stopTokens.find((s) => s.length <= out.length && s.every((t, k) => out[out.length - s.length + k] === t));
      if (tokenStop) {
        out.length -= tokenStop.length;
        if (cut > out.length) {
          stable = "";
          cut = 0;
        }
        text = stable + tail();
        out.push(...tokenStop); // generated all the same: counted in usage
        break;
      }
      const recent = tail();
      text = stable + recent;
      const at = firstStop(text, o.stop, Math.max(0, stable.length - longestStop));
      if (at >= 0) {
        text = text.slice(0, at);
        break;
      }
      if (out.length - cut >= 32 && !recent.includes("\uFFFD")) {
        stable = text;
        cut = out.length;
      }
      if (out.length >= limit) {
        finishReason = "length";
        break;
      }
      const safe = halfMatchesTokens(out, stopTokens) ? shown : settledLength(text, shown, o.stop);
      if (safe > shown) {
        const piece = text.slice(shown, safe);
        shown = safe;
        yield piece;
      }
    }
  } finally {
    meter.end();
  }
  if (signal.aborted) throw signal.reason;
  if (text.length > shown) yield text.slice(shown);
  return { text, completionTokens: out.length, finishReason };
}

/** Runs generateChoice to the end without looking at its pieces. */
export async function generateWhole(loaded: LoadedModel, seq: LlamaContextSequence, input: ChoiceInput, signal: AbortSignal, meter: ActivityMeter): Promise<Generated> {
  const it = generateChoice(loaded, seq, input, signal, meter);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/**
 * How much of `text` (from `shown` on) can no longer change: up to the first replacement character (an incomplete
 * multi-byte character decodes as U+FFFD until its last byte comes) and before any tail that begins a stop string.
 */
function settledLength(text: string, shown: number, stops: readonly string[]): number {
  let end = text.length;
  const broken = text.indexOf("\uFFFD", shown);
  if (broken >= 0) end = broken;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
      if (text.endsWith(s.slice(0, k))) {
        end = Math.min(end, text.length - k);
        break;
      }
    }
  }
  return Math.max(shown, end);
}

/** True when the output ends in a proper prefix of a stop token sequence (its text may yet be cut). */
function halfMatchesTokens(out: readonly Token[], stopTokens: readonly Token[][]): boolean {
  for (const s of stopTokens) {
    for (let k = Math.min(s.length - 1, out.length); k > 0; k--) {
      if (s.slice(0, k).every((t, i) => out[out.length - k + i] === t)) return true;
    }
  }
  return false;
}

/** Index of the earliest stop string in `text` at or after `from`, or -1. */
function firstStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** The sampler seed for choice `i` (a uint32), or undefined for a time-based one. */
export function seedFor(seed: number | undefined, i: number): number | undefined {
  if (seed === undefined) return undefined;
  const m = 2 ** 32;
  return (((seed + i) % m) + m) % m;
}
