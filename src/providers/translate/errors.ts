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
