import { describe, expect, it } from 'vitest';
import { checkMigrationList } from '../migrator.js';
import { migrations } from './index.js';

describe('migrations', () => {
  it('are numbered, unique and in order, so every node applies them in the same sequence', () => {
    expect(() => checkMigrationList(migrations)).not.toThrow();
    expect(migrations[0]?.id).toBe('0001_foundation');
  });

  it('a list out of order is refused before it touches a database', () => {
    const list = [
      { id: '0002_models', sql: '' },
      { id: '0001_foundation', sql: '' },
    ];
    expect(() => checkMigrationList(list)).toThrow(/out of order/);
  });
});
