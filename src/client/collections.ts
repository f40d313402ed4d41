import type { Properties } from "./batcher.js";
import { Collection, type CollectionConfig, type PropertyConfig } from "./collection.js";
import type { HttpClient } from "./http.js";

/** Distance metrics of the vector index. */
export type Distance = "cosine" | "dot" | "l2-squared" | "manhattan" | "hamming";

/** Arguments of {@link Collections.create}. */
export interface CreateCollectionOptions {
  name: string;
  /** Typed properties; omitted ones are added by the server's auto-schema on import. */
  properties?: PropertyConfig[];
  /** e.g. `text2vec-openbatch`, or `none` to bring your own vectors (default: the server's). */
  vectorizer?: string;
  /** e.g. `{"text2vec-openbatch": {"model": "local/glove-100d"}}`. */
  moduleConfig?: Record<string, unknown>;
  /** Vector index metric (default: the server's, cosine). */
  distance?: Distance;
  description?: string;
}

/** Weaviate stores class names with an upper-case first letter. */
export function className(name: string): string {
  if (!name) throw new Error("a collection needs a name");
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** Collections (classes) of the schema: `/v1/schema`. */
export class Collections {
  constructor(private readonly http: HttpClient) {}

  /** Creates a class. @returns its handle. @throws ApiError (e.g. 422 when it exists). */
  async create<P extends Properties = Properties>(options: CreateCollectionOptions): Promise<Collection<P>> {
    const name = className(options.name);
    const body: Record<string, unknown> = {
      class: name,
      properties: (options.properties ?? []).map((p) => ({ ...p, dataType: Array.isArray(p.dataType) ? p.dataType : [p.dataType] })),
    };
    if (options.description !== undefined) body.description = options.description;
    if (options.vectorizer !== undefined) body.vectorizer = options.vectorizer;
    if (options.moduleConfig !== undefined) body.moduleConfig = options.moduleConfig;
    if (options.distance !== undefined) {
      body.vectorIndexType = "hnsw";
      body.vectorIndexConfig = { distance: options.distance };
    }
    await this.http.request("POST", "/v1/schema", { body });
    return new Collection<P>(this.http, name);
  }

  /** A handle on a class, without a request (it need not exist yet: auto-schema creates it on import). */
  use<P extends Properties = Properties>(name: string): Collection<P> {
    return new Collection<P>(this.http, className(name));
  }

  /** Alias of {@link use}. */
  get<P extends Properties = Properties>(name: string): Collection<P> {
    return this.use<P>(name);
  }

  async exists(name: string): Promise<boolean> {
    const res = await this.http.request("GET", `/v1/schema/${encodeURIComponent(className(name))}`, { accept: [404] });
    return res.status !== 404;
  }

  /** Deletes the class and all its objects (no error when it does not exist). */
  async delete(name: string): Promise<void> {
    await this.http.request("DELETE", `/v1/schema/${encodeURIComponent(className(name))}`, { accept: [404] });
  }

  /** Every class's schema. */
  async list(): Promise<CollectionConfig[]> {
    const res = await this.http.request<{ classes?: CollectionConfig[] }>("GET", "/v1/schema");
    return res.body?.classes ?? [];
  }
}
