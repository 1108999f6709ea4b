/**
 * The configuration schema: one zod schema validates the YAML file and the
 * HEARTH_* environment overrides (see load.ts), and its output is the config
 * every part of hearth reads: fully defaulted, paths absolute, sizes in bytes,
 * durations in milliseconds. Every object is strict, so a misspelt key is an
 * error rather than a setting silently ignored.
 *
 * atlas.files, node.id and node.cacheDir have no default that is the same on
 * every machine: the loader supplies them (defaults.ts, machineDefaults), so
 * parsing with this schema directly needs them in the input.
 */
import { isAbsolute } from 'node:path';
import * as z from 'zod';
import {
  DEFAULT_ADMIN_ZONE,
  DEFAULT_LISTEN_ADDRESS,
  DEFAULTS,
  defaultListener,
  LOOPBACK_CIDRS,
  LOOPBACK_ZONE,
  SERVICE_CLASSES,
} from './defaults.js';
import {
  BYTE_SIZE_HINT,
  DURATION_HINT,
  describeValue,
  formatListenAddress,
  type ListenAddress,
  maskUrlPassword,
  parseBytes,
  parseCidr,
  parseDuration,
  parseListenAddress,
} from './values.js';

export { SERVICE_CLASSES } from './defaults.js';

export const GPU_BACKENDS = ['auto', 'cuda', 'vulkan', 'metal', 'cpu'] as const;
export const GPU_FALLBACKS = ['cpu', 'none'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export const LISTENER_AUTH = ['required', 'loopback-exempt'] as const;

/** How a leaf is written in the file when that differs from its output (bytes, ms). Used for env coercion and rendering. */
export type FieldKind = 'size' | 'duration' | 'path' | 'cidr';
export const fieldKinds = z.registry<{ kind: FieldKind }>();

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_HINT = 'use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit';
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i;
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/]+$/i;

function sizeField(min: number) {
  const field = z
    .union([z.number(), z.string()], {
      error: (iss) => `${describeValue(iss.input)} is not a byte size; ${BYTE_SIZE_HINT}`,
    })
    .transform((value, ctx) => {
      try {
        const bytes = parseBytes(value);
        if (bytes >= min) return bytes;
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${describeValue(value)} is too small; at least ${min} byte`,
        });
      } catch (err) {
        ctx.issues.push({ code: 'custom', input: value, message: (err as Error).message });
      }
      return z.NEVER;
    });
  field.register(fieldKinds, { kind: 'size' });
  return field;
}

/** Durations are ms in the output. With `negativeMeansForever`, any negative value becomes -1. */
function durationField(negativeMeansForever: boolean) {
  const field = z
    .union([z.number(), z.string()], {
      error: (iss) => `${describeValue(iss.input)} is not a duration; ${DURATION_HINT}`,
    })
    .transform((value, ctx) => {
      try {
        const ms = parseDuration(value);
        if (ms >= 0) return ms;
        if (negativeMeansForever) return -1;
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${describeValue(value)}: this duration cannot be negative; ${DURATION_HINT}`,
        });
      } catch (err) {
        ctx.issues.push({ code: 'custom', input: value, message: (err as Error).message });
      }
      return z.NEVER;
    });
  field.register(fieldKinds, { kind: 'duration' });
  return field;
}

/** The loader resolves relative paths (against the config file's folder) before parsing; here they must be absolute. */
function pathField() {
  const field = z.string().refine((value) => isAbsolute(value), {
    error: (iss) => `${describeValue(iss.input)} is not an absolute path`,
  });
  field.register(fieldKinds, { kind: 'path' });
  return field;
}

/** Output is the canonical `address/prefix` text; parse it again with parseCidr. */
const cidrField = z.string().transform((value, ctx) => {
  try {
    return parseCidr(value).text;
  } catch (err) {
    ctx.issues.push({ code: 'custom', input: value, message: (err as Error).message });
    return z.NEVER;
  }
});
cidrField.register(fieldKinds, { kind: 'cidr' });

/** Output is the canonical `host:port` text; parse it again with parseListenAddress. */
const listenAddressField = z.string().transform((value, ctx) => {
  try {
    return formatListenAddress(parseListenAddress(value));
  } catch (err) {
    ctx.issues.push({ code: 'custom', input: value, message: (err as Error).message });
    return z.NEVER;
  }
});

const nameField = (what: string) =>
  z.string().regex(NAME, { error: (iss) => `${describeValue(iss.input)} is not a valid ${what}; ${NAME_HINT}` });

const databaseField = z.string().refine((value) => value === 'embedded' || isPostgresUrl(value), {
  error: (iss) =>
    `${describeValue(typeof iss.input === 'string' ? maskUrlPassword(iss.input) : iss.input)} is not allowed; use embedded or a postgres:// (postgresql://) URL`,
});

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'postgres:' || url.protocol === 'postgresql:';
  } catch {
    return false;
  }
}

const hostNameField = z.string().transform((value, ctx) => {
  const host = value.trim().toLowerCase();
  if (HOST_NAME.test(host) || parseIpLiteral(host)) return host;
  ctx.issues.push({
    code: 'custom',
    input: value,
    message: `${describeValue(value)} is not a host name; use a name like hearth.lan or an IP address, without a port`,
  });
  return z.NEVER;
});

function parseIpLiteral(host: string): boolean {
  try {
    parseCidr(host);
    return true;
  } catch {
    return false;
  }
}

const originField = z.string().transform((value, ctx) => {
  const origin = value.trim().replace(/\/$/, '');
  if (origin === '*' || ORIGIN.test(origin)) return origin;
  ctx.issues.push({
    code: 'custom',
    input: value,
    message: `${describeValue(value)} is not an origin; use scheme://host[:port] (e.g. http://chat.lan:8080; * wildcards allowed) or *`,
  });
  return z.NEVER;
});

const serviceClassList = z
  .array(z.enum(SERVICE_CLASSES))
  .min(1)
  .transform((classes) => [...new Set(classes)]);

export const listenerSchema = z.strictObject({
  /** Shown in logs and metrics; unique. */
  name: nameField('listener name'),
  /** host:port to bind (IPv6 as [::1]:11434; port 0 = any free port). */
  address: listenAddressField,
  /** Zones whose peers may connect; anyone else is dropped at accept. */
  zones: z.array(z.string()).min(1),
  /** Service classes served here; other routes answer 404. */
  serves: serviceClassList.default([...SERVICE_CLASSES]),
  /** `loopback-exempt` lets peers in the loopback zone skip authentication. */
  auth: z.enum(LISTENER_AUTH).default(DEFAULTS.listenerAuth),
  /** Extra Host-header names accepted (DNS-rebinding defence); the bind address is always accepted. */
  hosts: z.array(hostNameField).default([]),
});

// Key names are checked on the key schema so they are reported even when a zone's CIDRs are wrong too.
const zoneNameField = z.string().superRefine((name, ctx) => {
  if (name === LOOPBACK_ZONE) {
    ctx.issues.push({
      code: 'custom',
      input: name,
      message: `"${LOOPBACK_ZONE}" is built in (${LOOPBACK_CIDRS.join(', ')}) and cannot be redefined; choose another name`,
    });
  } else if (!ZONE_NAME.test(name)) {
    ctx.issues.push({
      code: 'custom',
      input: name,
      message: `${JSON.stringify(name)} is not a valid zone name; use up to 32 letters, digits, "_" or "-", starting with a letter`,
    });
  }
});

const zonesField = z
  .record(zoneNameField, z.array(cidrField).min(1))
  // The built-in zone is part of the output so consumers find every zone in one place.
  .transform((zones): Record<string, string[]> => ({ [LOOPBACK_ZONE]: [...LOOPBACK_CIDRS], ...zones }));

export const configSchema = z
  .strictObject({
    atlas: z.strictObject({
      database: databaseField.default(DEFAULTS.database),
      files: pathField(),
    }),
    node: z.strictObject({
      id: nameField('node id'),
      cacheDir: pathField(),
      cacheMaxBytes: sizeField(1).default(DEFAULTS.cacheMaxBytes),
      gpu: z.enum(GPU_BACKENDS).default(DEFAULTS.gpu),
      gpuFallback: z.enum(GPU_FALLBACKS).default(DEFAULTS.gpuFallback),
      threads: z.int().min(0).default(DEFAULTS.threads),
      /** Built llama-server engines (`hearth engine build`); unset: beside cacheDir (`<cacheDir>-engine`), see engineDirOf. */
      engineDir: pathField().optional(),
      jobs: z
        .strictObject({
          /** Job work (shards) this node runs at once; 0 = an API-only node. */
          concurrency: z.int().min(0).default(DEFAULTS.jobsConcurrency),
        })
        .prefault({}),
    }),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
        format: z.enum(LOG_FORMATS).default(DEFAULTS.logFormat),
      })
      .prefault({}),
    server: z
      .strictObject({
        shutdownTimeout: durationField(false).default(DEFAULTS.shutdownTimeoutMs),
        bodyLimit: sizeField(1).default(DEFAULTS.bodyLimitBytes),
      })
      .prefault({}),
    inference: z
      .strictObject({
        keepAlive: durationField(true).default(DEFAULTS.keepAliveMs),
        maxLoadedModels: z.int().min(0).default(DEFAULTS.maxLoadedModels),
        numParallel: z.int().min(1).default(DEFAULTS.numParallel),
        numCtx: z.int().min(16).default(DEFAULTS.numCtx),
        numBatch: z.int().min(1).default(DEFAULTS.numBatch),
        maxQueue: z.int().min(1).default(DEFAULTS.maxQueue),
        /** Memory the loaded models (language and image) may use together; 0 = the free VRAM or RAM at start. */
        memoryBudget: sizeField(0).default(0),
        /** How long a stored response of /v1/responses is kept on Atlas; 0 = until deleted. */
        responsesRetention: durationField(false).default(DEFAULTS.responsesRetentionMs),
        /** auto: llama-server processes once built (built in the background on first start), in-process until then */
        engine: z.enum(['auto', 'server', 'inprocess']).default('auto'),
        /** a llama-server of the user's own (checked with --version and --help) instead of `hearth engine build`'s */
        llamaServer: pathField().optional(),
        /** fetch http(s) image URLs of OpenAI image_url parts (off: only inline data URLs; the node never reaches out) */
        fetchImageUrls: z.boolean().default(false),
        /** flash attention (Ollama's OLLAMA_FLASH_ATTENTION): auto = where the backend has it; a quantized KV cache needs it */
        flashAttention: z.enum(['auto', 'on', 'off']).default('auto'),
        /** KV cache element type (Ollama's OLLAMA_KV_CACHE_TYPE): q8_0 about halves its memory, q4_0 quarters it; server engine only */
        kvCacheType: z.enum(['f16', 'q8_0', 'q4_0']).default('f16'),
      })
      .refine((i) => i.kvCacheType === 'f16' || i.flashAttention !== 'off', {
        message:
          'inference.kvCacheType q8_0 and q4_0 need flash attention (llama.cpp quantizes the KV cache only with it): set inference.flashAttention to auto or on, or inference.kvCacheType to f16',
        path: ['kvCacheType'],
      })
      .prefault({}),
    jobs: z
      .strictObject({
        /** Records per shard, when a job does not say. */
        shardSize: z.int().min(1).max(100_000).default(DEFAULTS.jobsShardSize),
        /** Attempts per shard, the first included. */
        maxAttempts: z.int().min(1).max(100).default(DEFAULTS.jobsMaxAttempts),
        /** A lease not renewed by a heartbeat for this long expires; the work is retried on any node. */
        lease: durationField(false).default(DEFAULTS.jobsLeaseMs),
        /** Delay before the first retry; each later one doubles. */
        retryDelay: durationField(false).default(DEFAULTS.jobsRetryDelayMs),
        /** How often each node looks for expired leases (a read; the expiry runs only when some are found). */
        maintenanceInterval: durationField(false).default(DEFAULTS.jobsMaintenanceIntervalMs),
        /**
         * How often an idle worker looks for work no notification announces (chiefly retries whose
         * node stopped before they came due); every min(this, 1 s) while it cannot LISTEN.
         */
        pollInterval: durationField(false).default(DEFAULTS.jobsPollIntervalMs),
      })
      .prefault({}),
    workflows: z
      .strictObject({
        /** Node outputs kept in the node cache (disposable) for reuse by later runs. */
        cacheMaxBytes: sizeField(0).default(DEFAULTS.workflowsCacheMaxBytes),
        /** Node outputs kept in memory, in front of the disk cache. */
        memoryCacheMaxBytes: sizeField(0).default(DEFAULTS.workflowsMemoryCacheMaxBytes),
        /**
         * How often an idle node looks for prompts no notification announces; every min(this, 1 s)
         * while it cannot LISTEN.
         */
        pollInterval: durationField(false).default(DEFAULTS.workflowsPollIntervalMs),
        /** A running prompt whose node stops renewing this lease is run again by another node. */
        lease: durationField(false).default(DEFAULTS.workflowsLeaseMs),
        /** Runs of a prompt, the first included, before node loss marks it failed. */
        maxAttempts: z.int().min(1).max(100).default(DEFAULTS.workflowsMaxAttempts),
      })
      .prefault({}),
    images: z
      .strictObject({
        /** ONNX Runtime execution provider for image models: auto = CUDA when its provider is installed, else CPU. */
        executionProvider: z.enum(['auto', 'cpu', 'cuda']).default(DEFAULTS.imagesExecutionProvider),
        /** Image models loaded at once on this node; the least recently used idle one is unloaded first. */
        maxLoadedModels: z.int().min(1).max(16).default(DEFAULTS.imagesMaxLoadedModels),
      })
      .prefault({}),
    knowledge: z
      .strictObject({
        /** The embedding model a new knowledge base uses when it names none ('' = it must name one). */
        embeddingModel: z.string().default(''),
        /** Most tokens in a chunk, when a base does not say. */
        chunkTokens: z.int().min(16).max(8192).default(DEFAULTS.knowledgeChunkTokens),
        /** Tokens of a chunk repeated at the start of the next one, when a base does not say. */
        chunkOverlap: z.int().min(0).max(4096).default(DEFAULTS.knowledgeChunkOverlap),
        /** Largest document accepted; a bigger one is refused with a message naming this limit. */
        maxFileSize: sizeField(1).default(DEFAULTS.knowledgeMaxFileBytes),
        /** Chunks put into a chat's prompt. */
        topK: z.int().min(1).max(50).default(DEFAULTS.knowledgeTopK),
        /** The system text that carries retrieved chunks into a chat; `{{sources}}` is replaced by them. */
        template: z.string().min(1).default(DEFAULTS.knowledgeTemplate),
        /** The reranker model (a reranker GGUF in the library) that orders retrieved chunks ('' = the fusion order). */
        reranker: z.string().default(''),
      })
      .prefault({}),
    ui: z
      .strictObject({
        /** How long a browser session lasts after its last use. */
        sessionTtl: durationField(false).default(DEFAULTS.uiSessionTtlMs),
        /** Name conversations with the model from their first exchange (in the background). */
        generateTitles: z.boolean().default(DEFAULTS.uiGenerateTitles),
      })
      .prefault({}),
    zones: zonesField.prefault({}),
    deny: z.array(z.string()).default([]),
    /** Unset: `[mgmt]` when a zone named mgmt is defined, else none (loopback only); see the transform below. */
    adminZones: z.array(z.string()).optional(),
    allowPublicBind: z.boolean().default(false),
    trustedProxies: z.array(cidrField).default([]),
    origins: z.array(originField).default([]),
    listeners: z
      .array(listenerSchema)
      .min(1)
      .default([defaultListener(DEFAULT_LISTEN_ADDRESS)]),
  })
  .superRefine((config, ctx) => {
    checkReferences(config, (path, message, input) => ctx.issues.push({ code: 'custom', path, message, input }));
  })
  // The admin default depends on the zones, so it is applied after they are known (and only an explicit
  // adminZones naming an undefined zone is an error). The output always holds the effective list.
  .transform((config) => ({
    ...config,
    adminZones: config.adminZones ?? (DEFAULT_ADMIN_ZONE in config.zones ? [DEFAULT_ADMIN_ZONE] : []),
  }));

export type HearthConfig = z.output<typeof configSchema>;
export type ListenerConfig = HearthConfig['listeners'][number];
export type ServiceClass = (typeof SERVICE_CLASSES)[number];
export type GpuBackend = (typeof GPU_BACKENDS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Reports one problem: where (a key path), what, and the offending value. */
export type ProblemReporter = (path: PropertyKey[], message: string, input: unknown) => void;

/**
 * Rules that span keys: zone references, denied zones on listeners, unique
 * listener names and addresses. Written defensively so the loader can also run
 * it on input that failed other checks, and list every problem at once.
 */
export function checkReferences(input: unknown, report: ProblemReporter): void {
  if (!isPlainObject(input)) return;
  const defined = new Set([LOOPBACK_ZONE, ...(isPlainObject(input.zones) ? Object.keys(input.zones) : [])]);
  const definedList = [...defined].join(', ');
  const denied = new Set<string>();
  const checkZoneNames = (key: string, list: unknown) => {
    if (!Array.isArray(list)) return;
    list.forEach((name, i) => {
      if (typeof name === 'string' && !defined.has(name)) {
        report(
          [key, i],
          `${JSON.stringify(name)} names no zone; defined zones: ${definedList}${suggest(name, defined)}`,
          name,
        );
      }
    });
  };
  checkZoneNames('deny', input.deny);
  checkZoneNames('adminZones', input.adminZones);
  if (Array.isArray(input.deny)) for (const name of input.deny) if (typeof name === 'string') denied.add(name);

  if (!Array.isArray(input.listeners)) return;
  const names = new Map<string, number>();
  const bound: { index: number; name: string; address: ListenAddress }[] = [];
  input.listeners.forEach((listener: unknown, i: number) => {
    if (!isPlainObject(listener)) return;
    const label = typeof listener.name === 'string' ? listener.name : `#${i}`;
    if (typeof listener.name === 'string') {
      const first = names.get(listener.name);
      if (first === undefined) names.set(listener.name, i);
      else
        report(
          ['listeners', i, 'name'],
          `${JSON.stringify(listener.name)} is already the name of listeners[${first}]; listener names must be unique`,
          listener.name,
        );
    }
    if (Array.isArray(listener.zones)) {
      listener.zones.forEach((zone: unknown, j: number) => {
        if (typeof zone !== 'string') return;
        if (!defined.has(zone)) {
          report(
            ['listeners', i, 'zones', j],
            `${JSON.stringify(zone)} names no zone; defined zones: ${definedList}${suggest(zone, defined)}`,
            zone,
          );
        } else if (denied.has(zone)) {
          report(
            ['listeners', i, 'zones', j],
            `${JSON.stringify(zone)} is allowed on listener ${JSON.stringify(label)} but denied (deny); remove it from one of them`,
            zone,
          );
        }
      });
    }
    if (typeof listener.address !== 'string') return;
    let address: ListenAddress;
    try {
      address = parseListenAddress(listener.address);
    } catch {
      return; // the field's own check reports it
    }
    if (address.port === 0) return; // each gets its own free port
    const clash = bound.find((other) => addressesCollide(other.address, address));
    if (clash) {
      const same = clash.address.host === address.host;
      report(
        ['listeners', i, 'address'],
        same
          ? `${formatListenAddress(address)} is already used by listeners[${clash.index}] (${JSON.stringify(clash.name)}); each listener needs its own address:port`
          : `${formatListenAddress(address)} overlaps listeners[${clash.index}] (${JSON.stringify(clash.name)}) at ${formatListenAddress(clash.address)}: a wildcard address takes the port on every interface; use another port`,
        listener.address,
      );
    } else {
      bound.push({ index: i, name: label, address });
    }
  });
}

/** Whether two binds would fight over a port (Linux binds `::` dual-stack by default). */
function addressesCollide(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port) return false;
  if (a.host === b.host || a.host === '::' || b.host === '::') return true;
  return (a.host === '0.0.0.0' && b.family === 4) || (b.host === '0.0.0.0' && a.family === 4);
}

/** ` (did you mean "x"?)` when a known name is within a small edit distance. */
export function suggest(name: string, known: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 6)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? '' : ` (did you mean ${JSON.stringify(best)}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- walking the schema (env mapping, rendering, messages derive from it so they never drift) ----

type AnySchema = z.core.$ZodType;

/** Strips default/optional/pipe wrappers, returning the kind registered on the way (if any) and the structural schema. */
export function unwrapSchema(schema: AnySchema): { kind: FieldKind | undefined; schema: AnySchema } {
  let current = schema;
  let kind: FieldKind | undefined;
  for (let depth = 0; depth < 16; depth++) {
    kind ??= fieldKinds.get(current)?.kind;
    const def = current._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema };
    if (def.innerType && ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(def.type)) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      current = def.in;
    } else {
      break;
    }
  }
  return { kind, schema: current };
}

/** The schema that validates the value at `path` (numbers index lists, any string keys a record). */
export function schemaAt(path: readonly PropertyKey[], root: AnySchema = configSchema): AnySchema | undefined {
  let current: AnySchema | undefined = root;
  for (const segment of path) {
    if (!current) return undefined;
    const { schema } = unwrapSchema(current);
    const def = schema._zod.def as {
      type: string;
      shape?: Record<string, AnySchema>;
      element?: AnySchema;
      valueType?: AnySchema;
    };
    if (def.type === 'object') current = def.shape?.[String(segment)];
    else if (def.type === 'array') current = def.element;
    else if (def.type === 'record') current = def.valueType;
    else return undefined;
  }
  return current;
}

/** The keys an object at `path` allows, in schema order; undefined when `path` is not an object. */
export function allowedKeysAt(path: readonly PropertyKey[]): string[] | undefined {
  const at = schemaAt(path);
  if (!at) return undefined;
  const def = unwrapSchema(at).schema._zod.def as { type: string; shape?: Record<string, AnySchema> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
}

/** A scalar (or list-of-scalars) setting: what the environment can set and the renderer formats. */
export interface ConfigLeaf {
  /** Key path, e.g. ['node', 'cacheMaxBytes']. */
  path: string[];
  /** How the environment's string is read. */
  type: 'string' | 'number' | 'boolean' | 'list';
  kind: FieldKind | undefined;
}

/** Every scalar setting outside lists (listeners) and user-named maps (zones), in schema order. */
export function configLeaves(root: AnySchema = configSchema): ConfigLeaf[] {
  const leaves: ConfigLeaf[] = [];
  const visit = (schema: AnySchema, path: string[]) => {
    const { kind, schema: inner } = unwrapSchema(schema);
    const def = inner._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    if (def.type === 'object' && def.shape) {
      for (const [key, child] of Object.entries(def.shape)) visit(child, [...path, key]);
    } else if (def.type === 'array' && def.element) {
      const element = unwrapSchema(def.element).schema._zod.def.type;
      if (element === 'string' || element === 'enum') leaves.push({ path, type: 'list', kind: undefined });
    } else if (def.type === 'number' || def.type === 'boolean') {
      leaves.push({ path, type: def.type, kind });
    } else if (def.type === 'string' || def.type === 'enum' || def.type === 'union') {
      leaves.push({ path, type: 'string', kind });
    }
  };
  visit(root, []);
  return leaves;
}
