// Read-only and full filesystems for tests. Tests run as root, for whom chmod changes nothing, so a
// read-only folder is a read-only bind mount and a full disk is a small tmpfs. Both need root and
// mount(8): without them the test fails, naming what is missing (never a silent skip).
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

export interface Mount {
  path: string;
  /** unmounts (lazily, so an open file cannot keep it); safe to call twice */
  unmount(): void;
}

function mount(args: string[], path: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`this test mounts a filesystem at ${path} and must run as root (uid ${process.getuid?.()})`);
  }
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`mount ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

function unmounter(path: string): () => void {
  let mounted = true;
  return () => {
    if (!mounted) return;
    mounted = false;
    execFileSync('umount', ['-l', path], { stdio: 'ignore' });
  };
}

/** Makes the existing folder `path` read-only in place (a bind mount of itself, remounted read-only). */
export async function readOnlyFolder(path: string): Promise<Mount> {
  await mkdir(path, { recursive: true });
  mount(['--bind', path, path], path);
  const unmount = unmounter(path);
  try {
    mount(['-o', 'remount,ro,bind', path], path);
  } catch (err) {
    unmount();
    throw err;
  }
  return { path, unmount };
}

/** A tmpfs of `bytes` at `path` (made if missing): writes past its size fail with ENOSPC. */
export async function smallFilesystem(path: string, bytes: number): Promise<Mount> {
  await mkdir(path, { recursive: true });
  mount(['-t', 'tmpfs', '-o', `size=${bytes}`, 'hearth-test', path], path);
  return { path, unmount: unmounter(path) };
}
