import type { ChatHistoryItem, LlamaText, Token } from "node-llama-cpp";
import type { LoadedModel } from "./llm-model.js";
import { BadRequest } from "./llm-request.js";

/** A prompt ready to decode: its tokens, and what ends a generation besides the end-of-generation token. */
export interface RenderedPrompt {
  /** The prompt's text, which completions `echo` puts before the output (empty for chat, which has no echo). */
  text: string;
  tokens: Token[];
  /** Stop strings the template adds (plain-text turn markers). */
  stopStrings: string[];
  /** Stop token sequences the template adds (markers holding special tokens). */
  stopTokens: Token[][];
}

/**
 * Renders a chat history through the model's chat wrapper, with an open assistant turn at the end, and tokenizes it.
 * @throws BadRequest (param "messages") when the prompt leaves no room for output in a sequence's context.
 */
export function renderChatPrompt(loaded: LoadedModel, history: ChatHistoryItem[]): RenderedPrompt {
  const state = loaded.chatWrapper.generateContextState({ chatHistory: [...history, { type: "model", response: [] }] });
  const tokens = state.contextText.tokenize(loaded.model.tokenizer);
  checkPromptFits(tokens.length, loaded.contextSize, "messages");
  const { strings, tokens: stopTokens } = splitTriggers(state.stopGenerationTriggers, loaded);
  return { text: "", tokens, stopStrings: strings, stopTokens };
}

/**
 * Tokenizes one completions prompt (text, or token ids checked against the vocabulary), with a BOS token first when
 * the model wants one. @throws BadRequest (param "prompt") for ids outside the vocabulary, an empty prompt, or one
 * that leaves no room for output.
 */
export function renderCompletionPrompt(loaded: LoadedModel, p: string | number[]): RenderedPrompt {
  if (typeof p !== "string") {
    if (loaded.vocabSize === null) throw new BadRequest("This model does not list its vocabulary, so 'prompt' must be text, not token ids.", "prompt");
    const bad = p.find((t) => t >= loaded.vocabSize!);
    if (bad !== undefined) throw new BadRequest(`'prompt' holds token id ${bad}, but the model's vocabulary has ${loaded.vocabSize} tokens.`, "prompt");
  }
  const tokens = typeof p === "string" ? loaded.model.tokenize(p, false) : (p as Token[]);
  const bos = loaded.model.tokens.bos;
  const withBos = loaded.model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos ? [bos, ...tokens] : tokens;
  if (withBos.length === 0) throw new BadRequest("'prompt' is empty and the model has no BOS token to start from.", "prompt");
  checkPromptFits(withBos.length, loaded.contextSize, "prompt");
  return { text: typeof p === "string" ? p : loaded.model.detokenize(p as Token[]), tokens: withBos, stopStrings: [], stopTokens: [] };
}

function checkPromptFits(tokens: number, contextSize: number, field: string): void {
  if (tokens >= contextSize) {
    throw new BadRequest(`The prompt is ${tokens} tokens, but this model's context holds ${contextSize} tokens per request (prompt and output together).`, field);
  }
}

/** A chat template's stop triggers: plain text ones as stop strings, those with special tokens as token sequences. */
function splitTriggers(triggers: readonly LlamaText[], loaded: LoadedModel): { strings: string[]; tokens: Token[][] } {
  const strings: string[] = [];
  const tokens: Token[][] = [];
  for (const t of triggers) {
    if (t.values.every((v) => typeof v === "string")) {
      const s = t.values.join("");
      if (s) strings.push(s);
    } else {
      const ids = t.tokenize(loaded.model.tokenizer);
      if (ids.length > 0) tokens.push(ids);
    }
  }
  return { strings, tokens };
}
