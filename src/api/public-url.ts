import type { FastifyRequest } from "fastify";

declare module "fastify" {
  interface FastifyInstance {
    /** Configured origin clients reach this server at (`publicURL`), without a trailing slash; null: the address served. */
    publicOrigin: string | null;
  }
}

/**
 * The origin to put in URLs we hand out (Anthropic `results_url`, Gemini upload and download URLs): the configured
 * `publicURL`, else the local address and port the client's connection reached. Never the request's `Host` header,
 * which a client chooses: `Host: evil.example` must not send the next call of an SDK somewhere else.
 * @returns e.g. "https://batch.example.com" or "http://127.0.0.1:8080".
 */
export function publicOrigin(req: FastifyRequest): string {
  if (req.server.publicOrigin) return req.server.publicOrigin;
  const { localAddress = "127.0.0.1", localPort } = req.raw.socket;
  const address = localAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
  return `http://${address.includes(":") ? `[${address}]` : address}:${localPort}`;
}

/**
 * Checks a configured public URL and returns its origin (scheme, host, port and path prefix, no trailing slash).
 * @throws Error when it is not an absolute http(s) URL.
 */
export function parsePublicURL(url: string): string {
  const u = new URL(url);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`publicURL must be an http(s) URL, got ${url}`);
  return `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
}
