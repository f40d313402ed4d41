import { availableParallelism } from "node:os";
import { basename, resolve as resolvePath } from "node:path";
import type { LlamaContextSequence, LlamaEmbeddingContext, Token } from "node-llama-cpp";
import type { ProviderConfig } from "../../core/config.js";
import { UpstreamUnreachableError, type Provider, type UpstreamRequest, type UpstreamResponse, type UpstreamStreamResult } from "../provider.js";
import { generateChoice, generateWhole, seedFor, type ActivityMeter, type ChoiceInput, type Generated } from "./generation.js";
import { createEmbedder, describeError, loadModel, type LoadedModel } from "./llm-model.js";
import { renderChatPrompt, renderCompletionPrompt } from "./llm-prompt.js";
import {
  BadRequest,
  MAX_CHOICES,
  readBoolean,
  readChoices,
  readEmbeddingInputs,
  readGenerationOptions,
  readMessages,
  readPrompts,
  readStreamOptions,
  rejectUnsupported,
  type StreamOptions,
} from "./llm-request.js";
import { answerHead, badRequestAnswer, chatCompletion, ChunkRenderer, errorAnswer, ok, SSE_DONE, textCompletion, usage, type AnswerHead } from "./llm-render.js";
import { SequencePool } from "./sequence-pool.js";

export { DEFAULT_CONTEXT_SIZE } from "./llm-model.js";
export { DEFAULT_MAX_TOKENS } from "./llm-request.js";

type LocalLlmConfig = Extract<ProviderConfig, { type: "local-llm" }>;

/** A validated chat or completions request: every choice to generate, in answer order. */
interface Plan {
  kind: "chat" | "completions";
  loaded: LoadedModel;
  head: AnswerHead;
  /** Choice `index` is `choices[index]`; `echo` is text put before its output (completions `echo`). */
  choices: (ChoiceInput & { echo: string })[];
  promptTokens: number;
  stream: StreamOptions;
}

/** The model could not be loaded: answered 424 (final, not retried). */
class ModelUnavailable extends Error {}

/**
 * Provider type `local-llm`: an embedded GGUF model run in-process by node-llama-cpp (CPU build, never downloaded or
 * compiled at run time), no key and no network. Serves `/v1/chat/completions` (the model's chat template, or a plain
 * `### User` / `### Assistant` template when the file has none), `/v1/completions` (raw prompt continuation) and
 * `/v1/embeddings`, answering in OpenAI's response shapes with `usage` and `finish_reason`; `stream` answers chat and
 * completions as OpenAI's server-sent events, token by token as they are generated (see ChunkRenderer).
 *
 * The model loads on the first request (concurrent requests share that one load). Requests decode in parallel in one
 * context with `parallelSequences` sequences (continuous batching): each request takes a free sequence, waits for one
 * when all are busy, and gives it back when done (a stream holds its sequence until it ends or its client leaves).
 * A model that cannot be loaded (missing or corrupt file, no binary) never takes the process down: it is logged once,
 * and every request gets a final (non-retryable) 424 naming the model and the reason. Bad request bodies get a 400
 * naming the field, in OpenAI's error shape.
 */
export class LocalLlmProvider implements Provider {
  readonly type = "local-llm";
  readonly format = "openai" as const;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  readonly budgets = null;
  readonly threads: number;
  readonly parallelSequences: number;
  private loading: Promise<LoadedModel> | null = null;
  private embedding: Promise<LlamaEmbeddingContext> | null = null;
  private readonly pool = new SequencePool();
  private closed = false;
  /** `model` is an `hf:` or URL reference (downloaded into the cache dir) rather than a file path. */
  private readonly remote: boolean;
  /** The model as messages name it: the absolute file path, or the URI. */
  private readonly modelLabel: string;
  private active = 0;
  private peak = 0;
  private readonly meter: ActivityMeter = {
    start: () => {
      this.active++;
      this.peak = Math.max(this.peak, this.active);
    },
    end: () => {
      this.active--;
    },
  };

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
  private shared(): Promise<LoadedModel> {
    this.loading ??= loadModel({
      model: this.modelLabel,
      remote: this.remote,
      cacheDir: this.cacheDir,
      threads: this.threads,
      sequences: this.parallelSequences,
      contextSize: this.config.contextSize,
    }).then(
      (loaded) => {
        for (let i = 0; i < this.parallelSequences; i++) this.pool.add(loaded.context.getSequence());
        return loaded;
      },
      (err: unknown) => {
        const message = `The local model ${this.modelLabel} (provider "${this.name}") could not be loaded: ${describeError(err)}`;
        console.error(`[openbatch] ${message}. Every request to this provider fails with status 424 until the server restarts.`);
        throw new Error(message);
      },
    );
    return this.loading;
  }

  /** A whole answer. A body with `stream: true` is answered 400 (batch items are answered whole; see `stream`). */
  async send(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    if (this.closed) throw new UpstreamUnreachableError(`${this.name}: the provider is closed`, "upstream_unreachable");
    const body = parseBody(request.body);
    if (!("kind" in body)) return body;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    try {
      switch (request.endpoint) {
        case "/v1/chat/completions":
        case "/v1/completions": {
          const plan = await this.plan(request.endpoint, body.value, false);
          return ok(await this.answer(plan, both));
        }
        case "/v1/embeddings":
          return await this.embeddings(body.value, both);
        default:
          return errorAnswer(400, `The local model provider "${this.name}" serves /v1/chat/completions, /v1/completions and /v1/embeddings, not ${request.endpoint}.`, null);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (timeout.aborted) throw this.timedOut();
      if (err instanceof BadRequest) return badRequestAnswer(err);
      if (err instanceof ModelUnavailable) return errorAnswer(424, err.message, null, "model_unavailable");
      return errorAnswer(500, `The local model failed while generating: ${describeError(err)}`, null, "local_model_error");
    }
  }

  /**
   * A streamed chat or completions answer (body `stream: true`). What can be answered before generating (a 400 for
   * the body, 424 when the model cannot be loaded) is an answer; otherwise the events, which take a sequence (waiting
   * for one when all are busy) and hold it until they end. The call's `timeoutMs` bounds the whole stream.
   */
  async stream(request: UpstreamRequest, signal: AbortSignal): Promise<UpstreamStreamResult> {
    if (this.closed) throw new UpstreamUnreachableError(`${this.name}: the provider is closed`, "upstream_unreachable");
    const answer = (res: UpstreamResponse): UpstreamStreamResult => ({ kind: "answer", ...res });
    if (request.endpoint !== "/v1/chat/completions" && request.endpoint !== "/v1/completions") {
      return answer(errorAnswer(400, `The local model provider "${this.name}" streams /v1/chat/completions and /v1/completions only, not ${request.endpoint}.`, "stream"));
    }
    const body = parseBody(request.body);
    if (!("kind" in body)) return answer(body);
    let plan: Plan;
    try {
      plan = await this.plan(request.endpoint, body.value, true);
    } catch (err) {
      if (err instanceof BadRequest) return answer(badRequestAnswer(err));
      if (err instanceof ModelUnavailable) return answer(errorAnswer(424, err.message, null, "model_unavailable"));
      throw err;
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const events = this.events(plan, signal, timeout);
    return { kind: "stream", status: 200, headers: { "content-type": "text/event-stream; charset=utf-8" }, events };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pool.close(new UpstreamUnreachableError(`${this.name}: the provider is closed`, "upstream_unreachable"));
    const loaded = await this.loading?.catch(() => null);
    if (!loaded) return;
    const embedding = await this.embedding?.catch(() => null);
    await embedding?.dispose().catch(() => undefined);
    await loaded.llama.dispose().catch(() => undefined);
  }

  // ---- chat and completions ----

  /**
   * Validates a chat or completions body (before loading the model, so a bad body is a 400 even when the model cannot
   * load), loads the model, and renders the prompts. @throws BadRequest, ModelUnavailable
   */
  private async plan(endpoint: "/v1/chat/completions" | "/v1/completions", body: Record<string, unknown>, streaming: boolean): Promise<Plan> {
    const kind = endpoint === "/v1/chat/completions" ? "chat" : "completions";
    rejectUnsupported(body, kind);
    const stream = readStreamOptions(body, streaming);
    const n = readChoices(body.n);
    const options = readGenerationOptions(body, kind);
    const head = answerHead(kind, this.modelName(body));
    if (kind === "chat") {
      const history = readMessages(body.messages);
      const loaded = await this.loaded();
      const prompt = renderChatPrompt(loaded, history);
      const stop = [...options.stop, ...prompt.stopStrings];
      const choices = Array.from({ length: n }, (_, i) => ({ prompt: prompt.tokens, options: { ...options, stop, seed: seedFor(options.seed, i) }, stopTokens: prompt.stopTokens, echo: "" }));
      return { kind, loaded, head, choices, promptTokens: prompt.tokens.length, stream };
    }
    const prompts = readPrompts(body.prompt);
    if (prompts.length * n > MAX_CHOICES) throw new BadRequest(`'n' times the number of prompts must be at most ${MAX_CHOICES}.`, "n");
    const echo = readBoolean(body.echo, "echo") ?? false;
    const loaded = await this.loaded();
    const rendered = prompts.map((p) => renderCompletionPrompt(loaded, p));
    const choices = rendered.flatMap((p) =>
      Array.from({ length: n }, (_, j) => ({ prompt: p.tokens, options: { ...options, seed: seedFor(options.seed, j) }, stopTokens: [], echo: echo ? p.text : "" })),
    );
    return { kind, loaded, head, choices, promptTokens: rendered.reduce((sum, p) => sum + p.tokens.length, 0), stream };
  }

  /** Generates every choice of `plan` on one sequence and renders the whole answer. */
  private async answer(plan: Plan, signal: AbortSignal): Promise<unknown> {
    const done: Generated[] = [];
    await this.pool.with(signal, async (seq) => {
      for (const choice of plan.choices) done.push(await generateWhole(plan.loaded, seq, choice, signal, this.meter));
    });
    const choices = done.map((g, i) => ({ text: plan.choices[i]!.echo + g.text, finishReason: g.finishReason }));
    const u = usage(plan.promptTokens, done.reduce((sum, g) => sum + g.completionTokens, 0));
    return plan.kind === "chat" ? chatCompletion(plan.head, choices, u) : textCompletion(plan.head, choices, u);
  }

  /**
   * The server-sent events of a streamed plan: per choice (one after another, on one sequence) the role chunk (chat)
   * or echoed prompt (completions), a chunk per settled piece of text, and one with its finish reason; then the usage
   * chunk when asked for, and `[DONE]`. Throws the caller's abort reason, UpstreamUnreachableError on the timeout, or
   * an Error naming what failed while generating.
   */
  private async *events(plan: Plan, callerSignal: AbortSignal, timeout: AbortSignal): AsyncGenerator<string, void, undefined> {
    const signal = AbortSignal.any([callerSignal, timeout]);
    const render = new ChunkRenderer(plan.kind, plan.head, plan.stream);
    let seq: LlamaContextSequence | null = null;
    try {
      seq = await this.pool.acquire(signal);
      let completionTokens = 0;
      for (const [index, choice] of plan.choices.entries()) {
        if (plan.kind === "chat") yield render.role(index);
        else if (choice.echo) yield render.text(index, choice.echo);
        const pieces = generateChoice(plan.loaded, seq, choice, signal, this.meter);
        try {
          for (;;) {
            const next = await pieces.next();
            if (next.done) {
              completionTokens += next.value.completionTokens;
              yield render.finish(index, next.value.finishReason);
              break;
            }
            yield render.text(index, next.value);
          }
        } finally {
          // A consumer that stops early ends the generation too (and its token loop's bookkeeping).
          await pieces.return(undefined as never);
        }
      }
      const last = render.usage(usage(plan.promptTokens, completionTokens));
      if (last) yield last;
      yield SSE_DONE;
    } catch (err) {
      if (callerSignal.aborted) throw callerSignal.reason;
      if (timeout.aborted) throw this.timedOut();
      if (err instanceof UpstreamUnreachableError) throw err;
      throw new Error(`The local model failed while generating: ${describeError(err)}`);
    } finally {
      if (seq) this.pool.release(seq);
    }
  }

  // ---- embeddings ----

  private async embeddings(body: Record<string, unknown>, signal: AbortSignal): Promise<UpstreamResponse> {
    const inputs = readEmbeddingInputs(body.input);
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") throw new BadRequest(`'encoding_format' must be "float" or "base64".`, "encoding_format");
    if (body.stream !== undefined && body.stream !== null && body.stream !== false) throw new BadRequest("'stream' is not supported on /v1/embeddings.", "stream");
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

  /** The embedding context, made on first use; a model that cannot embed answers 400. */
  private async embedder(loaded: LoadedModel): Promise<LlamaEmbeddingContext> {
    this.embedding ??= createEmbedder(loaded, this.threads);
    try {
      return await this.embedding;
    } catch (err) {
      throw new BadRequest(`The local model ${this.modelLabel} does not support embeddings: ${describeError(err)}`, "model");
    }
  }

  // ---- helpers ----

  /** The loaded model, or ModelUnavailable (→ 424) when it cannot be loaded. */
  private async loaded(): Promise<LoadedModel> {
    try {
      return await this.shared();
    } catch (err) {
      throw new ModelUnavailable((err as Error).message);
    }
  }

  private timedOut(): UpstreamUnreachableError {
    return new UpstreamUnreachableError(`${this.name}: no answer within ${this.timeoutMs} ms`, "upstream_timeout");
  }

  private modelName(body: Record<string, unknown>): string {
    return typeof body.model === "string" && body.model ? body.model : basename(this.config.model).replace(/\.gguf$/i, "");
  }
}

/** The body as a JSON object, or the 400 answer saying why it is not one. */
function parseBody(text: string): { kind: "object"; value: Record<string, unknown> } | UpstreamResponse {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return errorAnswer(400, "The request body must be a JSON object.", null);
    return { kind: "object", value: parsed as Record<string, unknown> };
  } catch (err) {
    return errorAnswer(400, `The request body is not valid JSON: ${(err as Error).message}`, null);
  }
}

function normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return vector.map((x) => Math.round((x / norm) * 1e7) / 1e7);
}
