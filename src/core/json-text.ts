/**
 * A JSON request body kept as the text it arrived as, beside its parsed value. The API layer hands this to the engine
 * instead of the bare value when the body is forwarded upstream as is: turning a 30 MB body back into text with
 * JSON.stringify costs ~70 ms on the event loop, and the text is already there.
 *
 * Only made for a body whose top-level object has no key twice (api/json-stream.ts checks): with a duplicate key the
 * upstream might read another `model` than the one we routed by, so such a body is handed on parsed, and re-encoded.
 */
export class JsonText {
  constructor(
    /** The body exactly as received (UTF-8 decoded). */
    readonly text: string,
    /** `JSON.parse(text)`, checked as the server's JSON parser checks (nesting depth, `__proto__` keys). */
    readonly value: unknown,
  ) {}
}
