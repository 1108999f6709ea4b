// The chat UI behind a trusted reverse proxy: sign-in failures count per forwarded client (one
// client cannot lock out everyone behind the proxy), the session cookie is Secure when the proxy
// says the client used HTTPS, and guessing the current password with a session is limited too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
const PASSWORD = 'right-password-1';

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-proxy-');
  hearth = await startHearthInProcess(dirs, { trustedProxies: ['127.0.0.1'] });
  const admin = new UiClient(hearth.url);
  const setup = await admin.call(
    'POST',
    '/api/ui/setup',
    { username: 'admin', password: PASSWORD },
    { 'x-hearth-csrf': '1' },
  );
  expect(setup.status).toBe(201);
});
afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

function login(password: string, headers: Record<string, string>) {
  return new UiClient(hearth.url).call(
    'POST',
    '/api/ui/login',
    { username: 'admin', password },
    { 'x-hearth-csrf': '1', ...headers },
  );
}

describe('sign-in behind a trusted proxy', () => {
  it('limits failures per forwarded client, not per proxy', async () => {
    const guesser = { 'x-forwarded-for': '192.0.2.10' };
    for (let i = 0; i < 10; i++) expect((await login('wrong', guesser)).status).toBe(401);
    const limited = await login(PASSWORD, guesser);
    expect(limited.status).toBe(429);
    expect(limited.json.error).toMatch(/192\.0\.2\.10/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another client behind the same proxy signs in.
    expect((await login(PASSWORD, { 'x-forwarded-for': '192.0.2.11' })).status).toBe(200);
  });

  it('marks the session cookie Secure when the proxy forwarded HTTPS', async () => {
    const https = await login(PASSWORD, { 'x-forwarded-for': '192.0.2.12', 'x-forwarded-proto': 'https' });
    expect(https.status).toBe(200);
    expect(https.headers.get('set-cookie')).toMatch(/; Secure/);
    const http = await login(PASSWORD, { 'x-forwarded-for': '192.0.2.12', 'x-forwarded-proto': 'http' });
    expect(http.headers.get('set-cookie')).not.toMatch(/Secure/);
  });

  it('limits guesses of the current password when changing it', async () => {
    const me = new UiClient(hearth.url);
    expect(
      (await me.call('POST', '/api/ui/login', { username: 'admin', password: PASSWORD }, { 'x-hearth-csrf': '1' }))
        .status,
    ).toBe(200);
    for (let i = 0; i < 10; i++) {
      const wrong = await me.call('PATCH', '/api/ui/me', {
        currentPassword: `guess-${i}`,
        newPassword: 'new-password-1',
      });
      expect(wrong.status).toBe(403);
    }
    const limited = await me.call('PATCH', '/api/ui/me', { currentPassword: PASSWORD, newPassword: 'new-password-1' });
    expect(limited.status).toBe(429);
    // The password did not change.
    expect((await login(PASSWORD, { 'x-forwarded-for': '192.0.2.13' })).status).toBe(200);
  });
});
