import { Collections } from "./collections.js";
import { HttpClient, type HttpOptions } from "./http.js";

/** Options of {@link connect}. */
export type ConnectOptions = HttpOptions;

/** A connection to an OpenBatch (or Weaviate) server's collections API. */
export class OpenBatchClient {
  readonly collections: Collections;
  /** The transport, for requests the client has no method for. */
  readonly http: HttpClient;

  constructor(options: ConnectOptions) {
    this.http = new HttpClient(options);
    this.collections = new Collections(this.http);
  }

  /** Whether the server answers `GET /v1/.well-known/ready` with 2xx. */
  async isReady(): Promise<boolean> {
    try {
      const res = await this.http.request("GET", "/v1/.well-known/ready", { retry: false, timeoutMs: 5000, accept: [503] });
      return res.status < 300;
    } catch {
      return false;
    }
  }

  /** Nothing to release (connections are pooled by fetch); kept for symmetry with the Python client. */
  async close(): Promise<void> {}
}

/**
 * Connects to a server: `connect({url: "http://127.0.0.1:8080", apiKey})`. No request is made until one is needed.
 */
export function connect(options: ConnectOptions): OpenBatchClient {
  return new OpenBatchClient(options);
}
