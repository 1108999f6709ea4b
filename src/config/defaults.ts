/**
 * Default values, in one place. Most are constants the schema applies; three
 * depend on the machine (atlas.files, node.id, node.cacheDir) and are computed
 * from the environment by the loader, so a test can pass its own.
 */
import { homedir, hostname as osHostname } from 'node:os';
import { isAbsolute, join } from 'node:path';

export const DEFAULT_PORT = 11434;
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
export const DEFAULT_LISTEN_ADDRESS = `${DEFAULT_LISTEN_HOST}:${DEFAULT_PORT}`;

/** Every service class a listener can serve, in the order they are documented. */
export const SERVICE_CLASSES = ['inference', 'ui', 'workflows', 'jobs', 'admin', 'metrics'] as const;

/** The zone that always exists: the machine itself. It cannot be redefined. */
export const LOOPBACK_ZONE = 'loopback';
export const LOOPBACK_CIDRS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/** The zone `adminZones` means when it is not set, if a zone of that name is defined. */
export const DEFAULT_ADMIN_ZONE = 'mgmt';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export const DEFAULTS = {
  database: 'embedded',
  cacheMaxBytes: 20 * GiB,
  gpu: 'auto',
  gpuFallback: 'cpu',
  threads: 0,
  logLevel: 'info',
  logFormat: 'json',
  shutdownTimeoutMs: 30_000,
  bodyLimitBytes: 100 * MiB,
  keepAliveMs: 5 * 60_000,
  maxLoadedModels: 0,
  numParallel: 4,
  numCtx: 4096,
  numBatch: 512,
  maxQueue: 512,
  /** 30 days, as OpenAI keeps stored responses */
  responsesRetentionMs: 720 * 3_600_000,
  jobsConcurrency: 2,
  jobsShardSize: 100,
  jobsMaxAttempts: 5,
  jobsLeaseMs: 60_000,
  jobsRetryDelayMs: 5_000,
  jobsMaintenanceIntervalMs: 15_000,
  // Nodes wake on the queue's NOTIFY; the poll is the slow sweep for what no notification announces.
  jobsPollIntervalMs: 30_000,
  workflowsCacheMaxBytes: 2 * 1024 ** 3,
  workflowsMemoryCacheMaxBytes: 256 * 1024 ** 2,
  workflowsPollIntervalMs: 30_000,
  workflowsLeaseMs: 60_000,
  workflowsMaxAttempts: 3,
  imagesExecutionProvider: 'auto' as 'auto' | 'cpu' | 'cuda',
  imagesMaxLoadedModels: 1,
  knowledgeChunkTokens: 400,
  knowledgeChunkOverlap: 60,
  knowledgeMaxFileBytes: 50 * 1024 ** 2,
  knowledgeTopK: 5,
  knowledgeTemplate:
    'Use the numbered sources below to answer. Cite a source as [n] after the sentence that uses it; ' +
    'if the sources do not hold the answer, say so.\n\n{{sources}}',
  listenerAuth: 'required',
  uiSessionTtlMs: 30 * 24 * 60 * 60_000,
  uiGenerateTitles: true,
} as const;

/** The listener used when the config names none: this machine only, every class. */
export function defaultListener(address: string = DEFAULT_LISTEN_ADDRESS) {
  return {
    name: 'default',
    address,
    zones: [LOOPBACK_ZONE],
    serves: [...SERVICE_CLASSES],
    auth: 'loopback-exempt' as const,
    hosts: [] as string[],
  };
}

/** The user's home folder: `$HOME`, else what the OS says. */
export function homeDirectory(env: NodeJS.ProcessEnv): string {
  return env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
}

/** The defaults that depend on the machine and its environment (XDG base directories, host name). */
export function machineDefaults(env: NodeJS.ProcessEnv, hostname: string = osHostname()) {
  // The XDG spec says to ignore relative values of these variables.
  const xdg = (name: 'XDG_DATA_HOME' | 'XDG_CACHE_HOME', fallback: string[]) => {
    const value = env[name];
    return value && isAbsolute(value) ? value : join(homeDirectory(env), ...fallback);
  };
  return {
    atlas: { files: join(xdg('XDG_DATA_HOME', ['.local', 'share']), 'hearth', 'atlas') },
    node: { id: nodeIdFromHostname(hostname), cacheDir: join(xdg('XDG_CACHE_HOME', ['.cache']), 'hearth') },
  };
}

/** A host name made into a valid node id (odd characters become `-`). */
function nodeIdFromHostname(hostname: string): string {
  const id = hostname.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return id.slice(0, 63) || 'node';
}
