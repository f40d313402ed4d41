import * as grpc from "@grpc/grpc-js";

/**
 * A request whose bytes did not decode as the method's protobuf message. It stands in for the message, so the call
 * reaches our handler, which answers INVALID_ARGUMENT: grpc-js itself answers a decoding failure with INTERNAL and a
 * bare "Error deserializing request", which tells the client neither that the fault is theirs nor what it was.
 */
export class MalformedRequest {
  constructor(
    /** What the client is told (gRPC status details). */
    readonly details: string,
  ) {}
}

/**
 * The service with each method's request decoder made total: bytes that do not decode (truncated, wrong wire types,
 * nesting too deep for the decoder) become a MalformedRequest instead of an exception.
 * @param service a grpc-js service definition (from @grpc/proto-loader). @returns a copy; `service` is not changed.
 */
export function withMalformedRequests(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const wrapped: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const invalid = (why: string) => new MalformedRequest(`The ${name} request is not a valid protobuf message (${why}).`);
        // protobufjs reads a string whose length runs past the end as the bytes that are there, and never checks a
        // known field's wire type: the outer framing is checked first, so such bytes are refused rather than guessed at.
        const framing = wireFormatError(bytes);
        if (framing) return invalid(framing);
        try {
          return decode(bytes);
        } catch (err) {
          return invalid(err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return wrapped as grpc.ServiceDefinition;
}

/** INVALID_ARGUMENT (3) for a request that did not decode. */
export const malformedStatus = (req: MalformedRequest): Partial<grpc.StatusObject> => ({ code: grpc.status.INVALID_ARGUMENT, details: req.details });

/**
 * Checks the framing of a protobuf message's top-level fields (encoding spec: tag varint, then by wire type a varint,
 * 8 bytes, a length-prefixed run, or 4 bytes): field numbers 1..2^29-1, wire types 0, 1, 2 and 5 (the deprecated
 * groups, 3 and 4, are not used by these protos), varints of at most 10 bytes, and every field inside the buffer.
 * Nested messages are left to the decoder. @returns what is wrong, or null when the framing holds.
 */
export function wireFormatError(bytes: Uint8Array): string | null {
  let pos = 0;
  /** The varint at `pos` (as a double: exact up to 2^53, enough for lengths and tags), or null when it does not end. */
  const varint = (): number | null => {
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) return null;
      const b = bytes[pos++]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return value;
    }
    return null;
  };
  while (pos < bytes.length) {
    const at = pos;
    const tag = varint();
    if (tag === null) return `a field tag at byte ${at} does not end`;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field < 1 || field >= 2 ** 29) return `field number ${field} at byte ${at} is out of range`;
    if (wire === 0) {
      if (varint() === null) return `the varint of field ${field} at byte ${at} does not end`;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > bytes.length) return `field ${field} at byte ${at} runs past the end of the message`;
    } else if (wire === 2) {
      const length = varint();
      if (length === null || pos + length > bytes.length) return `field ${field} at byte ${at} runs past the end of the message`;
      pos += length;
    } else {
      return `field ${field} at byte ${at} has wire type ${wire}, which is not used here`;
    }
  }
  return null;
}
