/** The public types of the collections service (what src/api/weaviate* renders and passes in). */
import type { CollectionStore } from "../store/collection-store.js";
import type { CollectionAccess } from "./access.js";
import type { MultiTargetQuery } from "./multi-target.js";

/** A vectorizer module's request: its Weaviate module name, model, and own endpoint (Ollama's `apiEndpoint`, OpenAI's `baseURL`, …) or null. */
export interface VectorizerRequest {
  module: string;
  model: string;
  endpoint: string | null;
}

/** What the vectorizer needs from the engine: embeddings through the provider serving a model, inside its rate limits. */
export interface Embedder {
  embedTexts(model: string, texts: string[], signal?: AbortSignal): Promise<number[][]>;
  /**
   * Embeds for a Weaviate vectorizer module (engine/direct-calls.ts embedForModule): the server config's mapping of
   * the module's model to a provider model first, then a provider serving the model, then the module's own endpoint.
   * Absent (test embedders): `embedTexts(model)`.
   */
  embedForModule?(req: VectorizerRequest, texts: string[], signal?: AbortSignal): Promise<number[][]>;
}

/** Where problems are reported (a pino logger fits). */
export interface CollectionLog {
  warn(obj: object, msg: string): void;
}

/** How CollectionService.open wires the service: its store, embedder, index folder, auto-schema switch and log. */
export interface CollectionServiceOptions {
  store: CollectionStore;
  embedder: Embedder;
  /** Folder of the saved vector indexes; null keeps them in memory only. */
  indexDir: string | null;
  /** Create unknown classes and properties on import, types inferred (Weaviate's default: on). */
  autoSchema?: boolean;
  /** Admin keys and grants when API keys are on (absent: each key reaches only the classes it created). */
  access?: CollectionAccess;
  log?: CollectionLog;
}

/** An object as the API renders it. */
export interface ObjectView {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  vector?: number[];
  /** Named vectors (`include=vector`), `default` included when the object has it. */
  vectors?: Record<string, number[]>;
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
  /** The tenant holding it (multi-tenant classes only). */
  tenant?: string;
}

/** The outcome of one object of a batch: the object echoed, and null or the reason it failed. */
export interface ObjectResult {
  object: Record<string, unknown>;
  error: string | null;
}

/** The outcome of one reference of a batch. */
export interface ReferenceResult {
  from: unknown;
  to: unknown;
  error: string | null;
}

/** A search hit with its object. `distance`/`certainty` are null without a vector search. */
export interface SearchResult {
  class: string;
  id: string;
  properties: Record<string, unknown>;
  vector: number[] | null;
  /** Every vector of the object by name (`default` for the legacy one), when vectors were asked for. */
  vectors: Record<string, number[]> | null;
  distance: number | null;
  certainty: number | null;
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
  /** BM25F or hybrid score (bm25.ts, hybrid.ts); absent for other searches. */
  score?: number;
  /** How the score came about, in Weaviate's words; absent for other searches. */
  explainScore?: string;
}

/** A keyword (BM25F) search: see bm25.ts. `properties` may carry boosts (`title^2`). */
export interface KeywordQuery {
  query: string;
  properties?: string[];
  operator?: "Or" | "And";
  minimumOrTokensMatch?: number;
}

/** An object a nearText movement goes toward or away from: its id, and the class its beacon named (null: none named). */
export interface MoveObject {
  id: string;
  class: string | null;
}

/**
 * Weaviate's nearText `moveTo` / `moveAwayFrom` (gRPC `move_to` / `move_away`): the query vector moved toward (or away
 * from) the mean of the concepts' vector and the objects' vectors, by `force` (moveTo 0..1, moveAwayFrom >= 0; 0: no
 * move). See near-text.ts.
 */
export interface NearTextMove {
  force: number;
  concepts?: string[];
  /** Objects of the searched class, their vectors (of the vector searched) joining the target. */
  objects?: MoveObject[];
}

/** A hybrid search (keyword + vector, fused; hybrid.ts): the vector is given, or the query embedded by the vectorizer. */
export interface HybridQuery extends KeywordQuery {
  /** Weight of the vector search, 0..1 (Weaviate's default 0.75). */
  alpha?: number;
  fusionType?: "rankedFusion" | "relativeScoreFusion";
  vector?: number[];
  /** Largest vector distance of the vector part (`maxVectorDistance`). */
  maxVectorDistance?: number;
  /** The vector part as a nearText search (gRPC `near_text`): its concepts, moved; excludes `vector`. */
  nearText?: { concepts: string[]; moveTo?: NearTextMove; moveAwayFrom?: NearTextMove };
}

/** A search: at most one of `vector`, `concepts` (embedded with the class's vectorizer) and `nearObject`. */
export interface SearchQuery {
  class: string;
  /** The tenant searched: required on a multi-tenant class, refused on another (tenants.ts). */
  tenant?: string;
  vector?: number[];
  concepts?: string[];
  /** Movements of a nearText (`concepts`) query vector: toward first, then away (near-text.ts). */
  moveTo?: NearTextMove;
  moveAwayFrom?: NearTextMove;
  nearObject?: string;
  /** Named vector searched (`targetVectors`; one only). Absent: the only vector, or `default`. */
  targetVector?: string;
  /** Several target vectors searched at once, their distances combined (multi-target.ts); `targetVector` is then unset. */
  targets?: MultiTargetQuery;
  where?: unknown;
  limit: number;
  offset?: number;
  /** Cursor of a listing without search: objects after this id. */
  after?: string;
  /** Largest distance returned. */
  distance?: number;
  /** Smallest certainty returned (cosine only). */
  certainty?: number;
  includeVector?: boolean;
  /** Keyword search (BM25F); with `where` it ranks the objects the filter lets through. */
  bm25?: KeywordQuery;
  /** Hybrid search; `targetVector` names the vector searched. */
  hybrid?: HybridQuery;
  /** Sort keys of a listing (sort.ts). */
  sort?: { path: string[]; order: "asc" | "desc" }[];
  /** Weaviate's autocut: keep the results before the n-th jump of the score/distance curve. */
  autocut?: number;
}

/** `DELETE /v1/batch/objects`. */
export interface DeleteQuery {
  class: string;
  /** The tenant deleted from: required on a multi-tenant class, refused on another (tenants.ts). */
  tenant?: string;
  where: unknown;
  dryRun: boolean;
  verbose: boolean;
}

/** The answer of `DELETE /v1/batch/objects`: matched, deleted and failed counts, and per-object outcomes. */
export interface DeleteResult {
  matches: number;
  limit: number;
  successful: number;
  failed: number;
  objects: { id: string; status: "SUCCESS" | "DRYRUN" | "FAILED"; errors?: { error: { message: string }[] } }[];
}

/** Most objects a batch delete handles in one call (Weaviate's QUERY_MAXIMUM_RESULTS). */
export const DELETE_LIMIT = 10_000;
