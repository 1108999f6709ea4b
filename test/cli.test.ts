// The hearth command as a person uses it: real processes, real exit codes.
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngineDir } from './support/engine.js';
import {
  type CliOptions,
  type CliRun,
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  runHearthCli,
  startHearthInProcess,
} from './support/hearth.js';
import { makeTestModels } from './support/models.js';

function hearthCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return runHearthCli(dirs, args, { ...opts, env: { HEARTH_NODE_ENGINE_DIR: testEngineDir(), ...opts.env } });
}

let dirs: HearthDirs;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-cli-');
  await mkdir(dirs.home, { recursive: true });
});
afterAll(async () => {
  await dirs?.cleanup();
});

describe('hearth (no server)', () => {
  it('prints its version and help', async () => {
    const version = await hearthCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await hearthCli(['--help']);
    for (const cmd of [
      'serve',
      'doctor',
      'config',
      'run',
      'pull',
      'list',
      'ps',
      'show',
      'rm',
      'cp',
      'create',
      'stop',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`\\n  ${cmd}\\b`));
    }
  });

  it('config check names a bad key and masks secrets', async () => {
    const bad = join(dirs.root, 'bad.yaml');
    await writeFile(bad, 'node:\n  cachDir: /tmp/x\n');
    const refused = await hearthCli(['config', 'check', '--config', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/node\.cachDir/);
    expect(refused.stderr).toMatch(/cacheDir/); // the suggestion
    const good = join(dirs.root, 'good.yaml');
    await writeFile(good, 'atlas:\n  database: postgres://hearth:hunter2@atlas.lan:5432/hearth\n  files: ./atlas\n');
    const ok = await hearthCli(['config', 'check', '--config', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('postgres://hearth:***@atlas.lan:5432/hearth');
    expect(ok.stdout).not.toContain('hunter2');
  });

  it('doctor passes on the embedded default', async () => {
    const home = join(dirs.root, 'doctor-home');
    // The default Atlas folder, with the run's empty PGlite template in it (creating one costs seconds of CPU).
    const atlas = join(home, '.local', 'share', 'hearth', 'atlas');
    await mkdir(atlas, { recursive: true });
    await cp(join(dirs.atlas, '.hearth'), join(atlas, '.hearth'), { recursive: true });
    const res = await hearthCli(['doctor'], { env: { HOME: home } });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/✓ atlas files/);
    expect(res.stdout).toMatch(/✓ atlas database/);
    expect(res.stdout).toMatch(/✓ gpu: cpu/);
    // the tests' shared llama-server build (test/support/engine.ts) is this node's engine
    expect(res.stdout).toMatch(/✓ engine: server on cpu: llama-server processes \(hearth engine build nlc/);
    // the CUDA runtime a CUDA node would need, read from node-llama-cpp's prebuilt CUDA libraries
    expect(res.stdout).toMatch(
      /✓ cuda runtime: main \(@node-llama-cpp\/linux-x64-cuda\) needs the CUDA \d+ runtime \(libcudart\.so\.\d+, libcublas\.so\.\d+\) and the NVIDIA driver \(libcuda\.so\.1\): .*\[not used: backend cpu\]/,
    );
    expect(res.stdout).toMatch(/all checks passed/);
  });

  it('doctor fails naming an unwritable Atlas path and an unreachable PostgreSQL', async () => {
    const notADir = join(dirs.root, 'a-file');
    await writeFile(notADir, 'x');
    const res = await hearthCli(['doctor'], {
      env: {
        HEARTH_ATLAS_FILES: join(notADir, 'atlas'),
        HEARTH_ATLAS_DATABASE: 'postgres://hearth:s3cret@127.0.0.1:1/hearth',
      },
    });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/✗ atlas files: .*a-file/);
    expect(res.stdout).toMatch(/✗ atlas database: .*127\.0\.0\.1:1/);
    expect(res.stdout + res.stderr).not.toContain('s3cret');
    expect(res.stderr).toMatch(/doctor found 2 problems/);
  });
});

describe('hearth model commands (against a running server)', () => {
  let hearth: InProcessHearth;
  let env: Record<string, string>;

  beforeAll(async () => {
    await mkdir(join(dirs.root, 'models'), { recursive: true });
    await makeTestModels(join(dirs.root, 'models'));
    hearth = await startHearthInProcess(dirs, { inference: { numCtx: 1024 } });
    env = { HEARTH_HOST: hearth.url };
  });
  afterAll(async () => {
    await hearth?.close();
  });

  it('creates from a Modelfile, lists, shows, runs, copies, stops and removes', async () => {
    await writeFile(
      join(dirs.root, 'models', 'Modelfile'),
      'FROM ./chat.gguf\nPARAMETER temperature 0.1\nPARAMETER num_predict 6\nSYSTEM """You are a test."""\n',
    );
    const create = await hearthCli(['create', 'tiny', '-f', join(dirs.root, 'models', 'Modelfile')], { env });
    expect(create.code, create.stderr).toBe(0);
    expect(create.stdout.match(/^success$/gm)).toEqual(['success']);

    const list = await hearthCli(['list'], { env });
    expect(list.stdout).toMatch(/^NAME\s+ID\s+SIZE\s+MODIFIED/);
    expect(list.stdout).toMatch(/tiny:latest\s+[0-9a-f]{12}\s+\d/);

    const show = await hearthCli(['show', 'tiny'], { env });
    expect(show.stdout).toMatch(/architecture\s+llama/);
    expect(show.stdout).toMatch(/temperature/);
    expect((await hearthCli(['show', 'tiny', '--system'], { env })).stdout.trim()).toBe('You are a test.');

    const run = await hearthCli(['run', 'tiny', 'Say hi'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.length).toBeGreaterThan(0);
    const piped = await hearthCli(['run', 'tiny'], { env, input: 'a note from stdin\n' });
    expect(piped.code, piped.stderr).toBe(0);

    const ps = await hearthCli(['ps'], { env });
    expect(ps.stdout).toMatch(/tiny:latest.*100% CPU/);
    expect((await hearthCli(['stop', 'tiny'], { env })).code).toBe(0);
    expect((await hearthCli(['ps'], { env })).stdout).not.toMatch(/tiny:latest/);

    expect((await hearthCli(['cp', 'tiny', 'tiny2'], { env })).stdout).toBe("copied 'tiny' to 'tiny2'\n");
    expect((await hearthCli(['rm', 'tiny2'], { env })).stdout).toBe("deleted 'tiny2'\n");
    const missing = await hearthCli(['rm', 'tiny2'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('hearth: model "tiny2" not found, try pulling it first\n');
  });

  it('says where it tried to connect when no server answers', async () => {
    const res = await hearthCli(['list'], { env: { HEARTH_HOST: '127.0.0.1:1' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/could not connect to hearth at http:\/\/127\.0\.0\.1:1.*hearth serve/);
  });
});
