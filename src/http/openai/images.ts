import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import {
  checkSamplerNames,
  GENERATE_DEFAULTS,
  type GenerateRequest,
  generateImages,
  parseSize,
} from '../../images/generate.js';
import type { SamplerName } from '../../images/samplers.js';
import type { SchedulerName } from '../../images/schedule.js';
import { OUTPUT_FOLDER } from '../../workflows/nodes/index.js';
import { parseMultipart } from '../comfy/multipart.js';
import { clientGone } from '../stream.js';
import { parseRequest } from '../validate.js';
import { imageSchema } from './images-schema.js';

type ImageBody = z.infer<typeof imageSchema>;

/** The image model named in a request, or a 404/400 saying what to use instead. */
async function imageModel(ctx: AppContext, model: string) {
  const entry = await ctx.models.find(model);
  if (!entry || !ctx.models.imageFiles(entry))
    throw new HearthError(
      entry ? 'BAD_REQUEST' : 'MODEL_NOT_FOUND',
      entry
        ? `"${model}" is a language model; images need an image model (hearth list shows the type)`
        : `image model "${model}" not found: create it with hearth create (FROM a diffusers ONNX folder)`,
      { details: { param: 'model' } },
    );
  return entry;
}

/** The generation request an images body describes (hearth's defaults where it says nothing). */
export async function imageRequest(ctx: AppContext, body: ImageBody): Promise<GenerateRequest> {
  const entry = await imageModel(ctx, body.model);
  const { width, height } = parseSize(body.size ?? undefined, entry.details.family === 'sdxl' ? 'sdxl' : 'sd');
  const sampler = body.sampler ?? GENERATE_DEFAULTS.sampler;
  const scheduler = body.scheduler ?? GENERATE_DEFAULTS.scheduler;
  checkSamplerNames(sampler, scheduler);
  return {
    model: body.model,
    prompt: body.prompt,
    ...(body.negative_prompt ? { negativePrompt: body.negative_prompt } : {}),
    n: body.n ?? 1,
    width,
    height,
    steps: body.steps ?? GENERATE_DEFAULTS.steps,
    cfg: body.cfg_scale ?? GENERATE_DEFAULTS.cfg,
    seed: body.seed ?? Math.floor(Math.random() * 2 ** 32),
    sampler: sampler as SamplerName,
    scheduler: scheduler as SchedulerName,
  };
}

export { imageSchema };

/** POST /v1/images/generations and /v1/images/edits (img2img) on the image models of the library. */
export async function imageRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const run = async (request: FastifyRequest, reply: FastifyReply, body: ImageBody, init?: Buffer) => {
    const pngs = await generateImages(ctx.images, {
      ...(await imageRequest(ctx, body)),
      ...(init ? { init: { bytes: init, denoise: body.strength ?? 0.75 } } : {}),
      signal: clientGone(reply),
    });
    const data: Array<{ b64_json: string } | { url: string }> = [];
    for (const png of pngs) {
      if (body.response_format === 'url') {
        // kept on Atlas under outputs/openai/, served by /view like workflow outputs
        const filename = `${randomUUID()}.png`;
        await ctx.atlas.files.put(`${OUTPUT_FOLDER}/openai/${filename}`, png, { overwrite: false });
        const base = `${request.protocol}://${request.headers.host ?? 'localhost'}`;
        data.push({ url: `${base}/view?filename=${filename}&subfolder=openai&type=output` });
      } else data.push({ b64_json: png.toString('base64') });
    }
    return { created: Math.floor(Date.now() / 1000), data };
  };

  app.post('/v1/images/generations', async (request, reply) =>
    run(request, reply, parseRequest(imageSchema, request.body)),
  );

  app.post('/v1/images/edits', async (request, reply) => {
    const type = request.headers['content-type'] ?? '';
    if (!Buffer.isBuffer(request.body) || !type.startsWith('multipart/form-data'))
      throw new HearthError('BAD_REQUEST', 'send multipart/form-data with an "image" file part and a "prompt" field', {
        details: { param: 'image' },
      });
    const parts = parseMultipart(request.body, type);
    const fields: Record<string, string> = {};
    for (const p of parts) if (p.filename === undefined) fields[p.name] = p.data.toString('utf8');
    const image = parts.find((p) => (p.name === 'image' || p.name === 'image[]') && p.filename !== undefined);
    if (!image)
      throw new HearthError('BAD_REQUEST', 'the "image" file part is missing', { details: { param: 'image' } });
    return run(request, reply, parseRequest(imageSchema, fields), image.data);
  });
}
