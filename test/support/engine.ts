// The server engine (llama-server) the tests share: built once per machine, outside the repo and outside
// every test's temporary folders, and named in each test hearth's config as node.engineDir.
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { type BuildProgress, buildServer, type ServerBuild } from '../../src/engine/server/build.js';

/** Overrides where the tests' build lives (an absolute path). */
export const TEST_ENGINE_DIR_ENV = 'HEARTH_TEST_ENGINE_DIR';

/**
 * `$HEARTH_TEST_ENGINE_DIR`, else `$XDG_CACHE_HOME/hearth-test-engine`, else `~/.cache/hearth-test-engine`:
 * one build per machine and node-llama-cpp version (the build key names the version, backend and CPU),
 * reused by every run and every checkout; delete the folder to rebuild.
 */
export function testEngineDir(): string {
  const explicit = process.env[TEST_ENGINE_DIR_ENV];
  if (explicit && isAbsolute(explicit)) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'hearth-test-engine');
}

/** Builds (or finds) the CPU llama-server the tests use; progress lines go to stderr. */
export async function buildTestEngine(): Promise<ServerBuild> {
  let lastTenth = -1;
  const onProgress = (p: BuildProgress) => {
    if (p.phase !== 'compile') return;
    const tenth = Math.floor((p.done / p.total) * 10);
    if (tenth === lastTenth) return;
    lastTenth = tenth;
    process.stderr.write(
      `hearth tests: building llama-server once for this machine: ${p.done}/${p.total} objects${p.etaSeconds === null ? '' : `, ~${p.etaSeconds} s left`}\n`,
    );
  };
  return buildServer({
    engineDir: testEngineDir(),
    backend: 'cpu',
    onProgress,
    onNote: (line) => process.stderr.write(`hearth tests: ${line}\n`),
  });
}
