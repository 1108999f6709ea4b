// The images request's schema, apart from its routes: zod only, so the UI's contract (src/http/ui/contract.ts),
// which web/ type-checks, can build "Create image" on it.
import { z } from 'zod';

/** OpenAI's images request, plus hearth's extensions (seed, steps, negative_prompt, cfg_scale, sampler, scheduler). */
export const imageSchema = z.object({
  model: z.string({ error: 'model is required: an image model in the library (hearth list)' }).min(1),
  prompt: z.string({ error: 'prompt is required' }).min(1, 'prompt must not be empty').max(10_000),
  n: z.coerce.number().int().min(1).max(10).nullish(),
  size: z.string().nullish(),
  response_format: z.enum(['b64_json', 'url']).nullish(),
  quality: z.string().nullish(),
  style: z.string().nullish(),
  user: z.string().nullish(),
  output_format: z.enum(['png']).nullish(),
  seed: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  steps: z.coerce.number().int().min(1).max(500).nullish(),
  cfg_scale: z.coerce.number().min(0).max(100).nullish(),
  negative_prompt: z.string().max(10_000).nullish(),
  sampler: z.string().nullish(),
  scheduler: z.string().nullish(),
  /** edits: how much of the source image to redo */
  strength: z.coerce.number().min(0).max(1).nullish(),
});
