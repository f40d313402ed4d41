import type { Embedder } from "./collection-types.js";
import { VECTORIZER, type VectorSlot, vectorizerTarget } from "./vector-config.js";

/*
 * Vectorizing for a vector slot: the module named by the class (text2vec-openbatch, -ollama, -openai, -transformers,
 * -huggingface) embeds through the engine (engine/direct-calls.ts), which maps a module's model to a provider, or
 * calls the module's own endpoint.
 */

/** Grouping key of a slot's vectorizer: objects with the same key are embedded together. */
export function vectorizerKey(slot: VectorSlot): string | null {
  const t = vectorizerTarget(slot);
  return t ? JSON.stringify([t.module, t.model, t.endpoint]) : null;
}

/**
 * Embeds texts with a slot's vectorizer. @returns one vector per text, in order.
 * @throws Error (the engine's message) when no provider or endpoint serves it, or the upstream failed.
 */
export async function embedForSlot(embedder: Embedder, slot: VectorSlot, texts: string[]): Promise<number[][]> {
  const t = vectorizerTarget(slot);
  if (!t) throw new Error(`vector ${slot.name} has no vectorizer`);
  if (t.module === VECTORIZER || !embedder.embedForModule) return embedder.embedTexts(t.model, texts);
  return embedder.embedForModule({ module: t.module, model: t.model, endpoint: t.endpoint }, texts);
}
