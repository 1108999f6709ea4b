import { readFileSync } from 'node:fs';

// src/version.ts and dist/version.js both sit one folder below package.json.
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const HEARTH_VERSION: string = pkg.version;

/**
 * The Ollama release whose API surface hearth implements, as `GET /api/version`
 * reports it: clients gate features on it (0.13.3 added /v1/responses, 0.14.0
 * /v1/messages). hearth's own version goes alongside, as `hearth_version` and
 * the `x-hearth-version` header (docs/ollama-compatibility.md).
 */
export const OLLAMA_API_VERSION = '0.14.0';
