import type { HttpClient } from "./http.js";
import type { Properties } from "./batcher.js";
import type { WhereFilter } from "./query.js";

/** An object as stored. */
export interface StoredObject<P extends Properties = Properties> {
  uuid: string;
  collection: string;
  properties: P;
  /** Present with `includeVector`. */
  vector?: number[];
  creationTimeUnix?: number;
  lastUpdateTimeUnix?: number;
}

/** Result of {@link Data.deleteMany}. */
export interface DeleteManyResult {
  matches: number;
  successful: number;
  failed: number;
  /** With `verbose`: each matched object and its status (SUCCESS, DRYRUN, FAILED). */
  objects?: { id: string; status: string; errors?: unknown }[];
}

/** Objects of one collection by id: `GET /v1/objects/{class}/{id}`, `DELETE /v1/batch/objects`. */
export class Data<P extends Properties = Properties> {
  constructor(
    private readonly http: HttpClient,
    private readonly collection: string,
  ) {}

  /** @returns the object, or null when there is none with this uuid. */
  async get(uuid: string, options: { includeVector?: boolean } = {}): Promise<StoredObject<P> | null> {
    const res = await this.http.request<{ id: string; class: string; properties?: P; vector?: number[]; creationTimeUnix?: number; lastUpdateTimeUnix?: number } | null>(
      "GET",
      `/v1/objects/${encodeURIComponent(this.collection)}/${encodeURIComponent(uuid)}`,
      { query: { include: options.includeVector ? "vector" : undefined }, accept: [404] },
    );
    if (res.status === 404 || !res.body) return null;
    const b = res.body;
    const obj: StoredObject<P> = { uuid: b.id, collection: b.class, properties: (b.properties ?? {}) as P };
    if (b.vector) obj.vector = b.vector;
    if (b.creationTimeUnix !== undefined) obj.creationTimeUnix = b.creationTimeUnix;
    if (b.lastUpdateTimeUnix !== undefined) obj.lastUpdateTimeUnix = b.lastUpdateTimeUnix;
    return obj;
  }

  /** Whether an object with this uuid exists. */
  async exists(uuid: string): Promise<boolean> {
    return (await this.get(uuid)) !== null;
  }

  /** Deletes every object matching the filter (`dryRun` only counts them). */
  async deleteMany(where: WhereFilter, options: { dryRun?: boolean; verbose?: boolean } = {}): Promise<DeleteManyResult> {
    const res = await this.http.request<{ results?: DeleteManyResult }>("DELETE", "/v1/batch/objects", {
      body: { match: { class: this.collection, where }, output: options.verbose ? "verbose" : "minimal", dryRun: options.dryRun === true },
    });
    const r = res.body?.results;
    return { matches: r?.matches ?? 0, successful: r?.successful ?? 0, failed: r?.failed ?? 0, ...(r?.objects ? { objects: r.objects } : {}) };
  }
}
