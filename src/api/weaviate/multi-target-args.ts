import { CollectionError } from "../../collections/errors.js";
import { TARGET_COMBINATIONS, type TargetCombination, type TargetsInput } from "../../collections/multi-target.js";

/*
 * GraphQL `Get` target vectors of nearVector / nearText / nearObject / hybrid, read into collections/multi-target.ts's
 * terms (Weaviate's common_filters ExtractTargets and ExtractNearVector):
 *   targetVectors: ["a", "b"]                           (minimum)
 *   targets: {targetVectors: ["a", "b", "b"], combinationMethod: minimum|sum|average|manualWeights|relativeScore,
 *             weights: {a: 0.5, b: [0.2, 0.3]}}          (targets wins over targetVectors, as in Weaviate)
 *   nearVector: {vectorPerTarget: {a: [1, 0], b: [[0, 1], [1, 1]]}}   (a vector, or several, per target)
 * Wrong shapes are 422s naming the field.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const bad = (message: string) => new CollectionError(422, message);
const isVector = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");

function names(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad(`${what} must be a list of strings`);
  return v as string[];
}

/**
 * The targets a near* / hybrid argument names, or null when it names none (`targetVectors`, `targets`, and for
 * nearVector `vectorPerTarget`). @throws CollectionError 422 for a field of the wrong type or an unknown
 * combinationMethod.
 */
export function parseTargetsArg(o: Record<string, unknown>, op: string): TargetsInput | null {
  const out: TargetsInput = {};
  const t = o.targets;
  if (t !== undefined && t !== null) {
    if (!isObject(t)) throw bad(`${op}: targets must be an object {targetVectors, combinationMethod, weights}`);
    for (const k of Object.keys(t)) if (!["targetVectors", "combinationMethod", "weights"].includes(k) && t[k] !== undefined) throw bad(`${op}.targets: field '${k}' is not supported by OpenBatch (supported: targetVectors, combinationMethod, weights)`);
    if (t.targetVectors === undefined || t.targetVectors === null) throw bad(`${op}.targets: targetVectors is required field`);
    out.targetVectors = names(t.targetVectors, `${op}.targets.targetVectors`);
    if (t.combinationMethod !== undefined && t.combinationMethod !== null) {
      if (!TARGET_COMBINATIONS.includes(t.combinationMethod as TargetCombination)) throw bad(`${op}.targets: unknown combinationMethod ${JSON.stringify(t.combinationMethod)}: use one of ${TARGET_COMBINATIONS.join(", ")}`);
      out.combination = t.combinationMethod as TargetCombination;
    }
    if (t.weights !== undefined && t.weights !== null) {
      if (!isObject(t.weights)) throw bad(`${op}.targets.weights must be an object {target: weight or [weights]}`);
      for (const [k, w] of Object.entries(t.weights)) {
        if (typeof w !== "number" && !(Array.isArray(w) && w.every((x) => typeof x === "number"))) throw bad(`weight for target ${k} is not a float or list of floats, got ${JSON.stringify(w)}`);
      }
      out.weights = t.weights as Record<string, number | number[]>;
    }
  } else if (o.targetVectors !== undefined && o.targetVectors !== null) {
    out.targetVectors = names(o.targetVectors, `${op}: targetVectors`);
  }
  const per = o.vectorPerTarget;
  if (per !== undefined && per !== null) {
    if (!isObject(per)) throw bad(`${op}: vectorPerTarget must be an object {target: vector or [vectors]}`);
    out.vectorPerTarget = Object.entries(per).map(([name, v]) => {
      if (isVector(v)) return [name, [v]];
      if (Array.isArray(v) && v.length > 0 && v.every(isVector)) return [name, v as number[][]];
      throw bad(`vectorPerTarget should be a map with strings as keys and a vector or a list of vectors as values: target ${name} has ${JSON.stringify(v)}`);
    });
  }
  return out.targetVectors !== undefined || out.vectorPerTarget !== undefined ? out : null;
}

/** A hybrid argument split into its targets (parseTargetsArg) and the rest, for search-args.ts's parseHybridArg. */
export function splitHybridTargets(v: unknown): { rest: unknown; targets: TargetsInput | null } {
  if (!isObject(v)) return { rest: v, targets: null };
  const { targetVectors: _t, targets: _ts, ...rest } = v;
  return { rest, targets: parseTargetsArg(v, "hybrid") };
}
