/**
 * HEARTH_* environment overrides. The variable names are derived from the
 * schema (camelCase → UPPER_SNAKE, `.` → `_`), so a new setting gets its
 * variable without anyone writing it down twice.
 */
import { type ConfigLeaf, configLeaves, suggest } from './schema.js';

export const ENV_PREFIX = 'HEARTH_';
/** Names the config file (like --config). */
export const CONFIG_FILE_VARIABLE = 'HEARTH_CONFIG';
/** Like OLLAMA_HOST: the default listener's address (host, host:port, :port or http://host:port). */
export const HOST_VARIABLE = 'HEARTH_HOST';
/** Prints stack traces with CLI errors. */
export const DEBUG_VARIABLE = 'HEARTH_DEBUG';
/** The API key the client commands send (`Authorization: Bearer`), like OPENAI_API_KEY. */
export const API_KEY_VARIABLE = 'HEARTH_API_KEY';
/** HEARTH_* variables that are not settings but are expected: no warning for them. */
export const OTHER_HEARTH_VARIABLES: readonly string[] = [
  CONFIG_FILE_VARIABLE,
  HOST_VARIABLE,
  DEBUG_VARIABLE,
  API_KEY_VARIABLE,
];
/** Prefixes of HEARTH_* variables other tools own (the test harness): no warning for them either. */
export const OTHER_HEARTH_PREFIXES: readonly string[] = ['HEARTH_TEST_'];

/** A setting the environment can override. */
export interface EnvSetting extends ConfigLeaf {
  /** `HEARTH_NODE_CACHE_DIR` */
  variable: string;
}

/** `['node', 'cacheMaxBytes']` → `HEARTH_NODE_CACHE_MAX_BYTES` */
export function envVariableName(path: readonly string[]): string {
  return ENV_PREFIX + path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

let settingsCache: EnvSetting[] | undefined;

/** Every environment-settable setting, in schema order. */
export function envSettings(): EnvSetting[] {
  settingsCache ??= configLeaves().map((leaf) => ({ ...leaf, variable: envVariableName(leaf.path) }));
  return settingsCache;
}

/** The overrides read from an environment. */
export interface EnvOverrides {
  /** A nested partial config, as a YAML file would give it. */
  values: Record<string, unknown>;
  /** Dotted key path (`node.cacheDir`) → the variable that set it, so problems can name the variable. */
  sources: Map<string, string>;
  /** Unknown HEARTH_* variables (the environment holds other tools' settings too, so not errors). */
  warnings: string[];
}

/**
 * Reads HEARTH_* settings. Empty values count as unset (service managers and
 * compose files often pass empty variables). Strings are coerced only as far
 * as the setting's type needs: numbers and booleans; lists split on commas;
 * everything else is left to the schema, so errors read the same as for the file.
 */
export function readEnvOverrides(env: NodeJS.ProcessEnv, resolvePath: (path: string) => string): EnvOverrides {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const warnings: string[] = [];
  const byVariable = new Map(envSettings().map((setting) => [setting.variable, setting]));
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const setting = byVariable.get(variable);
    if (!setting) {
      if (!OTHER_HEARTH_VARIABLES.includes(variable) && !OTHER_HEARTH_PREFIXES.some((p) => variable.startsWith(p))) {
        const known = [...byVariable.keys(), ...OTHER_HEARTH_VARIABLES];
        warnings.push(`${variable} is not a hearth setting and is ignored${suggest(variable, known)}`);
      }
      continue;
    }
    if (raw.trim() === '') continue;
    setIn(values, setting.path, coerce(setting, raw, resolvePath));
    sources.set(setting.path.join('.'), variable);
  }
  return { values, sources, warnings };
}

function coerce(setting: EnvSetting, raw: string, resolvePath: (path: string) => string): unknown {
  const text = raw.trim();
  switch (setting.type) {
    case 'number':
      return /^[+-]?\d+(?:\.\d+)?$/.test(text) ? Number(text) : text;
    case 'boolean': {
      const lower = text.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) return true;
      if (['false', '0', 'no', 'off'].includes(lower)) return false;
      return text;
    }
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    default:
      return setting.kind === 'path' ? resolvePath(text) : text;
  }
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) node = next as Record<string, unknown>;
    else node = node[key] = {};
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}
