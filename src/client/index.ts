export { connect, OpenBatchClient, type ConnectOptions } from "./client.js";
export { Collections, className, type CreateCollectionOptions, type Distance } from "./collections.js";
export { Collection, BatchFactory, type CollectionConfig, type PropertyConfig } from "./collection.js";
export {
  Batcher,
  type AddOptions,
  type BatchMode,
  type BatchObject,
  type BatchReference,
  type BatchStats,
  type BatcherOptions,
  type DynamicOptions,
  type FailedObject,
  type FailedReference,
  type Properties,
  type ReferenceTarget,
} from "./batcher.js";
export { Query, graphqlValue, type QueryObject, type SearchOptions, type WhereFilter } from "./query.js";
export { Data, type DeleteManyResult, type StoredObject } from "./data.js";
export { HttpClient, type HttpOptions, type RequestOptions, type RetryOptions } from "./http.js";
export { ApiError, ConnectionError, OpenBatchClientError } from "./errors.js";
