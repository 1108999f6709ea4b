import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheFsError } from './errors.js';

/** A private working folder; `dispose` removes it with everything in it. */
export interface ScratchFolder {
  path: string;
  dispose(): Promise<void>;
}

/**
 * The node's scratch area (`<node.cacheDir>/scratch`): working folders for a job or a workflow run.
 * Nothing in it outlives the process: it is emptied when opened, and `close` removes what is left.
 */
export class ScratchArea {
  readonly dir: string;
  private readonly folders = new Set<string>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Empties (or creates) `dir`: whatever a previous process left there is gone. */
  static async open(dir: string): Promise<ScratchArea> {
    try {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw cacheFsError('clear the scratch folder', dir, err);
    }
    return new ScratchArea(dir);
  }

  /** A fresh folder named `<prefix>-<random>`; the prefix is reduced to safe file-name characters. */
  async create(prefix: string): Promise<ScratchFolder> {
    const safe =
      prefix
        .replace(/[^A-Za-z0-9._-]+/g, '-')
        .replace(/^[.-]+/, '')
        .slice(0, 64) || 'scratch';
    let path: string;
    try {
      path = await mkdtemp(join(this.dir, `${safe}-`));
    } catch (err) {
      throw cacheFsError('create a scratch folder in', this.dir, err);
    }
    this.folders.add(path);
    let disposed: Promise<void> | undefined;
    const dispose = () => {
      disposed ??= rm(path, { recursive: true, force: true }).then(
        () => {
          this.folders.delete(path);
        },
        (err: unknown) => {
          throw cacheFsError('remove scratch folder', path, err);
        },
      );
      return disposed;
    };
    return { path, dispose };
  }

  /** Removes every folder not yet disposed. */
  async close(): Promise<void> {
    await Promise.all([...this.folders].map((path) => rm(path, { recursive: true, force: true })));
    this.folders.clear();
  }
}
