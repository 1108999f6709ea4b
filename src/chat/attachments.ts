/**
 * Files given to a chat message. The browser sends text files as text, and PDFs and images as their
 * bytes (base64): a PDF's text layer and a Word document's text (.docx) are read here with the knowledge base's extractor (pdfjs-dist), so
 * the page never loads a PDF library; images are stored on Atlas files (`chat/<user>/<sha256>.<ext>`,
 * the same image once) and given to vision models as the engine's `images`, as Ollama's /api/chat
 * takes them. Text goes into the message, cut to fit the model's context (replies.ts).
 */
import { createHash } from 'node:crypto';
import type { FileStore } from '../atlas/files/index.js';
import { HearthError } from '../errors.js';
import { extractText, mediaTypeOf, SUPPORTED_FORMATS, UnreadableDocument } from '../knowledge/extract.js';
import type { Attachment } from './conversations.js';
import { BYTE_ATTACHMENTS, MAX_ATTACHMENT_BYTES, UNREAD_ATTACHMENTS } from './vocabulary.js';

/** A file the browser read as text. */
export interface TextAttachmentInput {
  name: string;
  text: string;
}

/** A file the browser sends as its bytes, base64: a PDF (read here) or an image (stored, shown to vision models). */
export interface DataAttachmentInput {
  name: string;
  data: string;
}

export type AttachmentInput = TextAttachmentInput | DataAttachmentInput;

export { MAX_ATTACHMENT_BYTES };

/** Image formats vision models read, by their file extension on Atlas. */
const IMAGE_EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' } as const;
export type ImageType = keyof typeof IMAGE_EXTENSIONS;

/** Where a user's chat images live on Atlas files; the name is `<sha256>.<ext>`. */
export const IMAGE_NAME = /^[0-9a-f]{64}\.(png|jpg|gif|webp)$/;
export const imageKey = (userId: string, name: string) => `chat/${userId}/${name}`;
export const imageMediaType = (name: string): ImageType =>
  (Object.entries(IMAGE_EXTENSIONS).find(([, ext]) => name.endsWith(`.${ext}`))?.[0] as ImageType) ?? 'image/png';

/** Files that are not text: sent as their bytes (BYTE_ATTACHMENTS), or not read at all (UNREAD_ATTACHMENTS). */
const NOT_TEXT = new Set<string>([...BYTE_ATTACHMENTS, ...UNREAD_ATTACHMENTS]);
const notText = (name: string) => NOT_TEXT.has(name.slice(name.lastIndexOf('.')).toLowerCase());

/** An image's type from its first bytes (its name may lie); null when it is not PNG, JPEG, GIF or WebP. */
export function imageTypeOf(bytes: Uint8Array): ImageType | null {
  const at = (i: number, ...values: number[]) => values.every((v, k) => bytes[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  return null;
}

function refuse(message: string): HearthError {
  return new HearthError('ATTACHMENT_UNSUPPORTED', message, { details: { param: 'attachments' } });
}

/** What a message's files hold: text for the context, and images. */
export interface ReadAttachments {
  texts: TextAttachmentInput[];
  images: Array<{ name: string; bytes: Buffer; type: ImageType }>;
}

/**
 * Reads a message's files: text as it is; a PDF's text layer; images by their bytes. Anything else
 * is refused (415) with a message saying what is read. Nothing is stored yet.
 */
export async function readAttachments(inputs: readonly AttachmentInput[]): Promise<ReadAttachments> {
  const out: ReadAttachments = { texts: [], images: [] };
  for (const input of inputs) {
    if ('text' in input) {
      if (notText(input.name) || input.text.includes('\u0000')) {
        throw refuse(
          `"${input.name}" is not a text file: send its bytes (data), or attach text, Markdown or code files`,
        );
      }
      out.texts.push(input);
      continue;
    }
    const bytes = Buffer.from(input.data, 'base64');
    if (bytes.length > MAX_ATTACHMENT_BYTES) {
      throw refuse(`"${input.name}" is larger than ${MAX_ATTACHMENT_BYTES / 1024 / 1024} MiB: attach a smaller file`);
    }
    const image = imageTypeOf(bytes);
    if (image) {
      out.images.push({ name: input.name, bytes, type: image });
      continue;
    }
    const mediaType = mediaTypeOf(input.name);
    if (!mediaType) {
      throw refuse(
        `"${input.name}": this kind of file is not read; attach images (PNG, JPEG, GIF, WebP) or ${SUPPORTED_FORMATS}`,
      );
    }
    try {
      const { text } = await extractText(input.name, mediaType, bytes);
      if (!text.trim()) throw new UnreadableDocument(`${input.name}: has no text (a scan without OCR?)`);
      out.texts.push({ name: input.name, text });
    } catch (err) {
      if (err instanceof UnreadableDocument) throw refuse(err.message);
      throw err;
    }
  }
  return out;
}

/** Refuses images for a model that cannot see, saying why and what to do. */
export function checkVision(model: string, capabilities: readonly string[], images: ReadAttachments['images']): void {
  const first = images[0];
  if (!first || capabilities.includes('vision')) return;
  throw refuse(
    `${model} cannot see images (it has no vision capability): pick a vision model for "${first.name}", or remove the image`,
  );
}

/** Stores a message's images on Atlas files (content-addressed) and returns their attachments. */
export async function storeImages(
  files: FileStore,
  userId: string,
  images: ReadAttachments['images'],
): Promise<Attachment[]> {
  const out: Attachment[] = [];
  for (const image of images) {
    const sha = createHash('sha256').update(image.bytes).digest('hex');
    const name = `${sha}.${IMAGE_EXTENSIONS[image.type]}`;
    const key = imageKey(userId, name);
    if (!(await files.stat(key))) await files.put(key, image.bytes, { expectedSha256: sha });
    out.push({ name: image.name, size: image.bytes.length, text: '', truncated: false, image: name });
  }
  return out;
}

/** An image attachment's bytes, base64, as the engine takes them. */
export async function imageBase64(files: FileStore, userId: string, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await files.read(imageKey(userId, name))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('base64');
}
