// Minimal valid PDFs written by hand (PDF 1.4: catalog, pages, one page each, Helvetica, a content
// stream, an exact xref table), so tests need no PDF library to make their inputs.

/** A PDF whose pages hold `pages[i]` lines of text (a real text layer). */
export function textPdf(pages: string[][]): Buffer {
  return buildPdf(
    pages.map((lines) => {
      const ops = lines.map((line, i) => `BT /F1 12 Tf 72 ${720 - i * 16} Td (${escapePdf(line)}) Tj ET`).join('\n');
      return ops;
    }),
  );
}

/** A PDF with one page of drawing and no text at all (as a scan without OCR looks to a text extractor). */
export function imageOnlyPdf(): Buffer {
  return buildPdf(['0.5 g 72 72 200 200 re f']);
}

function escapePdf(text: string): string {
  return text.replace(/[\\()]/g, (c) => `\\${c}`);
}

function buildPdf(contents: string[]): Buffer {
  const objects: string[] = [];
  const pageIds = contents.map((_, i) => 4 + i * 2);
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${contents.length} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>';
  contents.forEach((content, i) => {
    const page = pageIds[i]!;
    objects[page] =
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${page + 1} 0 R >>`;
    objects[page + 1] = `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`;
  });
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = Buffer.byteLength(out, 'latin1');
    out += `${id} 0 obj\n${objects[id]}\nendobj\n`;
  }
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let id = 1; id < objects.length; id++) out += `${String(offsets[id]).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
