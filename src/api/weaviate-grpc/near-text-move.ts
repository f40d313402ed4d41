import type { NearTextMove } from "../../collections/collection-service.js";
import { GrpcInputError } from "./errors.js";

/*
 * gRPC NearTextSearch `move_to` / `move_away` (weaviate.proto NearTextSearch.Move {float force = 1; repeated string
 * concepts = 2; repeated string uuids = 3}) and the uuids a Search names, parsed as Weaviate parses them.
 * OpenBatch's weaviate.proto declares both move fields as `bytes` (the wire encoding of an embedded message), so the
 * message arrives undecoded and is read here.
 */

/**
 * A uuid as Google's uuid.Parse (which Weaviate's gRPC uses) reads it: 36 characters with dashes, `urn:uuid:` before
 * them, in braces, or 32 hex digits.
 * @returns the canonical lower-case form, or the error uuid.Parse gives (`invalid UUID length: 3`, `invalid UUID
 * format`, `invalid urn prefix: "…"`).
 */
export function parseUuid(s: string): { uuid: string } | { error: string } {
  let body = s;
  if (s.length === 45) {
    if (s.slice(0, 9).toLowerCase() !== "urn:uuid:") return { error: `invalid urn prefix: ${JSON.stringify(s.slice(0, 9))}` };
    body = s.slice(9);
  } else if (s.length === 38) body = s.slice(1, 37);
  else if (s.length === 32) {
    if (!/^[0-9a-f]{32}$/i.test(s)) return { error: "invalid UUID format" };
    const h = s.toLowerCase();
    return { uuid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` };
  } else if (s.length !== 36) return { error: `invalid UUID length: ${s.length}` };
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(body)) return { error: "invalid UUID format" };
  return { uuid: body.toLowerCase() };
}

/**
 * A Move message's bytes → the movement it asks for (`which` names it in errors). Empty bytes (every field at its
 * default) are force 0: no move.
 * @throws GrpcInputError for bytes that are not a Move message, and for a uuid that does not parse (uuid.Parse's
 * error, as Weaviate's extractNearTextMove answers it).
 */
export function decodeMove(bytes: Buffer | undefined, which: "moveTo" | "moveAway"): NearTextMove | undefined {
  if (bytes === undefined || bytes === null) return undefined;
  const move: NearTextMove = { force: 0 };
  const concepts: string[] = [];
  const uuids: string[] = [];
  const broken = () => new GrpcInputError(`nearText: ${which} is not a valid NearTextSearch.Move message`);
  let pos = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= bytes.length || shift > 63) throw broken();
      const b = bytes[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (pos < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 2) {
      const len = varint();
      if (pos + len > bytes.length) throw broken();
      const text = bytes.toString("utf8", pos, pos + len);
      pos += len;
      if (field === 2) concepts.push(text);
      else if (field === 3) uuids.push(text);
    } else if (wire === 5) {
      if (pos + 4 > bytes.length) throw broken();
      if (field === 1) move.force = bytes.readFloatLE(pos);
      pos += 4;
    } else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else throw broken();
  }
  if (pos > bytes.length) throw broken();
  if (concepts.length) move.concepts = concepts;
  if (uuids.length) {
    move.objects = uuids.map((u) => {
      const p = parseUuid(u);
      if ("error" in p) throw new GrpcInputError(p.error);
      return { id: p.uuid, class: null };
    });
  }
  return move;
}
