/**
 * Atlas's health in words: what `hearth doctor` prints and the Node screen of the web UI shows
 * (one wording for both). Each throws when that part of Atlas is unusable, saying why.
 */

import { formatBytes } from '../units.js';
import type { AtlasDb } from './db/index.js';
import { type FileStore, STALE_TEMPORARY_MS } from './files/index.js';

/** The database: reachable, and whether its schema is this hearth's. */
export async function atlasDbHealth(db: AtlasDb): Promise<string> {
  await db.ping(5_000);
  const status = await db.migrationStatus();
  if (status.unknown.length) {
    throw new Error(
      `${db.describe}: it has migrations this hearth does not know (${status.unknown.join(', ')}): a newer hearth wrote it; upgrade this one`,
    );
  }
  if (status.pending.length) {
    return `${db.describe}: reachable; ${status.pending.length} migration(s) pending (${status.pending.join(', ')}), applied when \`hearth serve\` starts`;
  }
  return `${db.describe}: reachable, ${status.applied.length} migrations, schema current`;
}

/** The file store: writable, and what interrupted writes left behind. */
export async function atlasFilesHealth(files: FileStore): Promise<string> {
  await files.checkWritable();
  const stale = await files.staleTemporaries(STALE_TEMPORARY_MS);
  const leftovers = stale.count
    ? `; ${stale.count} temporary file(s) (${formatBytes(stale.bytes)}) left by interrupted writes, removed when hearth serve starts`
    : '; no temporary files left by interrupted writes';
  return `${files.describe} is writable${leftovers}`;
}
