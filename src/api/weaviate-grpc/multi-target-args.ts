import { resolveTargets, type MultiTargetQuery, type TargetCombination } from "../../collections/multi-target.js";
import { floatsFromBytes, singleVector } from "./conversion.js";
import { GrpcInputError, GrpcUnimplementedError } from "./errors.js";
import type { SearchOptionsMsg } from "./search-options.js";
import type { TargetedMsg, VectorsMsg } from "./messages.js";

/*
 * gRPC Search's multi-target vector search, read into collections/multi-target.ts's terms: the `Targets` message
 * (target_vectors, combination, weights_for_targets) of nearVector / nearText / nearObject / hybrid, and
 * nearVector's query vectors per target (vector_for_targets with `vectors` or vector_bytes, vector_per_target).
 * What the 3.14 client sends:
 *   targetVector: ['a','b']                  → targets {target_vectors [a, b]} (combination 0: minimum)
 *   multiTargetVector.sum|average|minimum(l)  → targets {combination 1|3|2, target_vectors l}
 *   multiTargetVector.manualWeights|relativeScore({a: 1, b: [2, 3]})
 *                                             → targets {combination 5|4, target_vectors [a, b, b],
 *                                                weights_for_targets [{a, 1}, {b, 2}, {b, 3}]}
 *   nearVector({a: v, b: [v1, v2]})          → vector_for_targets [{a, vectors [SINGLE v]}, {b, vectors [MULTI v1 v2]}]
 * A MULTI-typed entry (OpenBatch keeps no multi-vector indexes) is several query vectors for that target, as
 * Weaviate reads it for a regular index; so is the client's listOfVectors (a SINGLE entry with a 2-byte dimension
 * header). A search naming one target without weights stays on the single-target path (search.ts, near-vector.ts).
 */

/** gRPC CombinationMethod numbers → combination (0, unspecified: Weaviate's default, minimum). */
const COMBINATIONS: Record<number, TargetCombination> = { 0: "minimum", 1: "sum", 2: "minimum", 3: "average", 4: "relativeScore", 5: "manualWeights" };

type VectorForTargetMsg = { name?: string; vectorBytes?: Buffer; vectors?: VectorsMsg[] };
/** The nearVector fields read here. */
interface PerTargetMsg {
  vector?: number[];
  vectorBytes?: Buffer;
  vectors?: VectorsMsg[];
  vectorPerTarget?: Record<string, Buffer>;
  vectorForTargets?: VectorForTargetMsg[];
}

/** Vectors of `dim` floats after a 2-byte little-endian dimension header (the client's vectorsToBytes). */
function packedVectors(bytes: Buffer): number[][] {
  if (bytes.length < 2) throw new GrpcInputError("vector bytes: a list of vectors needs its 2-byte dimension header");
  const dim = bytes.readUInt16LE(0);
  const floats = floatsFromBytes(bytes.subarray(2)) ?? [];
  if (dim === 0 || floats.length % dim !== 0) throw new GrpcInputError(`vector bytes: ${floats.length} floats do not make vectors of dimension ${dim}`);
  return Array.from({ length: floats.length / dim }, (_, i) => floats.slice(i * dim, (i + 1) * dim));
}

/** The query vectors of one `Vectors` entry. */
function vectorsOfEntry(v: VectorsMsg): number[][] {
  const bytes = v.vectorBytes ?? Buffer.alloc(0);
  if (v.type === 2 || bytes.length % 4 === 2) return packedVectors(bytes);
  return [floatsFromBytes(bytes) ?? []];
}

/** nearVector's query vectors by target, or null when it gives none per target. */
function perTargetVectors(nv: PerTargetMsg | undefined): [string, number[][]][] | null {
  if (!nv) return null;
  const out: [string, number[][]][] = [];
  for (const [name, bytes] of Object.entries(nv.vectorPerTarget ?? {})) out.push([name, [floatsFromBytes(bytes) ?? []]]);
  for (const t of nv.vectorForTargets ?? []) {
    const vs = (t.vectors ?? []).length ? t.vectors!.flatMap(vectorsOfEntry) : [floatsFromBytes(t.vectorBytes) ?? []];
    out.push([t.name ?? "", vs]);
  }
  // Weaviate 1.29's named `vectors` entries are vectors per target too.
  for (const [name, v] of Object.entries(singleVector((nv.vectors ?? []).filter((v) => v.name && v.name !== "default" && v.type !== 2)).named ?? {})) out.push([name, [v]]);
  if (out.some(([, vs]) => vs.some((v) => v.length === 0))) throw new GrpcInputError("nearVector: an empty vector given for a target");
  return out.length ? out : null;
}

/** The one query vector nearVector gives for every target, or null. */
function directVector(nv: PerTargetMsg): number[] | null {
  const unnamed = (nv.vectors ?? []).filter((v) => !v.name || v.name === "default");
  if (unnamed.some((v) => v.type === 2)) throw new GrpcInputError("multi-vectors are not supported: OpenBatch keeps one vector per object");
  return floatsFromBytes(nv.vectorBytes) ?? (nv.vector && nv.vector.length ? nv.vector : null) ?? singleVector(unnamed).vector;
}

/**
 * The multi-target search a near* message (and its nearVector fields, when it is one) asks for, or null when it
 * names at most one target, no weights and at most one query vector (the single-target path serves it).
 * @returns the checked targets and, for nearVector, the one vector given for every target (null: given per target).
 * @throws GrpcUnimplementedError for diversity selection; GrpcInputError for an unknown combination, weights that do
 * not line up with target_vectors (Weaviate's `number of weights (n) does not match number of targets (m)`), a
 * vector given both for every target and per target; CollectionError 422 from resolveTargets.
 */
export function multiTargetsOf(near: TargetedMsg, nv?: PerTargetMsg): { targets: MultiTargetQuery; vector: number[] | null } | null {
  const perTarget = perTargetVectors(nv);
  const names = near.targets ? (near.targets.targetVectors ?? []) : (near.targetVectors ?? []);
  const weights = near.targets?.weightsForTargets ?? [];
  const vectorCount = (perTarget ?? []).reduce((n, [, vs]) => n + vs.length, 0);
  if (names.length <= 1 && weights.length === 0 && vectorCount <= 1) return null;
  if (near.selection && near.selection.length) throw new GrpcUnimplementedError("search: diversity selection (MMR) is not supported by OpenBatch");
  const combination = COMBINATIONS[near.targets?.combination ?? 0];
  if (!combination) throw new GrpcInputError(`unknown combination method ${near.targets!.combination}`);
  let byTarget: Record<string, number[]> | undefined;
  if (weights.length) {
    // Weaviate's extractWeights: one weight per target_vectors entry, in its order.
    if (weights.length !== names.length) throw new GrpcInputError(`number of weights (${weights.length}) does not match number of targets (${names.length})`);
    byTarget = {};
    weights.forEach((w, i) => {
      if ((w.target ?? "") !== names[i]) throw new GrpcInputError(`target vector ${w.target ?? ""} not found in target vectors`);
      (byTarget![names[i]!] ??= []).push(w.weight ?? 0);
    });
  }
  const vector = nv ? directVector(nv) : null;
  if (vector && perTarget) throw new GrpcInputError("near_vector: either vector or VectorPerTarget must be provided, not both");
  if (nv && !vector && !perTarget) throw new GrpcInputError("nearVector: no vector given");
  const targets = resolveTargets({ targetVectors: names, combination, ...(byTarget ? { weights: byTarget } : {}), ...(perTarget ? { vectorPerTarget: perTarget } : {}) });
  return { targets, vector };
}

/**
 * A hybrid search over several target vectors: its targets, and the Hybrid message without them (and without
 * nearVector's per-target vectors) for search-options.ts to read the rest; null when it is single-target.
 * @throws as multiTargetsOf.
 */
export function hybridMultiTargets(h: NonNullable<SearchOptionsMsg["hybridSearch"]>): { targets: MultiTargetQuery; rest: NonNullable<SearchOptionsMsg["hybridSearch"]> } | null {
  const nv = h.nearVector as PerTargetMsg | undefined;
  const perTargetOnly = nv && !directVector(nv);
  const found = multiTargetsOf(h as TargetedMsg, perTargetOnly ? nv : undefined);
  if (!found) return null;
  const { targetVectors: _t, targets: _ts, ...rest } = h;
  if (perTargetOnly) {
    const { vectorForTargets: _f, vectorPerTarget: _p, vectors: _v, ...sub } = h.nearVector!;
    // A nearVector left with nothing but its per-target vectors is gone; distance / certainty stay to be refused.
    if (Object.values(sub).some((x) => x !== undefined && !(Array.isArray(x) && x.length === 0))) rest.nearVector = sub;
    else delete rest.nearVector;
  }
  return { targets: found.targets, rest };
}
