import { extname } from 'node:path';

/** How a document's text is shaped, which decides how it is chunked. */
export type TextShape = 'markdown' | 'text' | 'code';

export interface ExtractedText {
  text: string;
  shape: TextShape;
}

/**
 * Why a file cannot be ingested. Its message is the document's error, shown to the person who added
 * it; the other files of the upload go on.
 */
export class UnreadableDocument extends Error {
  override readonly name = 'UnreadableDocument';
}

const MARKDOWN = new Set(['.md', '.markdown', '.mdx']);
const HTML = new Set(['.html', '.htm', '.xhtml']);
const TEXT = new Set(['.txt', '.text', '.log', '.csv', '.tsv', '.rst', '.adoc', '.org', '.tex']);
const CODE = new Set([
  '.ts',
  '.tsx',
  '.js',
  '.jsx',
  '.mjs',
  '.cjs',
  '.py',
  '.go',
  '.rs',
  '.java',
  '.kt',
  '.c',
  '.h',
  '.cc',
  '.cpp',
  '.hpp',
  '.cs',
  '.rb',
  '.php',
  '.swift',
  '.scala',
  '.sh',
  '.bash',
  '.zsh',
  '.ps1',
  '.sql',
  '.json',
  '.yaml',
  '.yml',
  '.toml',
  '.ini',
  '.xml',
  '.css',
  '.scss',
  '.lua',
  '.r',
  '.pl',
  '.ex',
  '.exs',
  '.hs',
  '.nix',
  '.dockerfile',
]);
const NAMED_CODE = new Set(['dockerfile', 'makefile', 'justfile', 'readme', 'license']);

/** The formats hearth reads, for messages. */
export const SUPPORTED_FORMATS = 'text, Markdown, HTML, PDF, Word (.docx) and code files (.ts, .py, .go, .json, ...)';

const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

/** The media type stored with a document, from its name; null when hearth cannot read it. */
export function mediaTypeOf(name: string): string | null {
  const ext = extname(name).toLowerCase();
  if (ext === '.pdf') return 'application/pdf';
  if (ext === '.docx') return DOCX;
  if (MARKDOWN.has(ext)) return 'text/markdown';
  if (HTML.has(ext)) return 'text/html';
  if (TEXT.has(ext)) return 'text/plain';
  if (CODE.has(ext)) return `text/x-code${ext}`;
  const base = name.split('/').pop()?.toLowerCase() ?? '';
  if (ext === '' && NAMED_CODE.has(base)) return 'text/plain';
  return null;
}

/** The message for a file whose type hearth does not read. */
export function unsupportedMessage(name: string): string {
  const ext = extname(name).toLowerCase();
  if (ext === '.doc') {
    return `${name}: Word 97-2003 documents (.doc) are not supported; knowledge bases read ${SUPPORTED_FORMATS}. Save it as .docx (or PDF) first`;
  }
  const what = ext ? `${ext} files` : 'files without an extension';
  return `${name}: ${what} are not supported; knowledge bases read ${SUPPORTED_FORMATS}. Convert it to PDF, Markdown or text first`;
}

/** Extracts the text of a document. Throws UnreadableDocument with a message for people. */
export async function extractText(name: string, mediaType: string, bytes: Uint8Array): Promise<ExtractedText> {
  if (mediaType === 'application/pdf') return { text: await pdfText(name, bytes), shape: 'text' };
  if (mediaType === DOCX) return { text: await docxText(name, bytes), shape: 'markdown' };
  const text = decodeUtf8(name, bytes);
  if (mediaType === 'text/markdown') return { text, shape: 'markdown' };
  if (mediaType === 'text/html') return { text: htmlToText(text), shape: 'markdown' };
  if (mediaType.startsWith('text/x-code')) return { text, shape: 'code' };
  return { text, shape: 'text' };
}

function decodeUtf8(name: string, bytes: Uint8Array): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (text.includes('\u0000')) throw new Error('NUL');
    return text.replace(/^\uFEFF/, '');
  } catch {
    throw new UnreadableDocument(`${name}: is not UTF-8 text (binary content?): save it as UTF-8 text`);
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * HTML to text with Markdown headings (so chunking sees the document's structure): scripts, styles and
 * tags go, block elements become line breaks, entities are decoded.
 */
export function htmlToText(html: string): string {
  let s = html.replace(/<!--[\s\S]*?-->/g, '');
  s = s.replace(/<(script|style|noscript|template|svg|head)\b[\s\S]*?<\/\1\s*>/gi, '');
  s = s.replace(/<h([1-6])\b[^>]*>([\s\S]*?)<\/h\1\s*>/gi, (_m, level: string, inner: string) => {
    const text = inner
      .replace(/<[^>]+>/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    return `\n\n${'#'.repeat(Number(level))} ${text}\n\n`;
  });
  s = s.replace(/<li\b[^>]*>/gi, '\n- ');
  s = s.replace(/<(br|hr)\b[^>]*\/?>/gi, '\n');
  s = s.replace(
    /<\/?(p|div|section|article|header|footer|main|nav|aside|ul|ol|table|tr|pre|blockquote|figure|dl|dt|dd)\b[^>]*>/gi,
    '\n\n',
  );
  s = s.replace(/<\/?(td|th)\b[^>]*>/gi, ' ');
  s = s.replace(/<[^>]+>/g, '');
  s = s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
  return s
    .split('\n')
    .map((line) => line.replace(/[ \t]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * The text of a Word document (.docx) with its headings (mammoth: maintained, pure JS, reads the
 * document's XML; its HTML keeps Word's Heading 1-6 styles as <h1>-<h6>, which become Markdown headings
 * here, so chunking sees the structure). A file that is not a readable .docx is refused.
 */
async function docxText(name: string, bytes: Uint8Array): Promise<string> {
  const mammoth = await import('mammoth');
  let html: string;
  try {
    html = (await mammoth.convertToHtml({ buffer: Buffer.from(bytes) })).value;
  } catch (err) {
    throw new UnreadableDocument(
      `${name}: is not a readable Word document (${err instanceof Error ? err.message : String(err)}): check the file, or save it again as .docx`,
    );
  }
  return htmlToText(html);
}

/**
 * The text layer of a PDF, page by page (pdfjs-dist, Mozilla's PDF.js: maintained, pure JS, no native
 * part; the 5.4 legacy build is the last that runs on Node 20). A PDF with no text (a scan) is refused.
 */
async function pdfText(name: string, bytes: Uint8Array): Promise<string> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  let doc: Awaited<ReturnType<typeof pdfjs.getDocument>['promise']>;
  try {
    doc = await pdfjs.getDocument({
      data: new Uint8Array(bytes),
      useSystemFonts: false,
      disableFontFace: true,
      isEvalSupported: false,
      verbosity: 0,
    }).promise;
  } catch (err) {
    throw new UnreadableDocument(
      `${name}: is not a readable PDF (${err instanceof Error ? err.message : String(err)}): check the file, or export it again`,
    );
  }
  try {
    const pages: string[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items) {
        if (!('str' in item)) continue;
        text += item.str;
        text += item.hasEOL ? '\n' : item.str.endsWith(' ') ? '' : ' ';
      }
      pages.push(text.replace(/[ \t]+/g, ' ').trim());
      page.cleanup();
    }
    const text = pages.filter(Boolean).join('\n\n');
    if (text.replace(/\s/g, '') === '') {
      throw new UnreadableDocument(
        `${name}: the PDF has no text layer (${doc.numPages} page(s) of images, a scan?): run OCR on it (ocrmypdf) and add it again`,
      );
    }
    return text;
  } finally {
    await doc.destroy();
  }
}
