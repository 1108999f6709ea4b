/**
 * Every error that reaches a user or a client is a HearthError: a stable code
 * (clients and tests match on it), an HTTP status, and a message that says what
 * went wrong and what to do. The one HTTP error path (src/http/errors.ts) turns
 * them into responses; the CLI prints `hearth: <message>` and exits non-zero.
 *
 * Codes are listed here, in one place, so they stay unique and documented.
 */
export const ERROR_CODES = {
  // configuration
  CONFIG_INVALID: 500,
  CONFIG_NOT_FOUND: 500,
  // Atlas database
  ATLAS_DB_UNREACHABLE: 503,
  ATLAS_DB_MIGRATION_FAILED: 500,
  ATLAS_DB_SCHEMA_TOO_NEW: 500,
  ATLAS_DB_IN_USE: 503,
  ATLAS_DB_FULL: 503,
  // Atlas files
  ATLAS_FILES_UNWRITABLE: 503,
  ATLAS_FILES_BAD_KEY: 400,
  ATLAS_FILES_NOT_FOUND: 404,
  ATLAS_FILES_DIGEST_MISMATCH: 400,
  ATLAS_FILES_EXISTS: 409,
  ATLAS_FILES_UNREADABLE: 503,
  // node cache
  NODE_CACHE_UNUSABLE: 500,
  NODE_CACHE_CORRUPT: 500,
  NODE_CACHE_TOO_SMALL: 507,
  // HTTP / requests
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED: 501,
  INTERNAL: 500,
  SHUTTING_DOWN: 503,
  // models and inference
  MODEL_NOT_FOUND: 404,
  MODEL_INVALID: 400,
  MODEL_NAME_INVALID: 400,
  MODELFILE_INVALID: 400,
  PULL_FAILED: 502,
  ENGINE_LOAD_FAILED: 500,
  ENGINE_GPU_FAILED: 500,
  ENGINE_OUT_OF_MEMORY: 507,
  ENGINE_CAPABILITY: 400,
  /** the llama-server process of a model exited while serving (the next request starts a new one) */
  ENGINE_CRASHED: 502,
  /** `hearth engine build` could not compile or link llama-server */
  ENGINE_BUILD_FAILED: 500,
  /** inference.llamaServer is not a llama-server hearth can drive (version or a flag missing) */
  ENGINE_SERVER_UNSUITABLE: 500,
  QUEUE_FULL: 503,
  CLIENT_CLOSED: 499,
  // benchmarks (hearth bench)
  BENCH_OPTIONS_INVALID: 400,
  BENCH_TARGET_FAILED: 502,
  // network access (src/net)
  AUTH_REQUIRED: 401,
  AUTH_FORBIDDEN: 403,
  AUTH_RATE_LIMITED: 429,
  HOST_NOT_ALLOWED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  NET_EXPOSURE_REFUSED: 500,
  KEY_NOT_FOUND: 404,
  KEY_EXISTS: 409,
  KEY_INVALID: 400,
  // chat UI (src/chat, src/http/ui)
  UI_LOGIN_FAILED: 401,
  UI_CSRF_FAILED: 403,
  UI_SETUP_DONE: 409,
  USER_NOT_FOUND: 404,
  USER_EXISTS: 409,
  USER_INVALID: 400,
  CONVERSATION_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  PRESET_NOT_FOUND: 404,
  CHAT_IMPORT_INVALID: 400,
  ATTACHMENT_UNSUPPORTED: 415,
  // batch jobs (src/jobs)
  JOB_NOT_FOUND: 404,
  JOB_INVALID: 400,
  JOB_DATASET_NOT_FOUND: 400,
  JOB_TEMPLATE_FIELD_MISSING: 400,
  JOB_SCHEMA_INVALID: 400,
  JOB_OUTPUT_EXISTS: 409,
  JOB_STATE_CONFLICT: 409,
  // workflows (src/workflows)
  WORKFLOW_NODE_UNKNOWN: 404,
  WORKFLOW_NOT_FOUND: 404,
  WORKFLOW_INVALID: 400,
  WORKFLOW_NODE_FAILED: 500,
  // stored responses of /v1/responses (src/responses)
  RESPONSE_NOT_FOUND: 404,
  // image generation (src/images)
  IMAGE_MODEL_INVALID: 400,
  IMAGE_RUNTIME_FAILED: 500,
  IMAGE_ABORTED: 409,
  // knowledge bases (src/knowledge)
  KNOWLEDGE_NOT_FOUND: 404,
  KNOWLEDGE_EXISTS: 409,
  KNOWLEDGE_INVALID: 400,
  KNOWLEDGE_DOCUMENT_NOT_FOUND: 404,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface HearthErrorOptions {
  /** Overrides the code's default HTTP status. */
  status?: number;
  cause?: unknown;
  /** Structured details a client may use (the offending key, value, ...). */
  details?: Record<string, unknown>;
}

export class HearthError extends Error {
  override readonly name = 'HearthError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: HearthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code];
    this.details = options.details;
  }
}

export function isHearthError(err: unknown, code?: ErrorCode): err is HearthError {
  return err instanceof HearthError && (code === undefined || err.code === code);
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
