import { describe, expect, it } from 'vitest';
import { StopAwareText } from './completion.js';

describe('stop sequences in streamed text', () => {
  it('holds back what may start a stop sequence and cuts the text before it', () => {
    const chunks: string[] = [];
    const text = new StopAwareText(['</end>'], (t) => chunks.push(t));
    expect(text.push('Hello </')).toBe(false);
    expect(chunks.join('')).toBe('Hello ');
    expect(text.push('en')).toBe(false);
    expect(text.push('d> more')).toBe(true);
    expect(text.finish()).toBe('Hello ');
    expect(chunks.join('')).toBe('Hello ');
  });

  it('lets held-back text through once it cannot be a stop sequence', () => {
    const chunks: string[] = [];
    const text = new StopAwareText(['STOP', 'END'], (t) => chunks.push(t));
    text.push('ST');
    text.push('ART and E');
    expect(chunks.join('')).toBe('START and ');
    text.push('ND');
    expect(text.finish()).toBe('START and ');
  });

  it('finds the earliest of several stop sequences, even inside one piece', () => {
    const text = new StopAwareText(['b', 'a']);
    expect(text.push('xxabyy')).toBe(true);
    expect(text.finish()).toBe('xx');
  });

  it('passes everything through without stop sequences', () => {
    const chunks: string[] = [];
    const text = new StopAwareText([], (t) => chunks.push(t));
    text.push('a');
    text.push('b');
    expect(chunks).toEqual(['a', 'b']);
    expect(text.finish()).toBe('ab');
  });
});
