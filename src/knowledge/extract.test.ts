import { describe, expect, it } from 'vitest';
import { docx, zip } from '../../test/support/docx.js';
import { imageOnlyPdf, textPdf } from '../../test/support/pdf.js';
import { extractText, htmlToText, mediaTypeOf, UnreadableDocument } from './extract.js';

describe('extracting text', () => {
  it('reads the text layer of a PDF, page by page', async () => {
    const pdf = textPdf([['Hearth keeps data on Atlas.', 'The node is a cache.'], ['Second page (with parens).']]);
    const { text } = await extractText('guide.pdf', 'application/pdf', pdf);
    expect(text).toContain('Hearth keeps data on Atlas.');
    expect(text).toContain('The node is a cache.');
    expect(text).toContain('Second page (with parens).');
  });

  it('refuses a PDF with no text layer, saying what to do', async () => {
    const err = await extractText('scan.pdf', 'application/pdf', imageOnlyPdf()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreadableDocument);
    expect((err as Error).message).toMatch(/scan\.pdf: the PDF has no text layer.*OCR/);
  });

  it('refuses bytes that are not a PDF, and binary posing as text', async () => {
    await expect(extractText('x.pdf', 'application/pdf', Buffer.from('not a pdf'))).rejects.toThrow(
      /x\.pdf: is not a readable PDF/,
    );
    await expect(extractText('x.txt', 'text/plain', Buffer.from([0xff, 0xfe, 0x00, 0x41]))).rejects.toThrow(
      /not UTF-8 text/,
    );
  });

  it('reads a Word document (.docx) with its headings as Markdown headings', async () => {
    const bytes = docx([
      { text: 'Boiler', heading: 1 },
      { text: 'Bleed the radiators every October.' },
      { text: 'Pressure', heading: 2 },
      { text: 'Keep it between 1 & 1.5 bar.' },
    ]);
    const type = mediaTypeOf('boiler.docx')!;
    expect(type).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    expect(await extractText('boiler.docx', type, bytes)).toEqual({
      text: '# Boiler\n\nBleed the radiators every October.\n\n## Pressure\n\nKeep it between 1 & 1.5 bar.',
      shape: 'markdown',
    });
  });

  it('refuses a broken .docx, saying which file and what to do', async () => {
    const type = mediaTypeOf('broken.docx')!;
    await expect(extractText('broken.docx', type, Buffer.from('not a zip at all'))).rejects.toThrow(
      /^broken\.docx: is not a readable Word document \(.+\): check the file, or save it again as \.docx$/,
    );
    // a zip without a document part
    await expect(extractText('empty.docx', type, zip({ 'hello.txt': 'hi' }))).rejects.toThrow(
      /^empty\.docx: is not a readable Word document \(Could not find main document part/,
    );
  });

  it('turns HTML into text with Markdown headings, without scripts or styles', () => {
    const text = htmlToText(
      '<html><head><title>t</title><style>p{}</style></head><body><h1>Install</h1><p>Run &quot;hearth&quot; &amp; wait.</p><script>alert(1)</script><h2>Linux</h2><ul><li>apt</li><li>nix</li></ul></body></html>',
    );
    expect(text).toBe('# Install\n\nRun "hearth" & wait.\n\n## Linux\n\n- apt\n- nix');
  });

  it('knows the supported types by name and refuses the rest', () => {
    expect(mediaTypeOf('a.md')).toBe('text/markdown');
    expect(mediaTypeOf('a.PDF')).toBe('application/pdf');
    expect(mediaTypeOf('src/main.py')).toBe('text/x-code.py');
    expect(mediaTypeOf('photo.jpg')).toBeNull();
    expect(mediaTypeOf('report.doc')).toBeNull();
  });
});
