// A `hearth serve` process killed with SIGKILL in the middle of an image generation: the prompt's
// ticket (the jobs' lease queue) comes back when the node restarts, the prompt runs once more and
// completes, and Atlas never holds half a PNG (the file store writes a temporary name, then renames).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDiffusersModel } from './fixtures/onnx/diffusers.js';
import { connectComfy } from './support/comfy.js';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { call } from './support/jobs.js';

const ENV = {
  HEARTH_WORKFLOWS_POLL_INTERVAL: '200ms',
  HEARTH_IMAGES_EXECUTION_PROVIDER: 'cpu',
  HEARTH_NODE_ID: 'crash-node',
};

let dirs: HearthDirs;
const processes: HearthProcess[] = [];

async function start(): Promise<HearthProcess> {
  const p = await startHearthProcess({ dirs, env: ENV });
  processes.push(p);
  return p;
}

/** Every file under Atlas `outputs/`, hidden ones (the store's temporaries) included. */
async function outputFiles(): Promise<string[]> {
  const root = join(dirs.atlas, 'outputs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(root.length + 1));
}

/** Text-to-image long enough (many steps) to be killed halfway. */
function longImagePrompt(steps: number) {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'tiny-sd:latest' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { batch_size: 1, width: 256, height: 256 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { clip: ['4', 1], text: 'a lighthouse at dusk' } },
    '7': { class_type: 'CLIPTextEncode', inputs: { clip: ['4', 1], text: 'blurry' } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        model: ['4', 0],
        seed: 42,
        steps,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        positive: ['6', 0],
        negative: ['7', 0],
        latent_image: ['5', 0],
        denoise: 1,
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'crash' } },
  };
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-wf-crash-');
  await generateDiffusersModel({ dir: join(dirs.atlas, 'models', 'sd', 'tiny'), family: 'sd15' });
}, 120_000);
afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await dirs?.cleanup();
});

describe('a node killed mid-generation', () => {
  it('runs the prompt once more after the restart; one whole PNG on Atlas, never half of one', async () => {
    const first = await start();
    const created = await call(first.url, '/api/create', {
      model: 'tiny-sd',
      from: 'atlas:models/sd/tiny',
      stream: false,
    });
    expect(created.status, created.text).toBe(200);

    const ws = await connectComfy(first.url, 'crash-client');
    const sent = await call(first.url, '/prompt', { prompt: longImagePrompt(400), client_id: 'crash-client' });
    expect(sent.status, sent.text).toBe(200);
    const id: string = sent.json.prompt_id;
    // Killed a few steps into sampling: well before VAEDecode and SaveImage.
    await ws.until((f) => f.type === 'progress' && f.data.prompt_id === id && f.data.value >= 3, 120_000);
    ws.close();
    await first.stop('SIGKILL');

    expect(await outputFiles()).toEqual([]);

    const second = await start();
    // Still queued (the dead process's run), not in the history.
    expect((await call(second.url, `/history/${id}`)).json).toEqual({});
    const deadline = Date.now() + 300_000;
    let entry: any;
    while (!entry && Date.now() < deadline) {
      entry = (await call(second.url, `/history/${id}`)).json[id];
      if (!entry) await new Promise((r) => setTimeout(r, 500));
    }
    expect(entry, 'the prompt did not finish after the restart').toBeDefined();
    expect(entry.status).toMatchObject({ status_str: 'success', completed: true, node: 'crash-node' });
    const images = entry.outputs['9'].images;
    expect(images).toEqual([{ filename: 'crash_00001_.png', subfolder: '', type: 'output' }]);

    // One whole PNG, nothing else (no temporary left behind by the killed process).
    expect(await outputFiles()).toEqual(['crash_00001_.png']);
    const meta = await sharp(join(dirs.atlas, 'outputs', 'crash_00001_.png')).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 256, height: 256 });

    // The restarted node said it ran the prompt again, once; nothing is left queued.
    expect(second.logs().match(/running a prompt again/g)).toHaveLength(1);
    expect((await call(second.url, '/queue')).json).toEqual({ queue_running: [], queue_pending: [] });
  }, 600_000);
});
