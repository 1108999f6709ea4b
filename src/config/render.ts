/**
 * Prints the effective configuration as YAML that loads back to the same
 * config: sizes and durations in their units, the built-in loopback zone left
 * out, and secrets masked so the output can go into logs and bug reports.
 */
import { stringify } from 'yaml';
import { LOOPBACK_ZONE } from './defaults.js';
import { configLeaves, type HearthConfig, isPlainObject } from './schema.js';
import { formatBytesExact, formatDuration, maskUrlPassword, SECRET_NAME } from './values.js';

const MASK = '***';

/** YAML of the effective config with secrets masked (URL passwords; values of keys named *password*, *secret*, *token*, *key*). */
export function renderConfig(config: HearthConfig): string {
  const out = structuredClone(config) as unknown as Record<string, unknown>;
  for (const leaf of configLeaves()) {
    if (leaf.kind !== 'size' && leaf.kind !== 'duration') continue;
    const parent = leaf.path
      .slice(0, -1)
      .reduce<unknown>((node, key) => (isPlainObject(node) ? node[key] : undefined), out);
    const key = leaf.path.at(-1);
    if (!isPlainObject(parent) || key === undefined || typeof parent[key] !== 'number') continue;
    const value = parent[key] as number;
    // Negative durations mean "forever"; -1 (seconds) reads back as forever too.
    parent[key] = leaf.kind === 'size' ? formatBytesExact(value) : value < 0 ? -1 : formatDuration(value);
  }
  if (isPlainObject(out.zones)) delete out.zones[LOOPBACK_ZONE];
  return stringify(maskSecrets(out, false), { lineWidth: 0 });
}

/**
 * A copy of `value` with secrets masked. Keys of user-named maps (zones) are
 * names, not settings, so they never trigger name-based masking.
 */
export function maskSecrets(value: unknown, inUserMap = false): unknown {
  if (typeof value === 'string') return maskUrlPassword(value);
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    // Only text can hold a secret: a number under such a name is a count (`knowledge.chunkTokens`).
    if (!inUserMap && SECRET_NAME.test(key) && typeof child === 'string' && child !== '') {
      out[key] = MASK;
    } else if (!inUserMap && SECRET_NAME.test(key) && Array.isArray(child)) {
      out[key] = child.map(() => MASK);
    } else {
      out[key] = maskSecrets(child, key === 'zones');
    }
  }
  return out;
}
