import { describe, expect, it } from 'vitest';
import { errorLimit } from './spec.js';
import { MissingFieldError, renderTemplate, templateFields } from './template.js';

describe('prompt templates', () => {
  it('fills {{field}} placeholders, nested ones too, formatting values as text', () => {
    const record = { text: 'hi', n: 3, ok: true, tags: ['a'], nested: { name: 'x' }, none: null };
    expect(renderTemplate('{{text}} {{ n }} {{ok}} {{tags}} {{nested.name}} [{{none}}]', record)).toBe(
      'hi 3 true ["a"] x []',
    );
    expect(templateFields('{{a}} and {{ b.c }} and {{a}}')).toEqual(['a', 'b.c']);
  });

  it('names the first field a record lacks', () => {
    expect(() => renderTemplate('{{text}} {{title}}', { text: 'x' })).toThrow(new MissingFieldError('title'));
  });
});

describe('max_errors', () => {
  it('reads a count, a fraction or a percentage of the records', () => {
    expect(errorLimit(10, 500)).toBe(10);
    expect(errorLimit(0, 500)).toBe(0);
    expect(errorLimit(0.02, 500)).toBe(10);
    expect(errorLimit('5%', 500)).toBe(25);
    expect(errorLimit(undefined, 500)).toBe(5);
  });
});
