import * as grpc from "@grpc/grpc-js";
import { CollectionError } from "../../collections/errors.js";
import { OpenBatchError } from "../../core/errors.js";
import { UnimplementedSearchOption } from "./search-options.js";

/** The errors of the gRPC handlers and their gRPC status codes. */

// ---------------------------------------------------------------- errors

/** A gRPC status for an error of ours: its HTTP status mapped as gRPC does (400/422 → INVALID_ARGUMENT, 409 → ABORTED, …; anything else INTERNAL). */
export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const message = err instanceof Error ? err.message : String(err);
  let code = grpc.status.INTERNAL;
  if (err instanceof GrpcUnimplementedError || err instanceof UnimplementedSearchOption) return { code: grpc.status.UNIMPLEMENTED, details: message };
  const status = err instanceof CollectionError || err instanceof OpenBatchError ? err.status : err instanceof GrpcInputError ? 400 : 500;
  if (status === 400 || status === 422) code = grpc.status.INVALID_ARGUMENT;
  else if (status === 401) code = grpc.status.UNAUTHENTICATED;
  else if (status === 403) code = grpc.status.PERMISSION_DENIED;
  else if (status === 404) code = grpc.status.NOT_FOUND;
  else if (status === 409) code = grpc.status.ABORTED; // a concurrent change won (e.g. one property, two data types)
  else if (status === 413 || status === 507) code = grpc.status.RESOURCE_EXHAUSTED;
  else if (status === 429) code = grpc.status.RESOURCE_EXHAUSTED;
  return { code, details: message };
}

/** A request we cannot serve (an unsupported option). */
export class GrpcInputError extends Error {}
/** An option of the Weaviate API OpenBatch does not implement: UNIMPLEMENTED, naming it. */
export class GrpcUnimplementedError extends Error {}
