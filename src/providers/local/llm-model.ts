import { join } from "node:path";
import type { ChatWrapper, Llama, LlamaContext, LlamaEmbeddingContext, LlamaModel } from "node-llama-cpp";

/** Tokens per sequence when the config names no `contextSize` (capped at the model's training context). */
export const DEFAULT_CONTEXT_SIZE = 2048;

/** What a loaded model holds: one generation context whose sequences are lent to requests one at a time. */
export interface LoadedModel {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  /** Tokens each sequence holds (prompt + output). */
  contextSize: number;
  chatWrapper: ChatWrapper;
  /** Token-id prompts must be below this; null when the file does not list its vocabulary. */
  vocabSize: number | null;
}

/** Where and how to load a GGUF model. */
export interface ModelSource {
  /** An absolute file path, or (with `remote`) an `hf:` / URL reference. */
  model: string;
  remote: boolean;
  /** Where remote models are downloaded to (under `models/`). */
  cacheDir: string;
  /** llama.cpp threads for decoding. */
  threads: number;
  /** Sequences in the one context (requests decoded at once). */
  sequences: number;
  /** Tokens per sequence; default DEFAULT_CONTEXT_SIZE capped at the model's training context. */
  contextSize?: number;
}

/**
 * Loads a GGUF model with node-llama-cpp's prebuilt CPU binary (never downloaded or compiled at run time) and makes one
 * context with `sequences` sequences. The chat wrapper is the file's own template, or a plain `### User` /
 * `### Assistant` one when it has none.
 * @throws an Error whose message carries llama.cpp's own reason when the file cannot be loaded.
 */
export async function loadModel(source: ModelSource): Promise<LoadedModel> {
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
  const llama = await nlc.getLlama({ gpu: false, build: "never", maxThreads: source.threads, logLevel: nlc.LlamaLogLevel.error, logger, progressLogs: false });
  try {
    const modelPath = source.remote ? await nlc.resolveModelFile(source.model, { directory: join(source.cacheDir, "models"), cli: false }) : source.model;
    const model = await llama.loadModel({ modelPath });
    const contextSize = source.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, model.trainContextSize);
    const context = await model.createContext({ contextSize, sequences: source.sequences, threads: source.threads });
    const template = (model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } }).tokenizer?.chat_template;
    const chatWrapper =
      typeof template === "string" && template.length > 0
        ? nlc.resolveChatWrapper(model)
        : new nlc.GeneralChatWrapper({ userMessageTitle: "User", modelResponseTitle: "Assistant", middleSystemMessageTitle: "System" });
    const vocab = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
    loading = false;
    return { llama, model, context, contextSize: context.contextSize, chatWrapper, vocabSize: Array.isArray(vocab) ? vocab.length : null };
  } catch (err) {
    await new Promise((r) => setTimeout(r, 50)); // llama.cpp's log lines arrive on the event loop after the throw
    await llama.dispose().catch(() => undefined);
    const native = nativeErrors.find((l) => /error loading model/i.test(l)) ?? nativeErrors[0];
    throw native ? new Error(`${describeError(err)} (llama.cpp: ${native.replace(/^.*?error loading model:\s*/i, "")})`) : err;
  }
}

/** The model's embedding context (same context size and threads). Rejects when the model cannot embed. */
export function createEmbedder(loaded: LoadedModel, threads: number): Promise<LlamaEmbeddingContext> {
  return loaded.model.createEmbeddingContext({ contextSize: loaded.contextSize, threads });
}

/** An error as one printable line without a trailing period (messages append to it); ENOENT reads "no such file". */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === "ENOENT") return "no such file";
  // A corrupt file's bytes can end up in the text.
  return (e?.message ?? String(err))
    .replace(/[^\x20-\x7e\u00a0-\ufffc]+/g, "?")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/\.+$/, "");
}
