/**
 * Every error that reaches a user or a client is a HearthError: a stable code
 * (clients and tests match on it), an HTTP status, and a message that says what
 * went wrong and what to do. The one HTTP error path (src/http/errors.ts) turns
 * them into responses; the CLI prints `hearth: <message>` and exits non-zero.
 *
 * Codes, their statuses and their message templates live here, in one place (as
 * fastify's lib/errors.js does), so they stay unique, documented (docs/errors.md,
 * checked by errors.test.ts) and worded alike. A template's `%s` holes are filled in
 * order: `new HearthError('JOB_NOT_FOUND', [id])`. A code whose template is `%s`
 * alone is raised in many situations; its message is written where it is thrown
 * and passed whole: `new HearthError('BAD_REQUEST', 'prompt is empty: ...')`.
 */
export const ERRORS = {
  // configuration
  CONFIG_INVALID: { status: 500, message: '%s' },
  CONFIG_NOT_FOUND: {
    status: 500,
    message: 'config file %s does not exist%s: check the path, or name none to use the defaults',
  },
  // Atlas database
  ATLAS_DB_UNREACHABLE: { status: 503, message: '%s' },
  ATLAS_DB_MIGRATION_FAILED: {
    status: 500,
    message:
      'atlas.database: migration %s failed on %s (%s); it was rolled back and the schema is as before: fix the cause and start hearth again',
  },
  ATLAS_DB_SCHEMA_TOO_NEW: {
    status: 500,
    message:
      'atlas.database: %s has migration%s %s that this hearth does not know: a newer hearth has upgraded the database; upgrade hearth on this node',
  },
  ATLAS_DB_IN_USE: { status: 503, message: '%s' },
  ATLAS_DB_FULL: {
    status: 503,
    message:
      'the Atlas database is out of disk space: nothing was stored; free space on its volume (or raise its quota) and retry',
  },
  // Atlas files
  ATLAS_FILES_UNWRITABLE: { status: 503, message: '%s' },
  ATLAS_FILES_BAD_KEY: {
    status: 400,
    message: 'atlas.files: key %s %s: keys are /-separated paths inside the store, like models/llama/weights.gguf',
  },
  ATLAS_FILES_NOT_FOUND: { status: 404, message: '%s' },
  ATLAS_FILES_DIGEST_MISMATCH: {
    status: 400,
    message:
      'atlas.files: content for %s has sha256 %s, expected %s: nothing was stored; check the source or the expected digest',
  },
  ATLAS_FILES_EXISTS: { status: 409, message: 'atlas.files: cannot store %s: %s' },
  ATLAS_FILES_UNREADABLE: {
    status: 503,
    message: 'atlas.files: cannot read %s from %s (%s): check the share and try again',
  },
  // node cache
  NODE_CACHE_UNUSABLE: { status: 500, message: 'node.cacheDir: cannot %s %s (%s): %s' },
  NODE_CACHE_CORRUPT: { status: 500, message: 'node.cache: %s' },
  NODE_CACHE_TOO_SMALL: { status: 507, message: 'node.cache: %s' },
  // HTTP / requests
  BAD_REQUEST: { status: 400, message: '%s' },
  NOT_FOUND: { status: 404, message: '%s' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'request body is larger than server.bodyLimit' },
  UNSUPPORTED: { status: 501, message: '%s' },
  INTERNAL: { status: 500, message: '%s' },
  SHUTTING_DOWN: { status: 503, message: '%s' },
  // models and inference
  MODEL_NOT_FOUND: { status: 404, message: '%s' },
  MODEL_INVALID: { status: 400, message: '%s' },
  MODEL_NAME_INVALID: { status: 400, message: 'invalid model name "%s": %s' },
  MODELFILE_INVALID: { status: 400, message: '%s' },
  PULL_FAILED: { status: 502, message: '%s' },
  PULL_NOT_FOUND: { status: 404, message: 'no pull with id %s: list the pulls to see their ids' },
  PULL_RUNNING: { status: 409, message: '%s is being pulled already: follow that pull, or cancel it first' },
  ENGINE_LOAD_FAILED: { status: 500, message: 'engine: %s' },
  ENGINE_GPU_FAILED: { status: 500, message: 'engine: %s' },
  ENGINE_OUT_OF_MEMORY: { status: 507, message: 'engine: %s' },
  ENGINE_CAPABILITY: { status: 400, message: '%s' },
  /** the llama-server process of a model exited while serving (the next request starts a new one) */
  ENGINE_CRASHED: {
    status: 502,
    message:
      'engine: the llama-server process of model "%s" stopped during the %s (%s): retry; the next request starts a new one',
  },
  /** `hearth engine build` could not compile or link llama-server */
  ENGINE_BUILD_FAILED: { status: 500, message: '%s' },
  /** inference.llamaServer is not a llama-server hearth can drive (version or a flag missing) */
  ENGINE_SERVER_UNSUITABLE: { status: 500, message: 'engine: %s' },
  /** llama-quantize failed on a model (hearth create --quantize) */
  QUANTIZE_FAILED: { status: 500, message: 'llama-quantize %s: %s; nothing was stored' },
  QUEUE_FULL: {
    status: 503,
    message: 'server busy, please try again.  maximum pending requests exceeded (%s waiting; raise inference.maxQueue)',
  },
  CLIENT_CLOSED: { status: 499, message: '%s' },
  // benchmarks (hearth bench)
  BENCH_OPTIONS_INVALID: { status: 400, message: 'bench: %s' },
  BENCH_TARGET_FAILED: { status: 502, message: 'bench: %s' },
  // network access (src/net)
  AUTH_REQUIRED: { status: 401, message: '%s' },
  AUTH_FORBIDDEN: { status: 403, message: '%s' },
  AUTH_RATE_LIMITED: { status: 429, message: '%s' },
  HOST_NOT_ALLOWED: {
    status: 403,
    message:
      "Host %s is not a name of listener %s: if clients reach hearth by that name, add it to the listener's hosts (a defence against DNS rebinding)",
  },
  ORIGIN_NOT_ALLOWED: {
    status: 403,
    message: 'origin %s may not call hearth: add it to origins in the config if that web app should',
  },
  NET_EXPOSURE_REFUSED: {
    status: 500,
    message: 'refusing to start: the listeners would expose hearth beyond its zones (%s problem%s):\n%s',
  },
  KEY_NOT_FOUND: { status: 404, message: 'no active key named %s: `hearth keys list` shows the keys there are' },
  KEY_EXISTS: {
    status: 409,
    message: 'an active key named %s exists: revoke it first (hearth keys revoke %s) or choose another name',
  },
  KEY_INVALID: { status: 400, message: '%s' },
  // chat UI (src/chat, src/http/ui)
  UI_LOGIN_FAILED: { status: 401, message: '%s' },
  UI_CSRF_FAILED: { status: 403, message: '%s' },
  UI_SETUP_DONE: {
    status: 409,
    message: 'hearth already has an admin account: sign in, or ask an admin for an account',
  },
  USER_NOT_FOUND: { status: 404, message: '%s' },
  USER_EXISTS: { status: 409, message: 'a user named %s already exists: choose another name' },
  USER_INVALID: { status: 400, message: '%s' },
  CONVERSATION_NOT_FOUND: { status: 404, message: 'no conversation %s: it was deleted, or is not yours' },
  MESSAGE_NOT_FOUND: { status: 404, message: '%s' },
  PRESET_NOT_FOUND: { status: 404, message: 'no preset %s you may change' },
  PRESET_EXISTS: {
    status: 409,
    message: 'a preset named %s already exists: choose another name, or delete that preset first',
  },
  CHAT_IMPORT_INVALID: { status: 400, message: '%s' },
  ATTACHMENT_UNSUPPORTED: { status: 415, message: '%s' },
  // batch jobs (src/jobs)
  JOB_NOT_FOUND: { status: 404, message: 'job %s not found: list jobs with hearth jobs ls' },
  JOB_INVALID: { status: 400, message: '%s' },
  JOB_DATASET_NOT_FOUND: {
    status: 400,
    message:
      'input %s: no such %s in the Atlas file store %s: upload it first (hearth files put) or check the path (hearth files ls)',
  },
  JOB_TEMPLATE_FIELD_MISSING: {
    status: 400,
    message: '%s: field "%s" is in none of the first %s records of %s%s; their fields are: %s',
  },
  JOB_SCHEMA_INVALID: {
    status: 400,
    message: 'schema does not compile: %s: give a JSON schema object (type, properties, required, items, enum, ...)',
  },
  JOB_OUTPUT_EXISTS: { status: 409, message: '%s' },
  JOB_STATE_CONFLICT: { status: 409, message: '%s' },
  // workflows (src/workflows)
  WORKFLOW_NODE_UNKNOWN: { status: 404, message: 'no workflow node type %s: GET /object_info lists them' },
  WORKFLOW_NOT_FOUND: { status: 404, message: '%s' },
  WORKFLOW_INVALID: { status: 400, message: '%s' },
  /** a node threw while running: ComfyUI's execution_error carries the node's own message */
  WORKFLOW_NODE_FAILED: { status: 500, message: '%s' },
  /** a running prompt was interrupted (POST /interrupt, or its queue entry deleted) */
  WORKFLOW_INTERRUPTED: { status: 409, message: 'the prompt was interrupted at node %s' },
  // stored responses of /v1/responses (src/responses)
  RESPONSE_NOT_FOUND: {
    status: 404,
    message:
      'response "%s" not found: it may have expired (inference.responsesRetention), been deleted, been made with store: false, or by another API key',
  },
  // image generation (src/images)
  IMAGE_MODEL_INVALID: { status: 400, message: '%s' },
  IMAGE_RUNTIME_FAILED: { status: 500, message: 'ONNX Runtime failed in %s: %s' },
  IMAGE_ABORTED: { status: 409, message: 'interrupted' },
  IMAGE_DRAWING: {
    status: 409,
    message: 'a picture is being drawn in this chat (%s): wait for it, or stop it first',
  },
  // knowledge bases (src/knowledge)
  KNOWLEDGE_NOT_FOUND: {
    status: 404,
    message: 'knowledge base %s not found: list the bases you can see with hearth kb ls',
  },
  KNOWLEDGE_EXISTS: { status: 409, message: 'a knowledge base named %s exists: choose another name' },
  KNOWLEDGE_INVALID: { status: 400, message: '%s' },
  KNOWLEDGE_DOCUMENT_NOT_FOUND: {
    status: 404,
    message: 'knowledge base %s has no document %s: list them with hearth kb ls %s',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Each code's default HTTP status. */
export const ERROR_CODES = Object.fromEntries(Object.entries(ERRORS).map(([code, e]) => [code, e.status])) as {
  readonly [C in ErrorCode]: (typeof ERRORS)[C]['status'];
};

type Holes<T extends string> = T extends `${string}%s${infer Rest}` ? [unknown, ...Holes<Rest>] : [];

/**
 * What follows the code in `new HearthError(code, ...)`: the whole message for a `%s` template,
 * the values of the holes otherwise (nothing for a template without holes), then the options.
 */
export type HearthErrorArgs<C extends ErrorCode> = C extends ErrorCode
  ? (typeof ERRORS)[C]['message'] extends '%s'
    ? [message: string, options?: HearthErrorOptions]
    : Holes<(typeof ERRORS)[C]['message']> extends []
      ? [values?: [], options?: HearthErrorOptions]
      : [values: Holes<(typeof ERRORS)[C]['message']>, options?: HearthErrorOptions]
  : never;

/** Fills a template's `%s` holes in order (String() of each value, as a template literal would). */
export function formatErrorMessage(template: string, values: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => String(values[i++]));
}

export interface HearthErrorOptions {
  /** Overrides the code's default HTTP status. */
  status?: number;
  cause?: unknown;
  /** Structured details a client may use (the offending key, value, ...). */
  details?: Record<string, unknown>;
}

export class HearthError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name: string = 'HearthError';
  readonly code: C;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: C, ...[values, options = {}]: HearthErrorArgs<C>) {
    super(
      typeof values === 'string' ? values : formatErrorMessage(ERRORS[code].message, values ?? []),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = options.status ?? ERRORS[code].status;
    this.details = options.details;
  }
}

export function isHearthError(err: unknown, code?: ErrorCode): err is HearthError {
  return err instanceof HearthError && (code === undefined || err.code === code);
}

/** The errno of a system error ('EACCES', ...), or undefined for anything else. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A short, human message for any thrown value (system errors keep their errno code). */
export function describeError(err: unknown, opts: { causes?: boolean } = {}): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    let text = !err.message
      ? (code ?? err.name)
      : code && !err.message.includes(code)
        ? `${err.message} (${code})`
        : err.message;
    // fetch says only "fetch failed"; what went wrong (DNS, TLS, a refused connection) is in its cause.
    const cause = err.cause instanceof AggregateError ? err.cause.errors[0] : err.cause;
    if (opts.causes && cause !== undefined && cause !== err) text += `: ${describeError(cause, opts)}`;
    return text;
  }
  return String(err);
}
