import { formatOf, type Endpoint, type WireFormat } from "../../core/wire-format.js";

/** A request field that has no equivalent in the target format: the item fails with an error naming it. */
export class TranslationError extends Error {
  constructor(
    /** The field, as a path in the source request (e.g. "tools", "messages[2].content[0].image_url"). */
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = "TranslationError";
  }
}

/**
 * Translates a request item from its endpoint's format to `to`, the format of the provider that will serve it.
 * Identity when the formats match. @returns the endpoint and body (JSON text) in the target format.
 * @throws TranslationError naming a field that cannot be translated.
 */
export function translateRequest(endpoint: Endpoint, body: string, to: WireFormat): { endpoint: Endpoint; body: string } {
  const from = formatOf(endpoint);
  if (from === to) return { endpoint, body };
  throw new TranslationError("endpoint", `Requests for ${endpoint} cannot be sent to a ${to}-format provider yet.`);
}

/**
 * Translates a successful upstream answer (to `sent`, in the provider's format) back into the format of the item's
 * own endpoint. Identity when the formats match. @returns the body as JSON text.
 */
export function translateResponse(own: Endpoint, sent: Endpoint, body: string): string {
  if (formatOf(own) === formatOf(sent)) return body;
  throw new TranslationError("response", `Answers from ${sent} cannot be rendered as ${own} yet.`);
}
