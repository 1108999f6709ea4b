import { HearthError } from '../errors.js';
import type { GenerateRequest } from './types.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The checks every request with images passes before it reaches an engine:
 * the model has a vision projector (Ollama's 400 `model "x" does not support
 * images` otherwise), the server engine serves (node-llama-cpp has no
 * multimodal support), and each image is base64 data.
 */
export function checkImages(req: GenerateRequest, serverEngine: boolean): void {
  if (req.kind !== 'chat') return;
  const images = req.messages.flatMap((m) => m.images ?? []);
  if (images.length === 0) return;
  if (!req.model.projector) {
    throw new HearthError('ENGINE_CAPABILITY', `model "${req.model.name}" does not support images`, {
      details: { param: 'images' },
    });
  }
  if (!serverEngine) {
    throw new HearthError(
      'ENGINE_CAPABILITY',
      `model "${req.model.name}" sees images only on the server engine (llama-server), and the in-process engine serves: run \`hearth engine build\` and set inference.engine to auto or server`,
      { details: { param: 'images' } },
    );
  }
  images.forEach((image, i) => {
    const data = image.replace(/\s+/g, '');
    if (data === '' || data.length % 4 === 1 || !BASE64.test(data)) {
      throw new HearthError(
        'BAD_REQUEST',
        `images[${i}] is not base64 image data: send the file's bytes base64-encoded`,
        {
          details: { param: 'images', index: i },
        },
      );
    }
  });
}
