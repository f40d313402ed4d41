/** OpenBatch's TypeScript client: Weaviate-style collections with client-side batching. */
export * from "./client/index.js";
