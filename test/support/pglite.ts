// Embedded (PGlite) databases for tests. Creating one runs initdb in wasm (seconds of CPU);
// copying an initialised, empty one takes a fraction of that. So the first test of a run that
// needs one builds a template (under the run's folder from global-setup.ts) and every test copies it.
// Built on first use, not in global setup, so runs that never touch PGlite don't pay for it.
import { cp, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';

export interface EmbeddedAtlas {
  /** A temp folder standing for `atlas.files`. */
  atlasDir: string;
  /** `<atlasDir>/.hearth/db`, where hearth keeps the embedded database. */
  embeddedDir: string;
  /** Removes everything (close the database first). */
  cleanup(): Promise<void>;
}

/**
 * A temp Atlas folder whose embedded database exists but has no hearth tables yet (a copy of
 * the run's template). With `{ empty: true }` the database folder does not exist at all.
 * Call it inside a test or hook.
 */
export async function freshEmbeddedAtlas(opts: { empty?: boolean } = {}): Promise<EmbeddedAtlas> {
  const template = opts.empty ? undefined : await pgliteTemplate();
  const atlasDir = await mkdtemp(join(tmpdir(), 'hearth-atlas-'));
  const embeddedDir = join(atlasDir, '.hearth', 'db');
  const cleanup = () => rm(atlasDir, { recursive: true, force: true });
  try {
    if (template) {
      await mkdir(join(atlasDir, '.hearth'), { recursive: true });
      await cp(template, embeddedDir, { recursive: true });
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { atlasDir, embeddedDir, cleanup };
}

let templateHere: Promise<string> | undefined;

/** The run's template data dir: built by the first worker that asks, awaited by the others. */
function pgliteTemplate(): Promise<string> {
  templateHere ??= (async () => {
    const root = inject('pgliteTemplateRoot');
    if (!root) throw new Error('test/support/global-setup.ts did not provide pgliteTemplateRoot');
    const ready = join(root, 'db');
    try {
      await mkdir(join(root, 'building')); // atomic: exactly one worker builds
    } catch {
      return waitFor(ready);
    }
    const scratch = join(root, 'db.partial');
    const pglite = await PGlite.create({ dataDir: scratch });
    await pglite.close();
    await rename(scratch, ready);
    return ready;
  })();
  return templateHere;
}

async function waitFor(path: string): Promise<string> {
  for (let waited = 0; waited < 180_000; waited += 200) {
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    )
      return path;
    await sleep(200);
  }
  throw new Error(`the PGlite template ${path} was not built within 3 minutes (did the worker building it crash?)`);
}
