// ComfyUI API helpers for tests: a WebSocket client that records frames, and the "done" frame.
import { createRequire } from 'node:module';

// ws comes with @fastify/websocket; Node 20 has no global WebSocket client.
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string) => any;

/** A WebSocket client that records frames and can wait for one. */
export async function connectComfy(baseUrl: string, clientId: string) {
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/ws?clientId=${clientId}`);
  const frames: any[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data: Buffer) => {
    frames.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const until = async (pred: (f: any) => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!frames.some(pred)) {
      if (Date.now() > deadline) throw new Error(`no such frame; got ${JSON.stringify(frames.map((f) => f.type))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return frames.find(pred);
  };
  return { frames, until, close: () => socket.close() };
}

/** The frame that ends a prompt for a client: `executing` with node null. */
export const doneFrame = (id: string) => (f: any) =>
  f.type === 'executing' && f.data.node === null && f.data.prompt_id === id;
