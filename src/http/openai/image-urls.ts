import { describeError } from '../../errors.js';
import { invalidParam } from './options.js';
import type { ChatMessageBody } from './schemas.js';

const FETCH_TIMEOUT_MS = 15_000;
const MAX_IMAGE_BYTES = 20 << 20;

/**
 * With `inference.fetchImageUrls` on, the http(s) URLs of `image_url` parts
 * are fetched here, on the API node, and replaced by data URLs, so the engine
 * only ever sees inline images. Off (the default), they stay and the message
 * conversion refuses them, naming the key.
 */
export async function inlineImageUrls(messages: ChatMessageBody[], allowed: boolean): Promise<void> {
  if (!allowed) return;
  for (const [i, m] of messages.entries()) {
    if (!Array.isArray(m.content)) continue;
    for (const [j, part] of m.content.entries()) {
      if (part.type !== 'image_url' || !/^https?:\/\//i.test(part.image_url.url)) continue;
      part.image_url.url = await fetchImage(part.image_url.url, `messages.${i}.content.${j}.image_url.url`);
    }
  }
}

async function fetchImage(url: string, param: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    throw invalidParam(
      param,
      `${param}: could not fetch the image at ${url} (${describeError(err)}): send it inline as a data URL`,
    );
  }
  if (!res.ok) {
    throw invalidParam(
      param,
      `${param}: fetching the image at ${url} answered ${res.status}: send it inline as a data URL`,
    );
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
  if (!type.startsWith('image/')) {
    await res.body?.cancel();
    throw invalidParam(param, `${param}: ${url} is not an image (content-type "${type || 'none'}")`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > MAX_IMAGE_BYTES) {
      throw invalidParam(param, `${param}: the image at ${url} is larger than 20 MiB: send a smaller one`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return `data:${type};base64,${Buffer.concat(chunks).toString('base64')}`;
}
