import { describe, expect, it } from 'vitest';
import { isHearthError } from '../../errors.js';
import { maskDatabaseUrl, parsePostgresUrl } from './database-url.js';

describe('maskDatabaseUrl', () => {
  it('hides the password in the user part and in parameters', () => {
    expect(maskDatabaseUrl('postgres://hearth:s3cret@atlas:5432/hearth')).toBe(
      'postgres://hearth:***@atlas:5432/hearth',
    );
    expect(maskDatabaseUrl('postgresql://atlas/hearth?user=h&password=s3cret&sslmode=require')).toBe(
      'postgresql://atlas/hearth?user=h&password=***&sslmode=require',
    );
    expect(maskDatabaseUrl('postgres://hearth@atlas/hearth')).toBe('postgres://hearth@atlas/hearth');
    expect(maskDatabaseUrl('embedded')).toBe('embedded');
  });

  it('hides the password even in a string that is not a valid URL', () => {
    expect(maskDatabaseUrl('postgres://hearth:s3 cret@at las/hearth')).not.toContain('s3 cret');
  });
});

describe('parsePostgresUrl', () => {
  it('reads where the URL points, with defaults', () => {
    expect(parsePostgresUrl('postgres://hearth:pw@atlas/hearth')).toMatchObject({
      host: 'atlas',
      port: 5432,
      user: 'hearth',
      database: 'hearth',
      masked: 'postgres://hearth:***@atlas/hearth',
    });
  });

  it('rejects anything that is neither embedded nor a postgres URL, without echoing the password', () => {
    for (const bad of ['mysql://root:topsecret@db/x', 'atlas:5432', 'http://u:topsecret@x/']) {
      let caught: unknown;
      try {
        parsePostgresUrl(bad);
      } catch (err) {
        caught = err;
      }
      expect(isHearthError(caught, 'CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message).not.toContain('topsecret');
    }
  });
});
