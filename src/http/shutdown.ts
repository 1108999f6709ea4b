import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How long a WebSocket client gets to answer the close handshake before its socket is cut. */
const WEBSOCKET_CLOSE_GRACE_MS = 1_000;

/** What shutdown needs of a `ws` client and server (the package ships no types of its own). */
interface WebSocketClient {
  readonly readyState: number;
  readonly CLOSED: number;
  close(code: number, reason: string): void;
  terminate(): void;
}
interface WebSocketServer {
  readonly clients: Set<WebSocketClient>;
  close(done: () => void): void;
}

/**
 * `@fastify/websocket`'s `preClose`: closes every client with 1001 ("going away") and cuts those that
 * do not answer the close handshake within a second. (Its default closes without a code and lets
 * `ws` wait 30 s for each silent client, which held `hearth serve` open until its shutdown timeout.)
 */
export function closeWebSockets(this: FastifyInstance, done: () => void): void {
  const server = (this as unknown as { websocketServer: WebSocketServer }).websocketServer;
  const clients = [...server.clients];
  for (const client of clients) client.close(1001, 'hearth is shutting down');
  const open = (client: WebSocketClient) => client.readyState !== client.CLOSED;
  const deadline = Date.now() + WEBSOCKET_CLOSE_GRACE_MS;
  const check = () => {
    if (clients.some(open) && Date.now() < deadline) {
      setTimeout(check, 25).unref();
      return;
    }
    for (const client of clients.filter(open)) client.terminate();
    server.close(() => done());
  };
  check();
}

/**
 * Sockets whose response has gone out while the request body is still arriving (an upload refused
 * before its body was read: Node discards the rest so the connection can be reused). Such a socket
 * is neither idle nor in flight, so `server.close()` would wait for the client to finish sending.
 * Shutdown cuts them: nobody is waiting for an answer on them any more.
 */
export class UnreadBodies {
  private readonly sockets = new Set<Socket>();

  /** Installs the hook that notices a response finishing before its request body did. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request) => {
      const raw = request.raw;
      if (raw.complete || raw.socket.destroyed) return;
      const socket = raw.socket;
      this.sockets.add(socket);
      const forget = () => this.sockets.delete(socket);
      raw.once('end', forget);
      raw.once('close', forget);
    });
  }

  /** Cuts every socket still receiving a body nobody reads. */
  abort(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
