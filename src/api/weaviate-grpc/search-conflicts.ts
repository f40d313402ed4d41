import { GrpcInputError } from "./errors.js";

/*
 * Inputs of one gRPC Search or Aggregate that contradict each other, refused (INVALID_ARGUMENT) with the message
 * Weaviate answers, so that no part of a request is dropped in favour of another:
 * - several search operators: usecases/traverser near_params_vector.go validateNearParams and explorer.go
 *   getClassKeywordBased (hybrid with another operator has no Weaviate message: Weaviate runs one and drops the other);
 * - a threshold given twice: parse_search_request.go / parse_aggregate_request.go (near_vector, near_object) and the
 *   nearText module's validation;
 * - the cursor with a search, offset or sort: explorer validateCursor and entities/filters ValidateCursor (`after` with
 *   a `where` filter stays served: an extension of ours).
 */

/** The search operators of a request, as the decoded messages carry them (absent: not sent). */
export interface SearchOperatorsMsg {
  nearVector?: unknown;
  nearObject?: unknown;
  nearText?: unknown;
  hybrid?: unknown;
  bm25?: unknown;
}

/**
 * Refuses a request with more than one search operator.
 * @throws GrpcInputError with Weaviate's message for nearVector / nearObject / nearText pairs and bm25 with one of them;
 * `found more than one search operator (…): use one` for hybrid with any other.
 */
export function refuseSeveralOperators(ops: SearchOperatorsMsg): void {
  const given = (["nearVector", "nearObject", "nearText", "hybrid", "bm25"] as const).filter((k) => ops[k] !== undefined && ops[k] !== null);
  if (given.length < 2) return;
  if (given.includes("hybrid")) throw new GrpcInputError(`found more than one search operator (${given.join(", ")}): use one`);
  const near = new Set(given);
  if (near.has("bm25")) throw new GrpcInputError("conflict: both near<Media> and keyword-based (bm25) arguments present, choose one");
  if (near.size === 3) throw new GrpcInputError("found 'nearText' and 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead");
  const pair = near.has("nearText") ? ["nearText", near.has("nearVector") ? "nearVector" : "nearObject"] : ["nearVector", "nearObject"];
  throw new GrpcInputError(`found both '${pair[0]}' and '${pair[1]}' parameters which are conflicting, choose one instead`);
}

/** A near* message's thresholds (proto3 `optional`: absent when not sent). */
export interface ThresholdsMsg {
  distance?: number;
  certainty?: number;
}

/**
 * Refuses distance and certainty given together (Weaviate applies neither choice silently).
 * @param kind which near* message: its name as Weaviate's message spells it.
 * @throws GrpcInputError `near_vector: cannot provide distance and certainty` (near_object the same; nearText:
 * `nearText cannot provide both distance and certainty`).
 */
export function refuseDistanceWithCertainty(kind: "nearVector" | "nearObject" | "nearText", near: ThresholdsMsg | undefined): void {
  if (!near || near.distance === undefined || near.certainty === undefined) return;
  if (kind === "nearText") throw new GrpcInputError("nearText cannot provide both distance and certainty");
  throw new GrpcInputError(`${kind === "nearVector" ? "near_vector" : "near_object"}: cannot provide distance and certainty`);
}

/** What a Search sends besides the cursor that the cursor cannot be combined with. */
export interface CursorCompanionsMsg extends SearchOperatorsMsg {
  after?: string;
  offset?: number;
  sort?: unknown[];
  groupBy?: unknown;
}

/**
 * Refuses `after` together with a search, groupBy, offset or sort, as Weaviate's cursor API does.
 * @throws GrpcInputError `cursor api: invalid 'after' parameter: other params cannot be set with after and limit
 * parameters` (a search or groupBy) or `cursor api: invalid 'after' parameter: offset,sort cannot be set with after
 * and limit parameters` (those of offset and sort given).
 */
export function refuseCursorCompanions(req: CursorCompanionsMsg): void {
  if (!req.after) return;
  const prefix = "cursor api: invalid 'after' parameter: ";
  const searching = (["nearVector", "nearObject", "nearText", "hybrid", "bm25", "groupBy"] as const).some((k) => req[k] !== undefined && req[k] !== null);
  if (searching) throw new GrpcInputError(`${prefix}other params cannot be set with after and limit parameters`);
  const params = [...(req.offset ? ["offset"] : []), ...(req.sort && req.sort.length ? ["sort"] : [])];
  if (params.length) throw new GrpcInputError(`${prefix}${params.join(",")} cannot be set with after and limit parameters`);
}
