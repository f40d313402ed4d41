import { availableParallelism } from "node:os";
import { basename, join, resolve as resolvePath } from "node:path";
import { randomBytes } from "node:crypto";
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  LlamaText,
  SequenceEvaluateOptions,
  Token,
} from "node-llama-cpp";
import type { ProviderConfig } from "../../core/config.js";
import { UpstreamUnreachableError, type Provider, type UpstreamRequest, type UpstreamResponse } from "../provider.js";

type LocalLlmConfig = Extract<ProviderConfig, { type: "local-llm" }>;

/** Output tokens per choice when a request names no `max_tokens` / `max_completion_tokens`. */
export const DEFAULT_MAX_TOKENS = 256;
/** Tokens per sequence when the config names no `contextSize` (capped at the model's training context). */
export const DEFAULT_CONTEXT_SIZE = 2048;
/** Most choices (`n`, times the prompts of a completions request) one request may ask for. */
const MAX_CHOICES = 16;
/** Most inputs in one embeddings request (OpenAI's limit). */
const MAX_INPUTS = 2048;

/** What a loaded model holds: one generation context whose sequences are lent to requests one at a time. */
interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  /** Tokens each sequence holds (prompt + output). */
  contextSize: number;
  chatWrapper: ChatWrapper;
  /** Token-id prompts must be below this; null when the file does not list its vocabulary. */
  vocabSize: number | null;
}

/** One choice's generation settings, already validated. */
interface GenerationOptions {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number | undefined;
  stop: string[];
  frequencyPenalty: number;
  presencePenalty: number;
}

interface Generated {
  text: string;
  completionTokens: number;
  finishReason: "stop" | "length";
}

/** A request the provider cannot serve as written: answered 400 naming `param`. */
class BadRequest extends Error {
  constructor(
    message: string,
    readonly param: string | null,
  ) {
    super(message);
  }
}

/**
 * Provider type `local-llm`: an embedded GGUF model run in-process by node-llama-cpp (CPU build, never downloaded or
 * compiled at run time), no key and no network. Serves `/v1/chat/completions` (the model's chat template, or a plain
 * `### User` / `### Assistant` template when the file has none), `/v1/completions` (raw prompt continuation) and
 * `/v1/embeddings`, answering in OpenAI's response shapes with `usage` and `finish_reason`.
 *
 * The model loads on the first request (concurrent requests share that one load). Requests decode in parallel in one
 * context with `parallelSequences` sequences (continuous batching): each request takes a free sequence, waits for one
 * when all are busy, and gives it back when done. A model that cannot be loaded (missing or corrupt file, no binary)
 * never takes the process down: it is logged once, and every request gets a final (non-retryable) 424 naming the model
 * and the reason. Bad request bodies get a 400 naming the field, in OpenAI's error shape.
 */
export class LocalLlmProvider implements Provider {
  readonly type = "local-llm";
  readonly format = "openai" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets = null;
  readonly threads: number;
  readonly parallelSequences: number;
  private loading: Promise<Loaded> | null = null;
  private embedding: Promise<LlamaEmbeddingContext> | null = null;
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiters: { grant: (seq: LlamaContextSequence) => void; signal: AbortSignal; fail: (err: unknown) => void }[] = [];
  private closed = false;
  /** `model` is an `hf:` or URL reference (downloaded into the cache dir) rather than a file path. */
  private readonly remote: boolean;
  /** The model as messages name it: the absolute file path, or the URI. */
  private readonly modelLabel: string;
  private active = 0;
  private peak = 0;

  constructor(
    readonly name: string,
    private readonly config: LocalLlmConfig,
    /** Where `hf:` / URL models are downloaded to (under `models/`). */
    private readonly cacheDir: string,
  ) {
    // One core is left to the event loop: llama.cpp's worker threads spin while waiting, and on a 2-core machine
    // 2 threads decoded stories260K ~17x slower than 1 (the JS side between tokens starved).
    this.threads = config.threads ?? Math.max(1, availableParallelism() - 1);
    this.parallelSequences = config.parallelSequences;
    // Twice the sequences: a call waiting in the provider's own queue takes a freed sequence at once, without waiting
    // for the dispatcher's next pass (measured: 0.78 → ~1.0 of direct node-llama-cpp at 8 sequences).
    this.maxConcurrency = config.maxConcurrency ?? 2 * config.parallelSequences;
    this.timeoutMs = config.timeoutMs;
    this.remote = /^(hf:|https?:\/\/)/i.test(config.model);
    this.modelLabel = this.remote ? config.model : resolvePath(config.model);
  }

  /** Generations decoding right now, and the most there ever were at once (observability and tests). */
  get stats(): { active: number; peakActive: number } {
    return { active: this.active, peakActive: this.peak };
  }

  /** Loads the model now (otherwise the first request does). Rejects, after logging once, when it cannot be loaded. */
  async load(): Promise<void> {
    await this.shared();
  }

  /** The one load every request shares; a failure is logged once and kept. */
  private shared(): Promise<Loaded> {
    this.loading ??= this.loadModel().catch((err: unknown) => {
      const message = `The local model ${this.modelLabel} (provider "${this.name}") could not be loaded: ${reason(err)}`;
      console.error(`[openbatch] ${message}. Every request to this provider fails with status 424 until the server restarts.`);
      throw new Error(message);
    });
    return this.loading;
  }

  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    if (this.closed) throw new UpstreamUnreachableError(`${this.name}: the provider is closed`, "upstream_unreachable");
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(request.body);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new BadRequest("The request body must be a JSON object.", null);
      body = parsed as Record<string, unknown>;
    } catch (err) {
      return err instanceof BadRequest ? badRequest(err) : error(400, `The request body is not valid JSON: ${(err as Error).message}`, null);
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    try {
      switch (request.endpoint) {
        case "/v1/chat/completions":
          return await this.chat(body, both);
        case "/v1/completions":
          return await this.completions(body, both);
        case "/v1/embeddings":
          return await this.embeddings(body, both);
        default:
          return error(400, `The local model provider "${this.name}" serves /v1/chat/completions, /v1/completions and /v1/embeddings, not ${request.endpoint}.`, null);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (timeout.aborted) throw new UpstreamUnreachableError(`${this.name}: no answer within ${this.timeoutMs} ms`, "upstream_timeout");
      if (err instanceof BadRequest) return badRequest(err);
      if (err instanceof ModelUnavailable) return error(424, err.message, null, "model_unavailable");
      return error(500, `The local model failed while generating: ${reason(err)}`, null, "local_model_error");
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.fail(new UpstreamUnreachableError(`${this.name}: the provider is closed`, "upstream_unreachable"));
    const loaded = await this.loading?.catch(() => null);
    if (!loaded) return;
    const embedding = await this.embedding?.catch(() => null);
    await embedding?.dispose().catch(() => undefined);
    await loaded.llama.dispose().catch(() => undefined);
  }

  // ---- endpoints ----

  private async chat(body: Record<string, unknown>, signal: AbortSignal): Promise<UpstreamResponse> {
    rejectUnsupported(body, "chat");
    const history = readMessages(body.messages);
    const n = readChoices(body.n);
    const options = readGenerationOptions(body, "chat");
    const loaded = await this.loaded();
    history.push({ type: "model", response: [] });
    const state = loaded.chatWrapper.generateContextState({ chatHistory: history });
    const prompt = state.contextText.tokenize(loaded.model.tokenizer);
    checkPromptFits(prompt.length, loaded.contextSize, "messages");
    const triggers = splitTriggers(state.stopGenerationTriggers, loaded);
    const stop = [...options.stop, ...triggers.strings];
    const choices: unknown[] = [];
    let completionTokens = 0;
    await this.withSequence(signal, async (seq) => {
      for (let i = 0; i < n; i++) {
        const out = await this.generate(loaded, seq, prompt, { ...options, stop, seed: seedFor(options.seed, i) }, triggers.tokens, signal);
        completionTokens += out.completionTokens;
        choices.push({ index: i, message: { role: "assistant", content: out.text, refusal: null }, logprobs: null, finish_reason: out.finishReason });
      }
    });
    const answer = {
      id: "chatcmpl-" + randomBytes(12).toString("hex"),
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: this.modelName(body),
      choices,
      usage: usage(prompt.length, completionTokens),
      system_fingerprint: null,
    };
    return ok(answer);
  }

  private async completions(body: Record<string, unknown>, signal: AbortSignal): Promise<UpstreamResponse> {
    rejectUnsupported(body, "completions");
    const prompts = readPrompts(body.prompt);
    const n = readChoices(body.n);
    if (prompts.length * n > MAX_CHOICES) throw new BadRequest(`'n' times the number of prompts must be at most ${MAX_CHOICES}.`, "n");
    const echo = readBoolean(body.echo, "echo") ?? false;
    const options = readGenerationOptions(body, "completions");
    const loaded = await this.loaded();
    const tokenized = prompts.map((p) => {
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
      return { text: typeof p === "string" ? p : loaded.model.detokenize(p as Token[]), tokens: withBos };
    });
    const choices: unknown[] = [];
    let promptTokens = 0;
    let completionTokens = 0;
    await this.withSequence(signal, async (seq) => {
      for (const [i, p] of tokenized.entries()) {
        for (let j = 0; j < n; j++) {
          const out = await this.generate(loaded, seq, p.tokens, { ...options, seed: seedFor(options.seed, j) }, [], signal);
          if (j === 0) promptTokens += p.tokens.length;
          completionTokens += out.completionTokens;
          choices.push({ text: echo ? p.text + out.text : out.text, index: i * n + j, logprobs: null, finish_reason: out.finishReason });
        }
      }
    });
    const answer = {
      id: "cmpl-" + randomBytes(12).toString("hex"),
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: this.modelName(body),
      choices,
      usage: usage(promptTokens, completionTokens),
      system_fingerprint: null,
    };
    return ok(answer);
  }

  private async embeddings(body: Record<string, unknown>, signal: AbortSignal): Promise<UpstreamResponse> {
    const inputs = readEmbeddingInputs(body.input);
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") throw new BadRequest(`'encoding_format' must be "float" or "base64".`, "encoding_format");
    const loaded = await this.loaded();
    const embedder = await this.embedder(loaded);
    if (body.dimensions !== undefined && body.dimensions !== null && body.dimensions !== loaded.model.embeddingVectorSize) {
      throw new BadRequest(`This model's embeddings have ${loaded.model.embeddingVectorSize} dimensions; 'dimensions' cannot change that.`, "dimensions");
    }
    let tokens = 0;
    const data: unknown[] = [];
    for (const [index, input] of inputs.entries()) {
      if (signal.aborted) throw signal.reason;
      const ids = typeof input === "string" ? loaded.model.tokenize(input, false) : (input as Token[]);
      if (typeof input !== "string" && loaded.vocabSize !== null && ids.some((t) => t >= loaded.vocabSize!)) {
        throw new BadRequest(`'input' holds a token id outside the model's vocabulary of ${loaded.vocabSize} tokens.`, "input");
      }
      tokens += ids.length + (loaded.model.tokens.shouldPrependBosToken ? 1 : 0);
      if (ids.length + 2 >= loaded.contextSize) {
        throw new BadRequest(`'input' item ${index} has ${ids.length} tokens; this model embeds at most ${loaded.contextSize - 3}.`, "input");
      }
      const vector = normalize((await embedder.getEmbeddingFor(ids)).vector);
      const embedding = format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
      data.push({ object: "embedding", index, embedding });
    }
    return ok({ object: "list", data, model: this.modelName(body), usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  // ---- generation ----

  /**
   * Generates one choice on `seq` from `prompt`: stops at an end-of-generation token, a stop string (cut from the
   * text), a stop token sequence, `maxTokens`, or the end of the sequence's context ("length").
   */
  private async generate(loaded: Loaded, seq: LlamaContextSequence, prompt: Token[], o: GenerationOptions, stopTokens: Token[][], signal: AbortSignal): Promise<Generated> {
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
    let finishReason: "stop" | "length" = "stop";
    const evaluateOptions: SequenceEvaluateOptions = { temperature: o.temperature, topP: o.topP < 1 ? o.topP : undefined, seed: o.seed };
    if (o.frequencyPenalty > 0 || o.presencePenalty > 0) {
      evaluateOptions.repeatPenalty = { punishTokens: () => out.slice(-64), penalty: 1, frequencyPenalty: o.frequencyPenalty, presencePenalty: o.presencePenalty };
    }
    this.active++;
    this.peak = Math.max(this.peak, this.active);
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
      }
    } finally {
      this.active--;
    }
    if (signal.aborted) throw signal.reason;
    return { text, completionTokens: out.length, finishReason };
  }

  /** Lends a free sequence to `work` (waiting for one when all are busy) and takes it back after. */
  private async withSequence<T>(signal: AbortSignal, work: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
    const seq = await this.acquire(signal);
    try {
      return await work(seq);
    } finally {
      this.release(seq);
    }
  }

  private acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const seq = this.free.pop();
    if (seq) return Promise.resolve(seq);
    return new Promise((resolve, reject) => {
      const waiter = {
        signal,
        grant: (s: LlamaContextSequence) => {
          signal.removeEventListener("abort", onAbort);
          resolve(s);
        },
        fail: (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next) next.grant(seq);
    else this.free.push(seq);
  }

  // ---- loading ----

  /** The loaded model, or ModelUnavailable (→ 424) when it cannot be loaded. */
  private async loaded(): Promise<Loaded> {
    try {
      return await this.shared();
    } catch (err) {
      throw new ModelUnavailable((err as Error).message);
    }
  }

  private async loadModel(): Promise<Loaded> {
    // Imported here so a server without a local-llm provider never loads the native addon.
    const nlc = await import("node-llama-cpp");
    // llama.cpp's own errors while loading (e.g. why a file is corrupt) go into the one line a failed load logs;
    // after the load they are printed as they come.
    const nativeErrors: string[] = [];
    let loading = true;
    const logger = (level: string, message: string) => {
      const line = message.trim();
      if (!line) return;
      if (loading && (level === nlc.LlamaLogLevel.error || level === nlc.LlamaLogLevel.fatal)) nativeErrors.push(line);
      else console.error(`[node-llama-cpp] ${line}`);
    };
    const llama = await nlc.getLlama({ gpu: false, build: "never", maxThreads: this.threads, logLevel: nlc.LlamaLogLevel.error, logger, progressLogs: false });
    try {
      const modelPath = this.remote ? await nlc.resolveModelFile(this.config.model, { directory: join(this.cacheDir, "models"), cli: false }) : this.modelLabel;
      const model = await llama.loadModel({ modelPath });
      const contextSize = this.config.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, model.trainContextSize);
      const context = await model.createContext({ contextSize, sequences: this.parallelSequences, threads: this.threads });
      for (let i = 0; i < this.parallelSequences; i++) this.free.push(context.getSequence());
      const template = (model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } }).tokenizer?.chat_template;
      const chatWrapper =
        typeof template === "string" && template.length > 0
          ? nlc.resolveChatWrapper(model)
          : new nlc.GeneralChatWrapper({ userMessageTitle: "User", modelResponseTitle: "Assistant", middleSystemMessageTitle: "System" });
      const vocab = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
      loading = false;
      return { llama, model, context, contextSize: context.contextSize, chatWrapper, vocabSize: Array.isArray(vocab) ? vocab.length : null };
    } catch (err) {
      this.free.length = 0;
      await new Promise((r) => setTimeout(r, 50)); // llama.cpp's log lines arrive on the event loop after the throw
      await llama.dispose().catch(() => undefined);
      const native = nativeErrors.find((l) => /error loading model/i.test(l)) ?? nativeErrors[0];
      throw native ? new Error(`${reason(err)} (llama.cpp: ${native.replace(/^.*?error loading model:\s*/i, "")})`) : err;
    }
  }

  /** The embedding context, made on first use; a model that cannot embed answers 400. */
  private async embedder(loaded: Loaded): Promise<LlamaEmbeddingContext> {
    this.embedding ??= loaded.model.createEmbeddingContext({ contextSize: loaded.contextSize, threads: this.threads });
    try {
      return await this.embedding;
    } catch (err) {
      throw new BadRequest(`The local model ${this.modelLabel} does not support embeddings: ${reason(err)}`, "model");
    }
  }

  private modelName(body: Record<string, unknown>): string {
    return typeof body.model === "string" && body.model ? body.model : basename(this.config.model).replace(/\.gguf$/i, "");
  }
}

/** The model could not be loaded: answered 424 (final, not retried). */
class ModelUnavailable extends Error {}

// ---- request reading ----

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
  stream: (v) => v === true,
  logit_bias: (v) => typeof v === "object" && v !== null && Object.keys(v).length > 0,
};

function rejectUnsupported(body: Record<string, unknown>, kind: "chat" | "completions"): void {
  const checks = { ...COMMON_UNSUPPORTED, ...(kind === "chat" ? CHAT_ONLY_UNSUPPORTED : COMPLETIONS_ONLY_UNSUPPORTED) };
  for (const [field, unsupported] of Object.entries(checks)) {
    if (unsupported(body[field])) throw new BadRequest(`'${field}' is not supported by the local model provider.`, field);
  }
}

function readMessages(value: unknown): ChatHistoryItem[] {
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

function readPrompts(value: unknown): (string | number[])[] {
  const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  if (typeof value === "string") return [value];
  if (isTokens(value)) return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string" || isTokens(v))) return value as (string | number[])[];
  throw new BadRequest("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.", "prompt");
}

function readEmbeddingInputs(value: unknown): (string | number[])[] {
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

function readGenerationOptions(body: Record<string, unknown>, kind: "chat" | "completions"): GenerationOptions {
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

function readChoices(value: unknown): number {
  return readNumber(value, "n", { integer: true, min: 1, max: MAX_CHOICES }) ?? 1;
}

function readBoolean(value: unknown, field: string): boolean | undefined {
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

function checkPromptFits(tokens: number, contextSize: number, field: string): void {
  if (tokens >= contextSize) {
    throw new BadRequest(`The prompt is ${tokens} tokens, but this model's context holds ${contextSize} tokens per request (prompt and output together).`, field);
  }
}

// ---- helpers ----

/** A chat template's stop triggers: plain text ones as stop strings, those with special tokens as token sequences. */
function splitTriggers(triggers: readonly LlamaText[], loaded: Loaded): { strings: string[]; tokens: Token[][] } {
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
function seedFor(seed: number | undefined, i: number): number | undefined {
  if (seed === undefined) return undefined;
  const m = 2 ** 32;
  return (((seed + i) % m) + m) % m;
}

function normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return vector.map((x) => Math.round((x / norm) * 1e7) / 1e7);
}

function usage(prompt: number, completion: number) {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === "ENOENT") return "no such file";
  // One line, printable, no trailing period (messages append to it); a corrupt file's bytes can end up in the text.
  return (e?.message ?? String(err))
    .replace(/[^\x20-\x7e\u00a0-\ufffc]+/g, "?")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/\.+$/, "");
}

function ok(answer: unknown): UpstreamResponse {
  return { status: 200, headers: {}, body: JSON.stringify(answer) };
}

function badRequest(err: BadRequest): UpstreamResponse {
  return error(400, err.message, err.param);
}

function error(status: number, message: string, param: string | null, code: string | null = null): UpstreamResponse {
  const type = status === 400 ? "invalid_request_error" : "server_error";
  return { status, headers: {}, body: JSON.stringify({ error: { message, type, param, code } }) };
}
