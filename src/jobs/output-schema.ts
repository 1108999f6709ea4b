import * as z from 'zod';
import { HearthError } from '../errors.js';

/** Validates a generated value against the job's JSON schema; returns the reason it fails, or null. */
export type OutputValidator = (value: unknown) => string | null;

const SCHEMA_KEYWORDS_OBJECT = ['properties', 'patternProperties', 'definitions', '$defs'] as const;
const SCHEMA_KEYWORDS_ARRAY = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;

/**
 * Compiles a job's output schema, or throws JOB_SCHEMA_INVALID saying what is wrong. The engine
 * constrains generation with a grammar made from the same schema; this validator is the check after.
 */
export function compileOutputSchema(schema: Record<string, unknown>): OutputValidator {
  const problem = shapeProblem(schema, 'schema');
  if (problem) throw invalid(problem);
  let validator: z.ZodType;
  try {
    validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  return (value) => {
    const result = validator.safeParse(value);
    if (result.success) return null;
    return result.error.issues
      .slice(0, 3)
      .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
      .join('; ');
  };
}

function invalid(problem: string): HearthError {
  return new HearthError('JOB_SCHEMA_INVALID', [problem], {
    details: { param: 'schema' },
  });
}

/** Structural mistakes zod's converter lets through (it ignores keywords of the wrong type). */
function shapeProblem(node: unknown, where: string): string | null {
  if (typeof node === 'boolean') return null;
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return `${where} must be an object`;
  const s = node as Record<string, unknown>;
  if (s['type'] !== undefined) {
    const types = Array.isArray(s['type']) ? s['type'] : [s['type']];
    if (!types.every((t) => typeof t === 'string')) return `${where}.type must be a type name or a list of them`;
  }
  if (
    s['required'] !== undefined &&
    !(Array.isArray(s['required']) && s['required'].every((r) => typeof r === 'string'))
  ) {
    return `${where}.required must be a list of property names`;
  }
  if (s['enum'] !== undefined && !Array.isArray(s['enum'])) return `${where}.enum must be a list`;
  for (const key of SCHEMA_KEYWORDS_OBJECT) {
    const value = s[key];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where}.${key} must be an object`;
    for (const [name, child] of Object.entries(value)) {
      const p = shapeProblem(child, `${where}.${key}.${name}`);
      if (p) return p;
    }
  }
  for (const key of SCHEMA_KEYWORDS_ARRAY) {
    const value = s[key];
    if (value === undefined) continue;
    if (!Array.isArray(value)) return `${where}.${key} must be a list of schemas`;
    for (const [i, child] of value.entries()) {
      const p = shapeProblem(child, `${where}.${key}[${i}]`);
      if (p) return p;
    }
  }
  for (const key of ['items', 'additionalProperties', 'not'] as const) {
    if (s[key] !== undefined) {
      const p = shapeProblem(s[key], `${where}.${key}`);
      if (p) return p;
    }
  }
  return null;
}
