// docs/errors.md stays true to the codes clients can receive (as fastify's errors test does for its docs).
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './errors.js';

describe('error documentation', () => {
  it('documents every code with its status, and no code that does not exist', async () => {
    const text = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Map(
      [...text.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+) \|$/gm)].map((m) => [
        m[1]!,
        { status: Number(m[2]), text: m[3]! },
      ]),
    );
    const codes = Object.entries(ERROR_CODES);
    expect(codes.filter(([code]) => !documented.has(code)).map(([code]) => code)).toEqual([]);
    expect([...documented.keys()].filter((code) => !(code in ERROR_CODES))).toEqual([]);
    for (const [code, status] of codes) {
      expect(documented.get(code)?.status, code).toBe(status);
      expect(documented.get(code)?.text.trim().length, `${code} needs a description`).toBeGreaterThan(10);
    }
  });
});
