import { describe, expect, it } from 'vitest';
import { chunkText, estimateTokens } from './chunk.js';

const words = (n: number, word = 'alpha') => Array.from({ length: n }, () => word).join(' ');

describe('chunking', () => {
  it('keeps sections apart and records the heading path', () => {
    const md = `# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n\`\`\`sh\n# not a heading\nhearth serve\n\`\`\`\n\n## Use\n\nAsk it things.`;
    const chunks = chunkText(md, 'markdown', { size: 200, overlap: 0 });
    expect(chunks.map((c) => c.heading)).toEqual(['Guide', 'Guide > Install', 'Guide > Use']);
    expect(chunks[1]!.text).toBe('Run the installer.\n\n```sh\n# not a heading\nhearth serve\n```');
  });

  it('packs paragraphs up to the size and overlaps consecutive chunks of a section', () => {
    const text = Array.from({ length: 6 }, (_, i) => words(30, `p${i}`)).join('\n\n');
    const chunks = chunkText(text, 'text', { size: 100, overlap: 20 });
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(100);
    // the second chunk starts with the tail of the first
    const tail = chunks[0]!.text.split(/\s+/).slice(-5).join(' ');
    expect(chunks[1]!.text.startsWith(tail.split(' ')[0]!)).toBe(true);
    expect(chunks[1]!.text).toContain(tail);
  });

  it('cuts a paragraph longer than the size at sentences, then words', () => {
    const chunks = chunkText(words(1000), 'text', { size: 64, overlap: 8 });
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(64);
    expect(estimateTokens('one two three')).toBe(4);
  });
});
