import { HearthError } from '../errors.js';

/**
 * Model names follow Ollama's rules (types/model/name.go): `[host/][namespace/]model[:tag]`.
 * The default tag is `latest`; the default namespace `library` and host
 * `registry.ollama.ai` are implied and omitted when shown, so `llama3.2`,
 * `llama3.2:latest` and `library/llama3.2:latest` are one model. Names compare
 * case-insensitively but keep the case they were created with.
 */
export interface ModelName {
  host: string | null;
  namespace: string | null;
  model: string;
  tag: string;
}

const PART = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,79}$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,79}$/;
const HOST = /^[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,349}$/;
const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';

export function parseModelName(input: string): ModelName {
  const raw = input.trim();
  const bad = (why: string) => new HearthError('MODEL_NAME_INVALID', [input, why], { details: { param: 'model' } });
  if (!raw) throw bad('it is empty');
  let rest = raw;
  let tag = 'latest';
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag "${tag}" must be 1-80 characters of letters, digits, '_', '.', '-'`);
  }
  const parts = rest.split('/');
  if (parts.length > 3) throw bad('expected [host/][namespace/]model[:tag]');
  const model = parts.pop()!;
  const namespace = parts.pop() ?? null;
  const host = parts.pop() ?? null;
  if (!PART.test(model))
    throw bad(`model part "${model}" must start with a letter or digit and use letters, digits, '_', '.', '-'`);
  if (namespace !== null && !PART.test(namespace)) throw bad(`namespace "${namespace}" is not valid`);
  if (host !== null && !HOST.test(host)) throw bad(`host "${host}" is not valid`);
  return { host, namespace, model, tag };
}

/** The name as Ollama shows it: defaults omitted, tag always present (`llama3.2:latest`). */
export function displayName(name: ModelName): string {
  const parts: string[] = [];
  const host = name.host && name.host.toLowerCase() !== DEFAULT_HOST ? name.host : null;
  const namespace =
    name.namespace && (host || name.namespace.toLowerCase() !== DEFAULT_NAMESPACE) ? name.namespace : null;
  if (host) parts.push(host);
  if (namespace) parts.push(namespace);
  parts.push(`${name.model}:${name.tag}`);
  return parts.join('/');
}

/** The key two spellings of one model share (case-insensitive, defaults applied). */
export function nameKey(name: ModelName): string {
  return displayName(name).toLowerCase();
}

/** Parses and normalises in one step: `Llama3.2` → `{ display: 'Llama3.2:latest', key: 'llama3.2:latest' }`. */
export function normaliseModelName(input: string): { display: string; key: string; name: ModelName } {
  const name = parseModelName(input);
  return { display: displayName(name), key: nameKey(name), name };
}
