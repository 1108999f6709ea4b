// Text chunks of a PNG, read in the browser: ComfyUI (and hearth's SaveImage) put the UI-format
// `workflow` and the API-format `prompt` into tEXt chunks. Pure; unit-tested in test/workflow-format.test.ts.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** tEXt, zTXt and iTXt chunks by keyword; an error if the bytes are not a PNG. */
export async function pngTextChunks(bytes: Uint8Array): Promise<Record<string, string>> {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('this file is not a PNG image');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  let at = 8;
  while (at + 12 <= bytes.length) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length));
    at += 12 + length;
    if (type === 'IEND') break;
    if (type !== 'tEXt' && type !== 'zTXt' && type !== 'iTXt') continue;
    const nul = data.indexOf(0);
    if (nul <= 0) continue;
    const keyword = latin1.decode(data.subarray(0, nul));
    if (type === 'tEXt') {
      // The PNG spec says Latin-1; ComfyUI writes UTF-8 JSON there, and JSON is mostly ASCII: UTF-8 reads both.
      out[keyword] = utf8.decode(data.subarray(nul + 1));
    } else if (type === 'zTXt') {
      out[keyword] = utf8.decode(await inflate(data.subarray(nul + 2)));
    } else {
      const compressed = data[nul + 1] === 1;
      let p = nul + 3;
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      if (p <= 0) continue;
      const text = data.subarray(p);
      out[keyword] = utf8.decode(compressed ? await inflate(text) : text);
    }
  }
  return out;
}

/** The workflow a PNG carries: the UI-format `workflow` chunk, else the API-format `prompt`; null if neither. */
export async function workflowFromPng(
  bytes: Uint8Array,
): Promise<{ kind: 'ui'; workflow: unknown } | { kind: 'api'; prompt: unknown } | null> {
  const chunks = await pngTextChunks(bytes);
  if (chunks['workflow']) return { kind: 'ui', workflow: JSON.parse(chunks['workflow']) };
  if (chunks['prompt']) return { kind: 'api', prompt: JSON.parse(chunks['prompt']) };
  return null;
}
