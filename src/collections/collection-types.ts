/** The public types of the collections service (what src/api/weaviate* renders and passes in). */
import type { CollectionStore } from "../store/collection-store.js";
import type { CollectionAccess } from "./access.js";

/** What the vectorizer needs from the engine: embeddings through the provider serving a model, inside its rate limits. */
export interface Embedder {
  embedTexts(model: string, texts: string[], signal?: AbortSignal): Promise<number[][]>;
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
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
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
  distance: number | null;
  certainty: number | null;
  creationTimeUnix: number;
  lastUpdateTimeUnix: number;
}

/** A search: at most one of `vector`, `concepts` (embedded with the class's vectorizer) and `nearObject`. */
export interface SearchQuery {
  class: string;
  vector?: number[];
  concepts?: string[];
  nearObject?: string;
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
}

/** `DELETE /v1/batch/objects`. */
export interface DeleteQuery {
  class: string;
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
