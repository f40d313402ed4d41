import type { Caller, CollectionService, ReferencedObject, SearchQuery, SearchResult } from "../../collections/collection-service.js";
import type { ClassDef } from "../../collections/schema.js";
import { checkGroupBy, groupHits } from "../../collections/group-by.js";
import { nonRefProps, referenceRequests, renderReferences, vectorFields, type RefPropertiesRequestMsg } from "./return-references.js";
import { applySearchOptions } from "./search-options.js";
import { refuseCursorCompanions, refuseDistanceWithCertainty, refuseSeveralOperators } from "./search-conflicts.js";
import { nearVectorQuery } from "./near-vector.js";
import { decodeMove, parseUuid } from "./near-text-move.js";
import { hybridMultiTargets, multiTargetsOf } from "./multi-target-args.js";
import { applyTargets } from "../../collections/multi-target.js";
import { toWhere } from "./conversion.js";
import { GrpcInputError, GrpcUnimplementedError } from "./errors.js";
import { seconds, type SearchRequestMsg, type TargetedMsg } from "./messages.js";

/** The `weaviate.v1.Weaviate/Search` handler. */

/** Results of a search that sets no limit (Weaviate's QUERY_DEFAULTS_LIMIT). */
const DEFAULT_LIMIT = 10;

/**
 * Search: nearVector / nearText / nearObject / listing, filters (through references too), limit, offset, cursor;
 * properties, references (return-references.ts) and metadata as asked. Inputs that contradict each other are refused
 * with Weaviate's messages (search-conflicts.ts, near-vector.ts), never one dropped for another. groupBy groups the
 * `limit` nearest hits (without a limit, Weaviate's default 10), as Weaviate's shard grouper does and GraphQL groupBy
 * here does; with offset it is refused, as GraphQL refuses it. nearText's moveTo / moveAway are served
 * (near-text-move.ts, collections/near-text.ts); `after` must be a uuid.
 * @throws GrpcInputError (INVALID_ARGUMENT), GrpcUnimplementedError (UNIMPLEMENTED) and the collections' errors.
 */
export async function search(collections: CollectionService, caller: Caller, req: SearchRequestMsg): Promise<unknown> {
  const start = performance.now();
  refuseUnimplemented(req);
  const operators = { nearVector: req.nearVector, nearObject: req.nearObject, nearText: req.nearText, hybrid: req.hybridSearch, bm25: req.bm25Search };
  refuseSeveralOperators(operators);
  refuseCursorCompanions({ ...operators, after: req.after, offset: req.offset, sort: req.sortBy, groupBy: req.groupBy });
  // Weaviate's entities/filters ValidateCursor: the cursor is a uuid (uuid.Parse's forms), its error wrapped.
  const after = req.after ? parseUuid(req.after) : null;
  if (after && "error" in after) throw new GrpcInputError(`cursor api: invalid 'after' parameter: after parameter '${req.after}' is not a valid uuid: ${after.error}`);
  refuseDistanceWithCertainty("nearVector", req.nearVector);
  refuseDistanceWithCertainty("nearObject", req.nearObject);
  refuseDistanceWithCertainty("nearText", req.nearText);
  const def = collections.getClass(caller, req.collection ?? "");
  const meta = req.metadata ?? {};
  const wantVector = meta.vector === true || (meta.vectors ?? []).length > 0;
  // The tenant of a multi-tenant class (refused on another, required on one: collections/tenants.ts).
  const q: SearchQuery = { class: req.collection ?? "", ...(req.tenant ? { tenant: req.tenant } : {}), limit: req.limit || DEFAULT_LIMIT, offset: req.offset || undefined, after: after?.uuid, includeVector: wantVector };
  // Definitions of the classes a filter or a reference reaches, read once per request.
  const defs = new Map<string, ClassDef | null>();
  const classOf = (name: string) => {
    if (!defs.has(name)) defs.set(name, collections.getClass(caller, name));
    return defs.get(name)!;
  };
  if (req.filters) q.where = toWhere(req.filters, def, classOf);
  // Several target vectors at once (multi-target-args.ts); one goes on through targetOf / nearVectorQuery.
  const hybridMulti = req.hybridSearch ? hybridMultiTargets(req.hybridSearch) : null;
  applySearchOptions(hybridMulti ? { ...req, hybridSearch: hybridMulti.rest } : req, q);
  const near = req.nearVector ?? req.nearText ?? req.nearObject;
  const multi = near ? multiTargetsOf(near, req.nearVector) : null;
  const target = near && !multi ? targetOf(near) : undefined;
  if (target !== undefined) q.targetVector = target;
  if (req.nearVector && multi) {
    if (multi.vector) q.vector = multi.vector;
  } else if (req.nearVector) {
    const { vector, target: given } = nearVectorQuery(req.nearVector, target, "nearVector");
    if (given !== undefined) q.targetVector = given;
    q.vector = vector;
  } else if (req.nearText) {
    const concepts = req.nearText.query ?? [];
    if (concepts.length === 0) throw new GrpcInputError("nearText: no concepts given");
    q.concepts = concepts;
    // The decoded message types move_to / move_away as bytes: the Move message arrives undecoded (near-text-move.ts).
    const moveTo = decodeMove(req.nearText.moveTo, "moveTo");
    const moveAwayFrom = decodeMove(req.nearText.moveAway, "moveAway");
    if (moveTo) q.moveTo = moveTo;
    if (moveAwayFrom) q.moveAwayFrom = moveAwayFrom;
  } else if (req.nearObject) {
    if (!req.nearObject.id) throw new GrpcInputError("nearObject: no id given");
    q.nearObject = req.nearObject.id;
  }
  if (near?.distance !== undefined) q.distance = near.distance;
  if (near?.certainty !== undefined) q.certainty = near.certainty;
  const targets = multi?.targets ?? hybridMulti?.targets;
  if (targets) applyTargets(q, targets);

  // groupBy (group-by.ts): a wider search, then its hits in groups.
  const g = req.groupBy;
  const grouping = g && def ? { property: checkGroupBy(def, g.path?.[0] ?? "", g.numberOfGroups ?? 0, g.objectsPerGroup ?? 0), groups: g.numberOfGroups!, per: g.objectsPerGroup! } : null;
  if (grouping) {
    if (!(q.vector || q.concepts || q.nearObject || q.hybrid || q.bm25 || q.targets)) throw new GrpcInputError("groupBy needs a search (nearVector, nearText, nearObject, hybrid, bm25)");
    if ((g!.path ?? []).length !== 1) throw new GrpcInputError("groupBy: path must name one property");
    // Weaviate pages the groups formed from offset+limit hits, which differs between its vector and hybrid paths.
    if (q.offset) throw new GrpcInputError("groupBy cannot be combined with offset");
  }
  const refRequests = referenceRequests(req.properties);
  // Checked before the search, so a bad request fails alike with or without hits.
  if (refRequests.length) await collections.resolveReferences(caller, q.class, [], refRequests, q.tenant);
  const hits = await collections.search(caller, q);
  const named = def?.vectorConfig !== undefined;
  const refReqMsgs = req.properties?.refProperties ?? [];
  const resolved = refRequests.length ? await collections.resolveReferences(caller, q.class, hits.map((h) => h.id), refRequests, q.tenant) : new Map<string, ReferencedObject[][]>();
  const render = (h: SearchResult) => ({
    properties: {
      nonRefProps: nonRefProps(h.properties, def, req.properties),
      targetCollection: h.class,
      refProps: renderReferences(refReqMsgs, resolved.get(h.id) ?? [], classOf),
      refPropsRequested: refRequests.length > 0,
    },
    metadata: {
      id: h.id,
      ...(meta.creationTimeUnix ? { creationTimeUnix: h.creationTimeUnix, creationTimeUnixPresent: true } : {}),
      ...(meta.lastUpdateTimeUnix ? { lastUpdateTimeUnix: h.lastUpdateTimeUnix, lastUpdateTimeUnixPresent: true } : {}),
      ...(meta.distance && h.distance !== null ? { distance: h.distance, distancePresent: true } : {}),
      ...(meta.certainty && h.certainty !== null ? { certainty: h.certainty, certaintyPresent: true } : {}),
      ...(meta.score && h.score !== undefined ? { score: h.score, scorePresent: true } : {}),
      ...(meta.explainScore && h.explainScore !== undefined ? { explainScore: h.explainScore, explainScorePresent: true } : {}),
      ...(meta.isConsistent ? { isConsistent: true, isConsistentPresent: true } : {}),
      ...vectorFields(h, meta, named),
    },
  });
  if (grouping) {
    const groupByResults = groupHits(hits, grouping.property, grouping.groups, grouping.per).map((x) => ({
      name: x.name,
      minDistance: x.minDistance,
      maxDistance: x.maxDistance,
      numberOfObjects: x.numberOfObjects,
      objects: x.hits.map(render),
    }));
    return { took: seconds(start), results: [], groupByResults };
  }
  const results = hits.map(render);
  return { took: seconds(start), results };
}

/** The one target vector a near* search names (absent: none named). @throws GrpcUnimplementedError for several. */
export function targetOf(near: TargetedMsg): string | undefined {
  const names = [...new Set([...(near.targetVectors ?? []), ...(near.targets?.targetVectors ?? [])])];
  if (near.selection && near.selection.length) throw new GrpcUnimplementedError("search: diversity selection (MMR) is not supported by OpenBatch");
  if (names.length > 1) throw new GrpcUnimplementedError(`search: a search over several target vectors (${names.join(", ")}) is not supported by OpenBatch: search one target vector at a time`);
  if (near.targets?.weightsForTargets?.length) throw new GrpcUnimplementedError("search: weights for target vectors are not supported by OpenBatch");
  return names[0];
}

/** Search options the client can send that OpenBatch does not implement: UNIMPLEMENTED naming the first one set. */
function refuseUnimplemented(req: SearchRequestMsg): void {
  const sent = (b: Buffer | Buffer[] | undefined) => (Array.isArray(b) ? b.length > 0 : b !== undefined && b !== null);
  const options: [keyof SearchRequestMsg, string][] = [
    ["nearImage", "nearImage"],
    ["nearAudio", "nearAudio"],
    ["nearVideo", "nearVideo"],
    ["nearDepth", "nearDepth"],
    ["nearThermal", "nearThermal"],
    ["nearImu", "nearIMU"],
    ["generative", "generative search (generate)"],
    ["rerank", "rerank"],
    ["boost", "boost"],
  ];
  for (const [field, name] of options) if (sent(req[field] as Buffer | Buffer[] | undefined)) throw new GrpcUnimplementedError(`search: ${name} is not supported by OpenBatch`);
  if (req.metadata?.queryProfile === true || asksQueryProfile(req.properties?.refProperties ?? [])) throw new GrpcUnimplementedError("search: query profiling (returnMetadata queryProfile) is not supported by OpenBatch");
}

/** Whether a reference request, at any depth, asks for a query profile in its metadata. */
function asksQueryProfile(refs: RefPropertiesRequestMsg[]): boolean {
  return refs.some((r) => (r.metadata as { queryProfile?: boolean } | undefined)?.queryProfile === true || asksQueryProfile(r.properties?.refProperties ?? []));
}
