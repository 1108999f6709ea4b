import { describe, expect, it } from 'vitest';
import { CorsPolicy } from './cors.js';

describe('CORS origins', () => {
  const cors = new CorsPolicy(['https://chat.home.arpa', 'http://*.tools.home.arpa:8080']);

  it('allows configured origins, wildcards inside them, this machine’s pages and editor extensions', () => {
    for (const origin of [
      'https://chat.home.arpa',
      'https://chat.home.arpa/',
      'http://n8n.tools.home.arpa:8080',
      'http://localhost:3000',
      'http://127.0.0.1',
      'http://[::1]:5173',
      'vscode-webview://abcdef',
    ]) {
      expect(cors.allows(origin, 'gpu1.home.arpa:11434'), origin).toBe(true);
    }
  });

  it('allows a same-origin request (the UI’s own POSTs carry Origin)', () => {
    expect(cors.allows('http://gpu1.home.arpa:11434', 'gpu1.home.arpa:11434')).toBe(true);
    expect(cors.allows('http://gpu1.home.arpa', 'gpu1.home.arpa')).toBe(true);
    expect(cors.allows('http://gpu1.home.arpa:8080', 'gpu1.home.arpa:11434')).toBe(false);
  });

  it('refuses other origins, including look-alikes', () => {
    for (const origin of [
      'https://evil.example',
      'http://chat.home.arpa',
      'https://chat.home.arpa.evil.example',
      'http://n8n.tools.home.arpa:8081',
      'http://localhost.evil.example',
      'null',
    ]) {
      expect(cors.allows(origin, 'gpu1.home.arpa:11434'), origin).toBe(false);
    }
  });

  it('allows everything with *', () => {
    expect(new CorsPolicy(['*']).allows('https://evil.example', undefined)).toBe(true);
  });
});
