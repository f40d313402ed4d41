import { Batcher, type BatcherOptions, type DynamicOptions, type FailedObject, type FailedReference, type Properties } from "./batcher.js";
import { Data } from "./data.js";
import type { HttpClient } from "./http.js";
import { Query } from "./query.js";

/** A property of a class: `dataType` is one of text, text[], int, number, boolean, date, uuid (and arrays), or a class name (reference). */
export interface PropertyConfig {
  name: string;
  dataType: string | string[];
  description?: string;
  [key: string]: unknown;
}

/** A class as `GET /v1/schema/{class}` returns it. */
export interface CollectionConfig {
  class: string;
  vectorizer?: string;
  moduleConfig?: Record<string, unknown>;
  vectorIndexType?: string;
  vectorIndexConfig?: { distance?: string; [key: string]: unknown };
  properties?: { name: string; dataType: string[]; [key: string]: unknown }[];
  [key: string]: unknown;
}

const PRIMITIVE = /^(text|string|int|number|boolean|date|uuid|geoCoordinates|phoneNumber|blob|object)(\[\])?$/;

/** Starts batchers of one collection; remembers the last one's failures, as the Python client's `collection.batch`. */
export class BatchFactory<P extends Properties = Properties> {
  private last: Batcher<P> | null = null;

  constructor(
    private readonly http: HttpClient,
    private readonly collection: string,
  ) {}

  /** Batch size and concurrency adapt to the server's queue (`GET /v1/nodes` batchStats, polled about once a second). */
  dynamic(options: DynamicOptions & BatcherOptions = {}): Batcher<P> {
    const { timeoutMs, maxObjectRetries, ...dynamic } = options;
    return this.start(new Batcher<P>(this.http, this.collection, { kind: "dynamic", ...dynamic }, { timeoutMs, maxObjectRetries }));
  }

  /** Requests of `batchSize` objects, at most `concurrency` in flight. */
  fixedSize(batchSize = 100, concurrency = 2, options: BatcherOptions = {}): Batcher<P> {
    return this.start(new Batcher<P>(this.http, this.collection, { kind: "fixedSize", batchSize, concurrency }, options));
  }

  /** At most `objectsPerMinute` objects a minute, spread evenly (about one request a second). */
  rateLimit(objectsPerMinute: number, options: BatcherOptions = {}): Batcher<P> {
    return this.start(new Batcher<P>(this.http, this.collection, { kind: "rateLimit", objectsPerMinute }, options));
  }

  /** Failed objects of the last batcher started here. */
  get failedObjects(): readonly FailedObject<P>[] {
    return this.last?.failedObjects ?? [];
  }

  /** Failed references of the last batcher started here. */
  get failedReferences(): readonly FailedReference[] {
    return this.last?.failedReferences ?? [];
  }

  private start(b: Batcher<P>): Batcher<P> {
    this.last = b;
    return b;
  }
}

/** One collection (Weaviate class): batch import, searches, objects by id. */
export class Collection<P extends Properties = Properties> {
  readonly batch: BatchFactory<P>;
  readonly query: Query<P>;
  readonly data: Data<P>;
  private propertyNames: Promise<string[]> | null = null;

  constructor(
    private readonly http: HttpClient,
    /** The class name (first letter upper-cased, as the server stores it). */
    readonly name: string,
  ) {
    this.batch = new BatchFactory<P>(http, name);
    this.data = new Data<P>(http, name);
    this.query = new Query<P>(http, name, () => this.returnableProperties());
  }

  /** The class's schema. */
  async config(): Promise<CollectionConfig> {
    const res = await this.http.request<CollectionConfig>("GET", `/v1/schema/${encodeURIComponent(this.name)}`);
    return res.body;
  }

  /** Non-reference property names, read from the schema once (queries need them listed). */
  private returnableProperties(): Promise<string[]> {
    this.propertyNames ??= this.config().then(
      (c) => (c.properties ?? []).filter((p) => (p.dataType ?? []).every((t) => PRIMITIVE.test(t))).map((p) => p.name),
      (err) => {
        this.propertyNames = null;
        throw err;
      },
    );
    return this.propertyNames;
  }
}
