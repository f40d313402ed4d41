import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** A test HTTP server on 127.0.0.1 with a free port, whose `stop` drops open keep-alive sockets instead of waiting. */
export interface LocalHttpServer {
  server: Server;
  /** e.g. "http://127.0.0.1:41234" */
  origin: string;
  stop(): Promise<void>;
}

/** Starts `handler` on 127.0.0.1, port chosen by the OS. */
export async function listenLocal(handler: (req: IncomingMessage, res: ServerResponse) => void, opts: { keepAliveTimeoutMs?: number } = {}): Promise<LocalHttpServer> {
  const server = createServer(handler);
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server,
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
