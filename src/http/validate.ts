import type { z } from 'zod';
import { HearthError } from '../errors.js';

/**
 * Parses a request body (or query) with a zod schema; a failure names every
 * offending field: `model: expected string, received number`.
 */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.output<S> {
  if (value === undefined || value === null) {
    throw new HearthError('BAD_REQUEST', `${what} is missing: send a JSON object`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  const first = result.error.issues[0]?.path.join('.');
  throw new HearthError('BAD_REQUEST', `invalid ${what}: ${problems.join('; ')}`, {
    details: first ? { param: first } : undefined,
  });
}

/**
 * An answer, checked at compile time against the schema of its shape in a contract (src/http/ui/contract.ts):
 * the value must be the schema's input (where a Date stands for its ISO text). Nothing is checked at run time.
 */
export function answer<S extends z.ZodType>(_schema: S, value: z.input<S>): z.input<S> {
  return value;
}
