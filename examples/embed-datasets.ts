/**
 * The main job on the embedded default: embeds the 1,000 Jeopardy questions and the 3,000 labelled review sentences
 * from ../shared/datasets with `local/glove-100d` through `openbatch run` (no key, no network), then shows the vectors
 * mean something: the questions nearest to "biology", and how well review sentiment is told apart by the nearest
 * class centroid (trained on half, tested on the other half).
 *
 * Usage: npm run demo   (env OPENBATCH_DATASETS overrides the datasets folder)
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const datasets = process.env.OPENBATCH_DATASETS ?? resolve(root, "../shared/datasets");
const work = join(root, "openbatch-data", "demo");
mkdirSync(work, { recursive: true });

type Question = { Category: string; Question: string; Answer: string };
const questions = JSON.parse(readFileSync(join(datasets, "jeopardy/jeopardy_1k.json"), "utf8")) as Question[];
const reviews = ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].flatMap((f) =>
  readFileSync(join(datasets, "sentiment-labelled-sentences", f), "utf8")
    .split("\n")
    .filter((l) => l.includes("\t"))
    .map((l) => ({ text: l.split("\t")[0]!.trim(), label: Number(l.split("\t")[1]) })),
);

const request = (custom_id: string, input: string) =>
  JSON.stringify({ custom_id, method: "POST", url: "/v1/embeddings", body: { model: "local/glove-100d", input } });
const lines = [
  ...questions.map((q, i) => request(`question-${i}`, `${q.Question} ${q.Answer}`)),
  ...reviews.map((r, i) => request(`review-${i}`, r.text)),
  request("query-biology", "biology"),
];
const input = join(work, "embeddings-input.jsonl");
writeFileSync(input, lines.join("\n") + "\n");
console.log(`Embedding ${questions.length} questions and ${reviews.length} review sentences (${lines.length} requests) with local/glove-100d…`);

const output = join(work, "embeddings-output.jsonl");
const cli = spawnSync(process.execPath, [join(root, "dist/cli/main.js"), "run", input, "-o", output, "-e", join(work, "embeddings-errors.jsonl"), "--data-dir", join(root, "openbatch-data")], { stdio: "inherit" });
if (cli.status !== 0) process.exit(cli.status ?? 1);

const vectors = new Map<string, number[]>();
for (const line of readFileSync(output, "utf8").split("\n")) {
  if (!line) continue;
  const l = JSON.parse(line) as { custom_id: string; response: { body: { data: { embedding: number[] }[] } } };
  vectors.set(l.custom_id, l.response.body.data[0]!.embedding);
}
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

const query = vectors.get("query-biology")!;
const nearest = questions.map((q, i) => ({ q, score: dot(query, vectors.get(`question-${i}`)!) })).sort((a, b) => b.score - a.score);
console.log(`\nQuestions nearest to "biology":`);
for (const { q, score } of nearest.slice(0, 5)) console.log(`  ${score.toFixed(3)}  [${q.Category}] ${q.Question} — ${q.Answer}`);

// Nearest centroid on review sentiment: even-indexed sentences train, odd-indexed ones test.
const centroid = (label: number) => {
  const sum = new Array<number>(100).fill(0);
  reviews.forEach((r, i) => {
    if (i % 2 === 0 && r.label === label) vectors.get(`review-${i}`)!.forEach((x, d) => (sum[d]! += x));
  });
  return sum;
};
const [neg, pos] = [centroid(0), centroid(1)];
let right = 0;
let tested = 0;
reviews.forEach((r, i) => {
  if (i % 2 === 0) return;
  const v = vectors.get(`review-${i}`)!;
  right += Number((dot(v, pos) > dot(v, neg) ? 1 : 0) === r.label);
  tested++;
});
console.log(`\nReview sentiment by nearest centroid: ${((100 * right) / tested).toFixed(1)} % right on ${tested} held-out sentences (chance: 50 %).`);
console.log(`Output file: ${output}`);
