/**
 * The one config loader: defaults ← YAML file ← HEARTH_* environment,
 * validated by the schema. Every problem is collected and reported at once,
 * each naming where it came from (key path and file line, or the variable).
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { type Document, isMap, isNode, isPair, isScalar, LineCounter, parseDocument } from 'yaml';
import type * as z from 'zod';
import { describeError, HearthError } from '../errors.js';
import { DEFAULT_LISTEN_HOST, DEFAULT_PORT, defaultListener, homeDirectory, machineDefaults } from './defaults.js';
import { CONFIG_FILE_VARIABLE, HOST_VARIABLE, readEnvOverrides } from './env.js';
import {
  allowedKeysAt,
  checkReferences,
  configLeaves,
  configSchema,
  type HearthConfig,
  isPlainObject,
  suggest,
} from './schema.js';
import { describeValue, formatListenAddress, parseCidr, parseListenAddress } from './values.js';

/** What loadConfig found. */
export interface LoadedConfig {
  config: HearthConfig;
  /** The config file used (absolute), or null when only defaults and the environment applied. */
  source: string | null;
  /** Things worth logging that do not stop start-up (unknown HEARTH_* variables, an ignored HEARTH_HOST). */
  warnings: string[];
}

/** Options for {@link loadConfig}. */
export interface LoadConfigOptions {
  /** The config file (`--config PATH`); relative to `cwd`. It must exist. Without it: $HEARTH_CONFIG, then ./hearth.yaml if present. */
  file?: string;
  /** The environment to read HEARTH_*, HOME and XDG_* from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** The folder relative paths resolve against when they do not come from a file. Default: process.cwd(). */
  cwd?: string;
}

/** Options for {@link configFromObject}. */
export interface ConfigFromObjectOptions {
  /** The environment to read HEARTH_*, HOME and XDG_* from. Default: none (`{}`), so tests are hermetic. */
  env?: NodeJS.ProcessEnv;
  /** The folder relative paths in `input` resolve against. Default: process.cwd(). */
  cwd?: string;
}

/**
 * Loads the configuration. Throws HearthError CONFIG_NOT_FOUND when a named
 * file does not exist, CONFIG_INVALID (every problem on its own line, also in
 * `details.problems`) when the file or environment holds something wrong.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const located = locateConfigFile(options.file, env, cwd);
  if (!located) return resolveConfig({ input: {}, baseDir: cwd, env, cwd, source: null, document: null });
  const { input, document } = readConfigFile(located.path, located.namedBy);
  return resolveConfig({ input, baseDir: dirname(located.path), env, cwd, source: located.path, document });
}

/**
 * Builds a config from an object shaped like the YAML file, with the same
 * defaults, validation and (when `env` is given) overrides. For tests and
 * programs that embed hearth.
 */
export function configFromObject(input: unknown, options: ConfigFromObjectOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  return resolveConfig({ input, baseDir: cwd, env: options.env ?? {}, cwd, source: null, document: null });
}

/** Where the embedded database (PGlite) lives: on Atlas, never on the node. */
export function embeddedDbDir(config: HearthConfig): string {
  return join(config.atlas.files, '.hearth', 'db');
}

/**
 * Where `hearth engine build` puts llama-server: node.engineDir, else beside
 * the node cache (`<cacheDir>-engine`): node-local and re-derivable, but
 * outside the cache's LRU eviction and outside what a cache wipe removes.
 */
export function engineDirOf(config: HearthConfig): string {
  return config.node.engineDir ?? `${config.node.cacheDir.replace(/\/+$/, '')}-engine`;
}

function locateConfigFile(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { path: string; namedBy: string | null } | null {
  if (file !== undefined && file !== '') return { path: resolve(cwd, file), namedBy: '--config' };
  const fromEnv = env[CONFIG_FILE_VARIABLE];
  if (fromEnv) return { path: resolve(cwd, fromEnv), namedBy: CONFIG_FILE_VARIABLE };
  const inCwd = join(cwd, 'hearth.yaml');
  return existsSync(inCwd) ? { path: inCwd, namedBy: null } : null;
}

function readConfigFile(path: string, namedBy: string | null): { input: unknown; document: Document } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new HearthError('CONFIG_NOT_FOUND', [path, namedBy ? ` (named by ${namedBy})` : ''], {
        cause: err,
        details: { source: path },
      });
    }
    const what = code === 'EISDIR' ? 'is a folder; name the YAML file in it' : `cannot be read: ${describeError(err)}`;
    throw new HearthError('CONFIG_INVALID', `config file ${path} ${what}`, { cause: err, details: { source: path } });
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true });
  (document as DocumentWithLines).lineCounter = lineCounter;
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => {
      const at = error.linePos?.[0];
      // prettyErrors appends " at line L, column C:" and a code excerpt; keep the first clause.
      const message = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.code;
      return at ? `${path}:${at.line}:${at.col}: ${message}` : `${path}: ${message}`;
    });
    throw invalid(`invalid YAML in ${path}`, problems, path);
  }
  let input: unknown;
  try {
    input = document.toJS();
  } catch (err) {
    throw invalid(`invalid YAML in ${path}`, [`${path}: ${describeError(err)}`], path);
  }
  return { input: input ?? {}, document };
}

type DocumentWithLines = Document & { lineCounter?: LineCounter };

interface ResolveInput {
  /** The file's (or caller's) settings. */
  input: unknown;
  /** What relative paths in `input` resolve against. */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  source: string | null;
  document: Document | null;
}

function resolveConfig({ input, baseDir, env, cwd, source, document }: ResolveInput): LoadedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!isPlainObject(input)) {
    throw invalid(
      invalidHeader(source, 1),
      [`(top level): expected a mapping of settings (atlas:, node:, listeners:, ...), got ${describeValue(input)}`],
      source,
    );
  }
  const home = homeDirectory(env);
  const fileLayer = withoutNulls(input) as Record<string, unknown>;
  resolvePaths(fileLayer, (path) => absolutePath(path, baseDir, home));
  const overrides = readEnvOverrides(env, (path) => absolutePath(path, cwd, home));
  warnings.push(...overrides.warnings);

  const hostSetting = env[HOST_VARIABLE]?.trim();
  if (hostSetting) {
    if (fileLayer.listeners !== undefined) {
      warnings.push(`${HOST_VARIABLE} is ignored: the config file defines listeners; set their addresses there`);
    } else {
      try {
        const address = parseHostVariable(hostSetting);
        overrides.values.listeners = [defaultListener(formatListenAddress(address))];
        overrides.sources.set('listeners[0].address', HOST_VARIABLE);
        if (!isLoopbackHost(address.host)) {
          warnings.push(
            `${HOST_VARIABLE}=${hostSetting}: the default listener admits only the loopback zone, so other machines are refused; define zones and listeners in the config file to serve them`,
          );
        }
      } catch (err) {
        problems.push(`${HOST_VARIABLE}: ${(err as Error).message}`);
      }
    }
  }

  const merged = mergeLayers(machineDefaults(env, osHostname()), fileLayer, overrides.values);
  const result = configSchema.safeParse(merged, { reportInput: true });
  if (result.success && problems.length === 0) return { config: result.data, source, warnings };

  const describe = problemDescriber(overrides.sources, document);
  const seen = new Set<string>();
  const add = (line: string) => {
    if (!seen.has(line)) problems.push(line);
    seen.add(line);
  };
  if (!result.success) {
    for (const issue of result.error.issues) for (const line of describeIssue(issue, describe)) add(line);
    // The schema skips its cross-key rules once another rule failed; run them here so every problem shows at once.
    checkReferences(merged, (path, message) => add(describe(path, message)));
  }
  throw invalid(invalidHeader(source, problems.length), problems, source);
}

function invalidHeader(source: string | null, count: number): string {
  return `invalid configuration${source ? ` in ${source}` : ''} (${count} problem${count === 1 ? '' : 's'})`;
}

function invalid(header: string, problems: string[], source: string | null): HearthError {
  return new HearthError('CONFIG_INVALID', `${header}:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
    details: { source, problems },
  });
}

/** `host`, `host:port`, `:port`, `http://host:port` (as OLLAMA_HOST). */
function parseHostVariable(text: string) {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme && scheme[1]?.toLowerCase() !== 'http') {
    throw new RangeError(
      `${JSON.stringify(text)}: hearth serves plain http (put TLS in a reverse proxy); use host:port or http://host:port`,
    );
  }
  const rest = (scheme ? text.slice(scheme[0].length) : text).replace(/\/+$/, '');
  return parseListenAddress(rest, { defaultHost: DEFAULT_LISTEN_HOST, defaultPort: DEFAULT_PORT });
}

function isLoopbackHost(host: string): boolean {
  return host === '::1' || parseCidr(host).address.startsWith('127.');
}

function absolutePath(path: string, baseDir: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Resolves every path-kind setting in a layer (strings only; anything else is the schema's to refuse). */
function resolvePaths(layer: Record<string, unknown>, toAbsolute: (path: string) => string): void {
  for (const leaf of configLeaves()) {
    if (leaf.kind !== 'path') continue;
    let parent: unknown = layer;
    for (const key of leaf.path.slice(0, -1)) parent = isPlainObject(parent) ? parent[key] : undefined;
    const last = leaf.path[leaf.path.length - 1];
    if (isPlainObject(parent) && last !== undefined && typeof parent[last] === 'string' && parent[last] !== '') {
      parent[last] = toAbsolute(parent[last] as string);
    }
  }
}

/** An empty YAML value (`log:` or `~`) means "the default", so nulls in mappings are dropped. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) if (child !== null) out[key] = withoutNulls(child);
  return out;
}

/** Mappings merge key by key; lists and scalars from a later layer replace. */
function mergeLayers(...layers: unknown[]): unknown {
  let merged: unknown;
  for (const layer of layers) merged = mergeTwo(merged, layer);
  return merged;
}

function mergeTwo(base: unknown, layer: unknown): unknown {
  if (layer === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(layer)) return layer;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(layer)) out[key] = mergeTwo(base[key], value);
  return out;
}

type Describe = (path: readonly PropertyKey[], message: string) => string;

/** Turns (path, message) into one line naming the variable or the key path and file line. */
function problemDescriber(envSources: Map<string, string>, document: Document | null): Describe {
  return (path, message) => {
    const key = keyPath(path);
    for (let n = path.length; n > 0; n--) {
      const variable = envSources.get(keyPath(path.slice(0, n)));
      if (variable) return `${variable} (${key}): ${message}`;
    }
    const line = document ? lineOf(document, path) : undefined;
    return `${key || '(top level)'}: ${message}${line ? ` (line ${line})` : ''}`;
  };
}

function describeIssue(issue: z.core.$ZodIssue, describe: Describe): string[] {
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(issue.path) ?? [];
    return issue.keys.map((key) =>
      describe([...issue.path, key], `unknown key; allowed: ${allowed.join(', ')}${suggest(key, allowed)}`),
    );
  }
  return [describe(issue.path, issueMessage(issue))];
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'required';
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(input)}`;
    case 'invalid_value':
      return `${describeValue(input)} is not allowed; allowed: ${issue.values.map(String).join(', ')}`;
    case 'too_small': {
      const minimum = Number(issue.minimum);
      if (issue.origin === 'array' || issue.origin === 'set') {
        return `needs at least ${minimum} ${minimum === 1 ? 'entry' : 'entries'}`;
      }
      if (issue.origin === 'string') return 'cannot be empty';
      return `${describeValue(input)} is too small; allowed: ${issue.inclusive ? `${minimum} or more` : `more than ${minimum}`}`;
    }
    case 'invalid_key':
      return issue.issues.map((inner) => inner.message).join('; ');
    case 'too_big': {
      const maximum = Number(issue.maximum);
      return `${describeValue(input)} is too large; allowed: ${issue.inclusive ? `up to ${maximum}` : `less than ${maximum}`}`;
    }
    default:
      return issue.message;
  }
}

/** `['listeners', 0, 'address']` → `listeners[0].address` */
function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)),
    '',
  );
}

/** The 1-based line of the value (or, failing that, the key) at `path` in the file. */
function lineOf(document: Document, path: readonly PropertyKey[]): number | undefined {
  const lineCounter = (document as DocumentWithLines).lineCounter;
  if (!lineCounter) return undefined;
  const node = document.getIn(path as unknown[], true);
  let offset = isNode(node) ? node.range?.[0] : undefined;
  if (offset === undefined && path.length > 0) {
    const parent = document.getIn(path.slice(0, -1) as unknown[], true);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === path.at(-1));
      offset = isNode(pair?.key) ? pair.key.range?.[0] : undefined;
    }
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}
