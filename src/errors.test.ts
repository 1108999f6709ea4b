// Every code's status and message template is defined once (src/errors.ts) and documented in
// docs/errors.md; as fastify's test/internals/errors.test.js does, this keeps the two in step.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERRORS, type ErrorCode, formatErrorMessage, HearthError, isHearthError } from './errors.js';

const codes = Object.keys(ERRORS) as ErrorCode[];
const holes = (template: string) => template.split('%s').length - 1;

describe('error documentation', () => {
  it('documents every code with its status and message template, and no code that does not exist', async () => {
    const text = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Map(
      [...text.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (`` .+? ``|`[^`]+`) \| (.+) \|$/gm)].map((m) => [
        m[1]!,
        {
          status: Number(m[2]),
          template: m[3]!
            .replace(/^`` | ``$|^`|`$/g, '')
            .replaceAll('\\n', '\n')
            .replaceAll('\\|', '|'),
          text: m[4]!,
        },
      ]),
    );
    expect(codes.filter((code) => !documented.has(code))).toEqual([]);
    expect([...documented.keys()].filter((code) => !(code in ERRORS))).toEqual([]);
    for (const code of codes) {
      expect(documented.get(code)?.status, code).toBe(ERRORS[code].status);
      expect(documented.get(code)?.template, code).toBe(ERRORS[code].message);
      expect(documented.get(code)?.text.trim().length, `${code} needs a description`).toBeGreaterThan(10);
    }
  });
});

describe('HearthError', () => {
  it('gives every code its status, its name and its template filled with the values, in order', () => {
    for (const code of codes) {
      const { status, message } = ERRORS[code];
      const values = Array.from({ length: holes(message) }, (_, i) => `<${i}>`);
      const err =
        message === '%s'
          ? new HearthError(code as 'BAD_REQUEST', 'what went wrong: what to do')
          : new HearthError(code as 'JOB_NOT_FOUND', values as [string]);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe('HearthError');
      expect(err.code).toBe(code);
      expect(err.status).toBe(status);
      expect(ERROR_CODES[code]).toBe(status);
      expect(isHearthError(err, code)).toBe(true);
      if (message === '%s') expect(err.message).toBe('what went wrong: what to do');
      else {
        expect(err.message).toBe(values.reduce((m, v) => m.replace('%s', v), message));
        for (const v of values) expect(err.message).toContain(v);
      }
    }
  });

  it('fills holes as a template literal would, and keeps the options', () => {
    expect(formatErrorMessage('a %s b %s', [1, undefined])).toBe('a 1 b undefined');
    const cause = new Error('disk');
    const err = new HearthError('JOB_NOT_FOUND', ['j1'], { status: 410, cause, details: { id: 'j1' } });
    expect(err.message).toBe('job j1 not found: list jobs with hearth jobs ls');
    expect(err).toMatchObject({ status: 410, cause, details: { id: 'j1' } });
    expect(new HearthError('UI_SETUP_DONE').message).toMatch(/^hearth already has an admin account/);
  });

  it('words every message for a person: no code has an empty template or a stray placeholder', () => {
    for (const code of codes) {
      const { message } = ERRORS[code];
      expect(message.trim(), code).not.toBe('');
      expect(message.replaceAll('%s', ''), code).not.toMatch(/%[a-z]/);
    }
  });
});
