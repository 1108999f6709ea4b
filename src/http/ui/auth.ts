/**
 * Who is calling the UI API: the session cookie, looked up on Atlas, and the
 * CSRF check on writes. Cookies are HttpOnly and SameSite=Strict; on top of
 * that every write must carry `X-Hearth-CSRF` (the session's token, or, for
 * sign-in and first-run setup, any value: a cross-site form cannot send a custom
 * header, and a cross-site fetch that tries is stopped by the CORS preflight).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Session, SessionStore } from '../../chat/index.js';
import { HearthError } from '../../errors.js';

export const SESSION_COOKIE = 'hearth_session';
export const CSRF_HEADER = 'x-hearth-csrf';

/** Who may call a UI route. */
export type UiAccess = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** UI routes: who may call it (default `user`). */
    uiAccess?: UiAccess;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The value of one cookie in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // A malformed cookie is no cookie (the client is signed out), not a server error.
      return undefined;
    }
  }
  return undefined;
}

export function sessionCookie(token: string, maxAgeMs: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

export class UiAuth {
  /** Each request's session, set by {@link check}. */
  private readonly sessions = new WeakMap<FastifyRequest, Session>();

  /**
   * `adminRefusal` says why a request's client may not administer (outside `adminZones` and
   * loopback), or null when it may; admin routes need it on top of the admin role.
   */
  constructor(
    private readonly store: SessionStore,
    private readonly adminRefusal: (request: FastifyRequest) => string | null = () => null,
  ) {}

  /** The session of a request (after `check`), or null. */
  sessionOf(request: FastifyRequest): Session | null {
    return this.sessions.get(request) ?? null;
  }

  /** The signed-in session; AUTH_REQUIRED if there is none (routes marked `user` never see that). */
  session(request: FastifyRequest): Session {
    const session = this.sessions.get(request);
    if (!session) throw new HearthError('AUTH_REQUIRED', 'sign in first: your session has ended');
    return session;
  }

  /** The onRequest hook of the UI API: resolves the cookie, then enforces the route's access and CSRF. */
  async check(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const access = request.routeOptions.config?.uiAccess ?? 'user';
    const token = readCookie(request.headers.cookie, SESSION_COOKIE);
    const session = token ? await this.store.resolve(token) : null;
    if (session) this.sessions.set(request, session);

    if (!SAFE_METHODS.has(request.method)) {
      if (request.headers['sec-fetch-site'] === 'cross-site') {
        throw new HearthError('UI_CSRF_FAILED', 'cross-site requests may not change anything here');
      }
      const presented = request.headers[CSRF_HEADER];
      const value = Array.isArray(presented) ? presented[0] : presented;
      if (!value) {
        throw new HearthError('UI_CSRF_FAILED', `missing ${CSRF_HEADER} header: reload the page and try again`);
      }
      if (access !== 'public' && session && !sameText(value, session.csrfToken)) {
        throw new HearthError(
          'UI_CSRF_FAILED',
          'the page is out of date (CSRF token mismatch): reload it and try again',
        );
      }
    }
    if (access === 'public') return;
    if (!session)
      throw new HearthError('AUTH_REQUIRED', 'sign in first: your session has ended or you are not signed in');
    if (access === 'admin' && session.user.role !== 'admin') {
      throw new HearthError('AUTH_FORBIDDEN', 'only an admin may do this');
    }
    if (access === 'admin') {
      const refusal = this.adminRefusal(request);
      if (refusal) throw new HearthError('AUTH_FORBIDDEN', refusal);
    }
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
