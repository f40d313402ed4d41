import { floatsFromBytes, singleVector } from "./conversion.js";
import { GrpcInputError, GrpcUnimplementedError } from "./errors.js";
import type { VectorsMsg } from "./messages.js";

/*
 * The query vector of a gRPC `NearVector` (Search, Aggregate, hybrid's sub-search): one vector, given once, in
 * `vector`, `vector_bytes`, `vectors`, or for one target in `vector_per_target` / `vector_for_targets`. A message that
 * gives it in several places that disagree is refused instead of one of them winning (Weaviate's parseNearVec picks
 * by precedence); what OpenBatch does not serve (several targets, several vectors for one target) is UNIMPLEMENTED.
 */

/** The vector-bearing fields of a decoded NearVector. */
export interface NearVectorMsg {
  vector?: number[];
  vectorBytes?: Buffer;
  vectors?: VectorsMsg[];
  vectorPerTarget?: Record<string, Buffer>;
  vectorForTargets?: { name?: string; vectorBytes?: Buffer; vectors?: VectorsMsg[] }[];
}

/** The vector searched and, when the message gives it for a named vector, that name. */
export interface NearVectorQuery {
  vector: number[];
  target?: string;
}

/** The 3.14 client's listOfVectors: a SINGLE-typed entry holding a 2-byte dimension header and the vectors. */
const isListOfVectors = (v: VectorsMsg) => v.type !== 2 && v.vectorBytes !== undefined && v.vectorBytes.length % 4 === 2;

const sameVector = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.fround(x) === Math.fround(b[i]!));

/**
 * Reads the one query vector of `nv`.
 * @param target the target vector the search names (targetOf in search.ts), if any.
 * @param what how messages name the message: "nearVector", "aggregate nearVector", ….
 * @returns the vector, and the target it was given for (vector_per_target, vector_for_targets, a named `vectors` entry).
 * @throws GrpcUnimplementedError for listOfVectors (several vectors for one target) and vectors for several targets;
 * GrpcInputError when the vector is given in several fields that differ, with a vector per target too (Weaviate's
 * `near_vector: either vector or VectorPerTarget must be provided, not both`), for a target other than the one
 * searched (Weaviate's `near_vector: vector for target … is required. …`), or not at all.
 */
export function nearVectorQuery(nv: NearVectorMsg, target: string | undefined, what: string): NearVectorQuery {
  const forTargets = nv.vectorForTargets ?? [];
  const names = forTargets.map((t) => t.name ?? "");
  const lists = [...(nv.vectors ?? []), ...forTargets.flatMap((t) => t.vectors ?? [])];
  if (lists.some(isListOfVectors) || forTargets.some((t) => (t.vectors ?? []).length > 1) || new Set(names).size < names.length) {
    throw new GrpcUnimplementedError(`${what}: several query vectors for one target (listOfVectors) are not supported by OpenBatch: give one vector per target`);
  }

  const direct: [string, number[]][] = [];
  const fromBytes = floatsFromBytes(nv.vectorBytes);
  if (fromBytes) direct.push(["vector_bytes", fromBytes]);
  if (nv.vector && nv.vector.length) direct.push(["vector", nv.vector]);
  const listed = singleVector(nv.vectors);
  if (listed.vector) direct.push(["vectors", listed.vector]);
  if (direct.length > 1 && direct.some(([, v]) => !sameVector(v, direct[0]![1]))) {
    throw new GrpcInputError(`${what}: ${direct.map(([f]) => f).join(" and ")} give different query vectors: give one`);
  }

  const perTarget = [
    ...Object.entries(nv.vectorPerTarget ?? {}).map(([name, bytes]) => ({ field: "VectorPerTarget", name, v: floatsFromBytes(bytes) })),
    ...forTargets.map((t) => ({ field: "vector_for_targets", name: t.name ?? "", v: floatsFromBytes(t.vectorBytes) ?? singleVector(t.vectors).vector })),
    ...Object.entries(listed.named ?? {}).map(([name, v]) => ({ field: "vectors", name, v })),
  ];
  if (direct.length && perTarget.length) throw new GrpcInputError(`near_vector: either vector or ${perTarget[0]!.field} must be provided, not both`);
  if (perTarget.length > 1) throw new GrpcUnimplementedError(`${what}: a search over several target vectors (multi-target search) is not supported by OpenBatch: search one target vector at a time`);
  if (perTarget.length === 1) {
    const { name, v } = perTarget[0]!;
    if (target !== undefined && target !== name) throw new GrpcInputError(`near_vector: vector for target ${target} is required. All target vectors: [${target}] all vectors for targets [${name}]`);
    if (!v) throw new GrpcInputError(`${what}: no vector given for target ${name}`);
    return { vector: v, target: name };
  }
  if (!direct.length) throw new GrpcInputError(`${what}: no vector given`);
  return { vector: direct[0]![1] };
}
