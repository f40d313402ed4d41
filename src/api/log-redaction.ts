/** Request headers that carry a credential: an OpenBatch key, or a provider key in gateway mode. */
export const SECRET_HEADERS = ["authorization", "x-api-key", "x-goog-api-key", "x-openbatch-api-key", "proxy-authorization", "cookie"] as const;

/**
 * pino `redact` paths covering every secret header wherever a logger or plugin puts a headers object: at the top of a
 * log line, one level down (Fastify's `req.headers`) and two levels down (`@fastify/multipart` logs
 * `busboyOptions.headers` at trace level).
 */
export const REDACT_PATHS: string[] = SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`, `*.*.headers["${h}"]`]);

/**
 * pino options with secret headers censored at every level, so `OPENBATCH_LOG_LEVEL=trace` never writes a key.
 * @param options pino options (e.g. `{level}`); their own `redact` paths are kept.
 */
export function withRedaction<T extends object>(options: T): T & { redact: { paths: string[]; censor: string } } {
  const own = (options as { redact?: string[] | { paths?: string[] } }).redact;
  const paths = Array.isArray(own) ? own : (own?.paths ?? []);
  return { ...options, redact: { paths: [...REDACT_PATHS, ...paths], censor: "[redacted]" } };
}
