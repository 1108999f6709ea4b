import sharp from 'sharp';
import { HearthError } from '../../errors.js';
import type { ImageValue, NodeDefinition, NodeRunContext } from '../types.js';

const FORMATS = ['png', 'jpeg', 'webp'] as const;

/** Encodes a sharp pipeline into an IMAGE value (PNG unless a format is asked for). */
export async function toImage(
  pipeline: sharp.Sharp,
  format: ImageValue['format'] = 'png',
  quality = 90,
): Promise<ImageValue> {
  const encoded =
    format === 'png' ? pipeline.png() : format === 'jpeg' ? pipeline.jpeg({ quality }) : pipeline.webp({ quality });
  const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
  return { kind: 'image', format, width: info.width, height: info.height, bytes: data };
}

async function readImage(ctx: NodeRunContext, key: string): Promise<ImageValue> {
  const chunks: Buffer[] = [];
  for await (const chunk of await ctx.files.read(key)) chunks.push(chunk as Buffer);
  try {
    const img = sharp(Buffer.concat(chunks));
    const meta = await img.metadata();
    const format = (FORMATS as readonly string[]).includes(meta.format ?? '')
      ? (meta.format as ImageValue['format'])
      : 'png';
    return await toImage(img, format);
  } catch (err) {
    throw new HearthError('WORKFLOW_INVALID', `${key} is not an image sharp can read: ${(err as Error).message}`);
  }
}

const img = (v: unknown) => sharp((v as ImageValue).bytes);
const keep = (v: unknown) => (v as ImageValue).format;
const IMAGE = { type: 'IMAGE' } as const;
const OUT = [{ type: 'IMAGE', name: 'IMAGE' }] as const;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Image nodes, on libvips through sharp. */
export const imageNodes: NodeDefinition[] = [
  {
    name: 'LoadImageFromAtlas',
    displayName: 'Load Image (Atlas)',
    description: 'Reads an image file from Atlas by key.',
    category: 'image',
    inputs: { required: { key: { type: 'STRING', default: '', tooltip: 'e.g. photos/2024/cat.jpg' } } },
    outputs: [
      { type: 'IMAGE', name: 'IMAGE' },
      { type: 'INT', name: 'width' },
      { type: 'INT', name: 'height' },
    ],
    run: async ({ key }, ctx) => {
      const image = await readImage(ctx, key as string);
      return { outputs: [image, image.width, image.height] };
    },
  },
  {
    name: 'LoadImage',
    displayName: 'Load Image',
    description:
      'An image uploaded with POST /upload/image (stored on Atlas under inputs/); MASK is 1 where it is transparent.',
    category: 'image',
    inputs: {
      required: {
        image: {
          type: [],
          choicesFrom: 'inputs',
          tooltip: 'the name /upload/image returned (subfolder/name)',
          extra: { image_upload: true },
        },
      },
    },
    outputs: [
      { type: 'IMAGE', name: 'IMAGE' },
      { type: 'MASK', name: 'MASK' },
    ],
    run: async ({ image }, ctx) => {
      const loaded = await readImage(ctx, `inputs/${image as string}`);
      const { data, info } = await sharp(loaded.bytes)
        .ensureAlpha()
        .extractChannel(3)
        .raw()
        .toBuffer({ resolveWithObject: true });
      const mask = {
        kind: 'mask',
        width: info.width,
        height: info.height,
        data: Float32Array.from(data, (a) => 1 - a / 255),
      };
      return { outputs: [loaded, mask] };
    },
  },
  {
    name: 'ImageResize',
    displayName: 'Resize Image',
    description: 'Scales to a width and height (0 keeps the aspect ratio from the other).',
    category: 'image/transform',
    inputs: {
      required: {
        image: IMAGE,
        width: { type: 'INT', default: 512, min: 0, max: 16_384 },
        height: { type: 'INT', default: 0, min: 0, max: 16_384 },
      },
      optional: { fit: { type: ['cover', 'contain', 'fill', 'inside', 'outside'], default: 'inside' } },
    },
    outputs: OUT,
    run: async ({ image, width, height, fit }) => {
      if (width === 0 && height === 0) throw new HearthError('WORKFLOW_INVALID', 'set width or height (both are 0)');
      const size = { ...(width ? { width: width as number } : {}), ...(height ? { height: height as number } : {}) };
      return { outputs: [await toImage(img(image).resize({ ...size, fit: fit as keyof sharp.FitEnum }), keep(image))] };
    },
  },
  {
    name: 'ImageCrop',
    displayName: 'Crop Image',
    description: 'A rectangle of the image.',
    category: 'image/transform',
    inputs: {
      required: {
        image: IMAGE,
        x: { type: 'INT', default: 0, min: 0, max: 16_384 },
        y: { type: 'INT', default: 0, min: 0, max: 16_384 },
        width: { type: 'INT', default: 256, min: 1, max: 16_384 },
        height: { type: 'INT', default: 256, min: 1, max: 16_384 },
      },
    },
    outputs: OUT,
    run: async ({ image, x, y, width, height }) => {
      const v = image as ImageValue;
      const left = x as number;
      const top = y as number;
      if (left >= v.width || top >= v.height) {
        throw new HearthError(
          'WORKFLOW_INVALID',
          `crop origin ${left},${top} is outside the ${v.width}x${v.height} image`,
        );
      }
      const region = {
        left,
        top,
        width: Math.min(width as number, v.width - left),
        height: Math.min(height as number, v.height - top),
      };
      return { outputs: [await toImage(img(image).extract(region), v.format)] };
    },
  },
  {
    name: 'ImageRotate',
    displayName: 'Rotate / Flip Image',
    description: 'Rotates by an angle (degrees, clockwise) and optionally flips.',
    category: 'image/transform',
    inputs: {
      required: { image: IMAGE, angle: { type: 'FLOAT', default: 90, min: -360, max: 360 } },
      optional: { flip: { type: ['none', 'horizontal', 'vertical', 'both'], default: 'none' } },
    },
    outputs: OUT,
    run: async ({ image, angle, flip }) => {
      let p = img(image).rotate(angle as number, { background: { r: 0, g: 0, b: 0, alpha: 0 } });
      if (flip === 'vertical' || flip === 'both') p = p.flip();
      if (flip === 'horizontal' || flip === 'both') p = p.flop();
      return { outputs: [await toImage(p, keep(image))] };
    },
  },
  {
    name: 'ImageConvert',
    displayName: 'Convert Image',
    description: 'Re-encodes as PNG, JPEG or WebP.',
    category: 'image',
    inputs: {
      required: { image: IMAGE, format: { type: FORMATS, default: 'png' } },
      optional: { quality: { type: 'INT', default: 90, min: 1, max: 100 } },
    },
    outputs: OUT,
    run: async ({ image, format, quality }) => ({
      outputs: [await toImage(img(image), format as ImageValue['format'], quality as number)],
    }),
  },
  {
    name: 'ImageAdjust',
    displayName: 'Adjust Image',
    description: 'Brightness, contrast, saturation (1 = unchanged), blur and sharpen (0 = none).',
    category: 'image/adjust',
    inputs: {
      required: { image: IMAGE },
      optional: {
        brightness: { type: 'FLOAT', default: 1, min: 0, max: 4, step: 0.05 },
        contrast: { type: 'FLOAT', default: 1, min: 0, max: 4, step: 0.05 },
        saturation: { type: 'FLOAT', default: 1, min: 0, max: 4, step: 0.05 },
        blur: { type: 'FLOAT', default: 0, min: 0, max: 100, tooltip: 'Gaussian sigma' },
        sharpen: { type: 'FLOAT', default: 0, min: 0, max: 10, tooltip: 'sigma' },
      },
    },
    outputs: OUT,
    run: async ({ image, brightness, contrast, saturation, blur, sharpen }) => {
      let p = img(image).modulate({ brightness: brightness as number, saturation: saturation as number });
      const c = contrast as number;
      if (c !== 1) p = p.linear(c, 128 * (1 - c));
      if ((blur as number) >= 0.3) p = p.blur(blur as number);
      if ((sharpen as number) > 0) p = p.sharpen({ sigma: sharpen as number });
      return { outputs: [await toImage(p, keep(image))] };
    },
  },
  {
    name: 'ImageComposite',
    displayName: 'Composite Images',
    description: 'Places an overlay image on a base image at x, y.',
    category: 'image/compose',
    inputs: {
      required: {
        base: IMAGE,
        overlay: IMAGE,
        x: { type: 'INT', default: 0, min: 0, max: 16_384 },
        y: { type: 'INT', default: 0, min: 0, max: 16_384 },
      },
    },
    outputs: OUT,
    run: async ({ base, overlay, x, y }) => ({
      outputs: [
        await toImage(
          img(base).composite([{ input: (overlay as ImageValue).bytes, left: x as number, top: y as number }]),
          keep(base),
        ),
      ],
    }),
  },
  {
    name: 'ImageText',
    displayName: 'Overlay Text',
    description: 'Draws a line of text on the image.',
    category: 'image/compose',
    inputs: {
      required: { image: IMAGE, text: { type: 'STRING', default: '' } },
      optional: {
        x: { type: 'INT', default: 8, min: 0, max: 16_384 },
        y: { type: 'INT', default: 32, min: 0, max: 16_384, tooltip: 'the baseline' },
        size: { type: 'INT', default: 24, min: 4, max: 512 },
        color: { type: 'STRING', default: '#ffffff' },
      },
    },
    outputs: OUT,
    run: async ({ image, text, x, y, size, color }) => {
      const v = image as ImageValue;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${v.width}" height="${v.height}"><text x="${x}" y="${y}" font-size="${size}" font-family="sans-serif" fill="${escapeXml(color as string)}">${escapeXml(text as string)}</text></svg>`;
      return { outputs: [await toImage(img(image).composite([{ input: Buffer.from(svg) }]), v.format)] };
    },
  },
  {
    name: 'ImageList',
    displayName: 'Image List',
    description: 'Gathers up to four images into a list (for a grid, or to save together).',
    category: 'image/compose',
    inputs: { required: { image_1: IMAGE }, optional: { image_2: IMAGE, image_3: IMAGE, image_4: IMAGE } },
    outputs: [{ type: 'IMAGE', name: 'IMAGES', isList: true }],
    run: async (inputs) => ({
      outputs: [[1, 2, 3, 4].map((i) => inputs[`image_${i}`]).filter((v) => v !== undefined)],
    }),
  },
  {
    name: 'ImageGrid',
    displayName: 'Image Grid',
    description: 'Lays several images (a list) out in a grid of equal cells.',
    category: 'image/compose',
    inputs: {
      required: { images: { type: 'IMAGE', acceptsList: true }, columns: { type: 'INT', default: 2, min: 1, max: 64 } },
      optional: { cell: { type: 'INT', default: 256, min: 8, max: 4096, tooltip: 'cell width and height' } },
    },
    outputs: OUT,
    run: async ({ images, columns, cell }, ctx) => {
      const list = (Array.isArray(images) ? images : [images]) as ImageValue[];
      const cols = Math.min(columns as number, list.length);
      const size = cell as number;
      const tiles = [];
      for (let i = 0; i < list.length; i++) {
        ctx.progress(i, list.length);
        const input = await sharp(list[i]!.bytes)
          .resize({ width: size, height: size, fit: 'contain', background: '#0000' })
          .png()
          .toBuffer();
        tiles.push({ input, left: (i % cols) * size, top: Math.floor(i / cols) * size });
      }
      const canvas = sharp({
        create: { width: cols * size, height: Math.ceil(list.length / cols) * size, channels: 4, background: '#0000' },
      });
      return { outputs: [await toImage(canvas.composite(tiles))] };
    },
  },
];
