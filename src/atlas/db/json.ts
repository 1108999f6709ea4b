/**
 * JSON for a jsonb column. PostgreSQL's jsonb refuses the NUL character (`\u0000`), which generated
 * text can contain; it becomes U+FFFD there (saved files keep the exact text), so a record of
 * generated output is stored instead of failing with a 400 meant for NULs a client sent.
 */
export function jsonForAtlas(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? v.replaceAll('\0', '\uFFFD') : v));
}
