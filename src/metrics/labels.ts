/** The label value that stands for every value past a label's limit. */
export const OTHER_LABEL = 'other';

/**
 * Keeps a label's values bounded: the first `max` distinct values are used as they are, later
 * ones become `other`. Model names are bounded by the library already; this is the backstop
 * that keeps a Prometheus server safe from a library with thousands of models.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(raw);
    return raw;
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** HTTP methods as a label: the standard ones, anything else `OTHER`. */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}
