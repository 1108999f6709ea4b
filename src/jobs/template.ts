/**
 * Prompt templates: text with `{{field}}` placeholders (`{{ field }}` and nested `{{a.b}}` too),
 * filled from one record. Strings go in as they are; numbers and booleans as text; objects and arrays
 * as JSON; null as nothing. A field the record does not have is an error for that record.
 */
const PLACEHOLDER = /\{\{\s*([^{}\s]+?)\s*\}\}/g;

/** The fields a template uses, in order of first use. */
export function templateFields(template: string): string[] {
  const fields = new Set<string>();
  for (const match of template.matchAll(PLACEHOLDER)) fields.add(match[1]!);
  return [...fields];
}

/** The value at a dotted path, or undefined when the record lacks it. */
export function fieldValue(record: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(record, path)) return record[path];
  let current: unknown = record;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

export class MissingFieldError extends Error {
  constructor(readonly field: string) {
    super(`the record has no field "${field}"`);
  }
}

/** Fills the template from the record; throws MissingFieldError naming the first absent field. */
export function renderTemplate(template: string, record: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (_, field: string) => {
    const value = fieldValue(record, field);
    if (value === undefined) throw new MissingFieldError(field);
    if (value === null) return '';
    if (typeof value === 'string') return value;
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  });
}
