import type { WordVectors } from "./word-vectors.js";

/** The model id the embedded sentence embedder answers to (in the provider and in its worker thread). */
export const GLOVE_MODEL = "local/glove-100d";

/** SIF smoothing constant (Arora et al. 2017): frequent words weigh a/(a+p(w)), rare ones ~1. */
const SIF_A = 1e-3;

/** Lower-cased word tokens (letters and digits), as the GloVe vocabulary spells them. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Sentence embeddings from word vectors: the SIF-weighted mean of the known words' vectors, L2-normalised.
 * Word probabilities come from frequency rank by Zipf's law, p(rank r) = 1 / ((r+1)·H_N), since the vocabulary is
 * stored in frequency order. A text with no known word embeds to the zero vector.
 */
export class SentenceEmbedder {
  private readonly harmonic: number;

  constructor(private readonly words: WordVectors) {
    this.harmonic = Math.log(words.index.size) + 0.5772;
  }

  get dimensions(): number {
    return this.words.dimensions;
  }

  /** @returns the unit-length embedding (Float32, `dimensions` long) and the number of tokens read. */
  embed(text: string): { vector: Float32Array; tokens: number } {
    const dims = this.words.dimensions;
    const sum = new Float32Array(dims);
    const tokens = tokenize(text);
    for (const token of tokens) {
      const row = this.words.index.get(token);
      if (row === undefined) continue;
      const p = 1 / ((row + 1) * this.harmonic);
      const weight = SIF_A / (SIF_A + p);
      const offset = row * dims;
      for (let d = 0; d < dims; d++) sum[d]! += weight * this.words.vectors[offset + d]!;
    }
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += sum[d]! * sum[d]!;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let d = 0; d < dims; d++) sum[d]! /= norm;
    return { vector: sum, tokens: tokens.length };
  }
}
