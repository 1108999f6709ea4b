/**
 * The browser app (web/, built into web/dist by `npm run build`) under /ui/.
 * Hashed assets are cached for good; index.html never is, so a new build is
 * picked up on the next load. Paths that are not files get index.html: the
 * app routes in the browser (/ui/c/<id>).
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../../context.js';

/** web/dist, from src/http/ui (tsx, tests) and dist/http/ui (built) alike. */
export const WEB_DIST = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

// The app loads only its own scripts and talks only to this origin.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hearth</title></head>
<body><h1>The hearth web app is not built</h1><p>Run <code>npm run build</code> (or start hearth with <code>npm start</code>, which builds it) and reload this page.</p></body></html>`;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export async function uiAppRoutes(app: FastifyInstance, _opts: { ctx: AppContext }): Promise<void> {
  await app.register(fastifyStatic, { root: WEB_DIST, serve: false });

  const sendIndex = (reply: FastifyReply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    if (!existsSync(`${WEB_DIST}index.html`)) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
    return reply.sendFile('index.html', { cacheControl: false, lastModified: false, etag: false });
  };

  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
  });

  app.get('/ui', async (_request, reply) => reply.redirect('/ui/'));

  app.get<{ Params: { '*': string } }>('/ui/*', async (request, reply) => {
    const path = request.params['*'] ?? '';
    // `send` (inside sendFile) refuses `..` and dotfiles; anything that is not a file is the app's own route.
    if (path && !path.includes('..') && isFile(`${WEB_DIST}${path}`)) {
      if (path.startsWith('assets/')) return reply.sendFile(path, { maxAge: 31_536_000_000, immutable: true });
      return reply.sendFile(path, { maxAge: 0 });
    }
    reply.header('cache-control', 'no-cache');
    return sendIndex(reply);
  });
}
