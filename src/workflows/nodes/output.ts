import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { HearthError, isHearthError } from '../../errors.js';
import { type ImageValue, isImage, type NodeDefinition, type NodeRunContext } from '../types.js';
import { toImage } from './image.js';

/** Where saved outputs go on Atlas (`/view?type=output` reads there). */
export const OUTPUT_FOLDER = 'outputs';

const PREFIX = {
  type: 'STRING',
  default: 'hearth',
  tooltip: 'file name start; may contain subfolders (a/b/name)',
} as const;

/** A saved file as ComfyUI reports it in history and `executed` frames. */
export interface SavedFile {
  filename: string;
  subfolder: string;
  type: 'output' | 'temp';
}

/** Splits `a/b/name` into subfolder and name, refusing anything that would leave outputs/. */
function splitPrefix(prefix: string): { subfolder: string; name: string } {
  const parts = prefix.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..') || prefix.startsWith('/')) {
    throw new HearthError(
      'WORKFLOW_INVALID',
      `filename_prefix ${JSON.stringify(prefix)} must be a relative name without ..`,
    );
  }
  return { subfolder: parts.slice(0, -1).join('/'), name: parts.at(-1)! };
}

/**
 * Stores bytes under `outputs/<subfolder>/<name>_00001_.<ext>`, numbering after the highest file
 * of that name as ComfyUI does. Writes never overwrite, so two nodes sharing Atlas cannot clobber each other.
 */
async function saveNumbered(
  ctx: NodeRunContext,
  prefix: string,
  ext: string,
  bytes: Buffer | string,
): Promise<SavedFile> {
  const { subfolder, name } = splitPrefix(prefix);
  const folder = [OUTPUT_FOLDER, subfolder].filter(Boolean).join('/');
  const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(\\d{5,})_\\.`);
  let counter = 0;
  for (const f of await ctx.files.list(`${folder}/`)) {
    const m = pattern.exec(f.key.slice(folder.length + 1));
    if (m) counter = Math.max(counter, Number(m[1]));
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const filename = `${name}_${String(++counter).padStart(5, '0')}_.${ext}`;
    try {
      await ctx.files.put(`${folder}/${filename}`, bytes, { overwrite: false });
      return { filename, subfolder, type: 'output' };
    } catch (err) {
      if (!isHearthError(err, 'ATLAS_FILES_EXISTS')) throw err;
    }
  }
  throw new HearthError('WORKFLOW_NODE_FAILED', `could not find a free file name for ${prefix} in ${folder}`);
}

/** A PNG tEXt chunk (keyword NUL text), as ComfyUI writes `prompt` and `workflow`. */
function textChunk(keyword: string, text: string): Buffer {
  const data = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'utf8')]);
  const type = Buffer.from('tEXt', 'latin1');
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  type.copy(out, 4);
  data.copy(out, 8);
  out.writeUInt32BE(crc32(Buffer.concat([type, data])), 8 + data.length);
  return out;
}

/** Inserts text chunks right after IHDR (signature 8 bytes + IHDR chunk 25 bytes). */
export function withPngText(png: Buffer, texts: Record<string, string>): Buffer {
  const chunks = Object.entries(texts).map(([k, v]) => textChunk(k, v));
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

/** Reads a PNG's tEXt chunks back (for tests and tools). */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 8;
  while (at + 12 <= png.length) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    if (type === 'tEXt') {
      const data = png.subarray(at + 8, at + 8 + len);
      const nul = data.indexOf(0);
      out[data.toString('latin1', 0, nul)] = data.toString('utf8', nul + 1);
    }
    if (type === 'IEND') break;
    at += 12 + len;
  }
  return out;
}

/** The images arriving at an output node: a list of values, each one image or a batch (an array). */
function images(value: unknown): ImageValue[] {
  const list = Array.isArray(value) ? value.flat(2) : [value];
  return list.filter(isImage);
}

/** Output nodes: where a run ends and what its history shows. */
export const outputNodes: NodeDefinition[] = [
  {
    name: 'SaveImage',
    displayName: 'Save Image',
    description: 'Saves PNGs to Atlas (outputs/<prefix>_00001_.png) with the prompt and workflow in their metadata.',
    category: 'image',
    outputNode: true,
    inputs: { required: { images: { type: 'IMAGE', acceptsList: true }, filename_prefix: PREFIX } },
    outputs: [],
    run: async ({ images: value, filename_prefix }, ctx) => {
      const saved: SavedFile[] = [];
      const list = images(value);
      for (const [i, image] of list.entries()) {
        ctx.progress(i, list.length);
        const png = image.format === 'png' ? image.bytes : (await toImage(sharp(image.bytes), 'png')).bytes;
        const texts: Record<string, string> = { prompt: JSON.stringify(ctx.prompt) };
        const workflow = (ctx.extraData['extra_pnginfo'] as Record<string, unknown> | undefined)?.['workflow'];
        if (workflow !== undefined) texts['workflow'] = JSON.stringify(workflow);
        saved.push(await saveNumbered(ctx, filename_prefix as string, 'png', withPngText(png, texts)));
      }
      return { outputs: [], ui: { images: saved } };
    },
  },
  {
    name: 'PreviewImage',
    displayName: 'Preview Image',
    description: "Shows images without keeping them: they go to the node's disposable temp area.",
    category: 'image',
    outputNode: true,
    inputs: { required: { images: { type: 'IMAGE', acceptsList: true } } },
    outputs: [],
    run: async ({ images: value }, ctx) => {
      await mkdir(ctx.tempDir, { recursive: true });
      const saved: SavedFile[] = [];
      for (const [i, image] of images(value).entries()) {
        const filename = `preview_${ctx.promptId}_${ctx.nodeId}_${i}.${image.format}`;
        await writeFile(join(ctx.tempDir, filename), image.bytes);
        saved.push({ filename, subfolder: '', type: 'temp' });
      }
      return { outputs: [], ui: { images: saved } };
    },
  },
  {
    name: 'SaveText',
    displayName: 'Save Text',
    description: 'Saves text to Atlas (outputs/<prefix>_00001_.txt).',
    category: 'text',
    outputNode: true,
    inputs: { required: { text: { type: 'STRING', default: '' }, filename_prefix: PREFIX } },
    outputs: [],
    run: async ({ text, filename_prefix }, ctx) => {
      const file = await saveNumbered(ctx, filename_prefix as string, 'txt', text as string);
      return { outputs: [], ui: { text: [text], files: [file] } };
    },
  },
  {
    name: 'SaveJSON',
    displayName: 'Save JSON',
    description: 'Saves JSON to Atlas (outputs/<prefix>_00001_.json).',
    category: 'json',
    outputNode: true,
    inputs: { required: { json: { type: 'JSON' }, filename_prefix: PREFIX } },
    outputs: [],
    run: async ({ json, filename_prefix }, ctx) => {
      const file = await saveNumbered(ctx, filename_prefix as string, 'json', `${JSON.stringify(json, null, 2)}\n`);
      return { outputs: [], ui: { json: [json], files: [file] } };
    },
  },
  {
    name: 'PreviewText',
    displayName: 'Preview Text',
    description: 'Shows text in the run history without saving a file.',
    category: 'text',
    outputNode: true,
    inputs: { required: { text: { type: 'STRING', default: '', acceptsList: true } } },
    outputs: [],
    run: async ({ text }) => ({ outputs: [], ui: { text: Array.isArray(text) ? text : [text] } }),
  },
];
