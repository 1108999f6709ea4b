import { HearthError } from '../../errors.js';
import type { NodeDefinition } from '../types.js';

function regex(pattern: string, flags: string): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    throw new HearthError(
      'WORKFLOW_INVALID',
      `pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${(err as Error).message}`,
    );
  }
}

const FLAGS = { type: 'STRING', default: '', tooltip: 'JavaScript regex flags, e.g. i (ignore case), m, s' } as const;

/** Text nodes: constants, templates, concatenation, regular expressions, number formatting. */
export const textNodes: NodeDefinition[] = [
  {
    name: 'Text',
    displayName: 'Text',
    description: 'A piece of text typed into the graph.',
    category: 'text',
    inputs: { required: { text: { type: 'STRING', multiline: true, default: '' } } },
    outputs: [{ type: 'STRING', name: 'STRING' }],
    run: async ({ text }) => ({ outputs: [text] }),
  },
  {
    name: 'TextTemplate',
    displayName: 'Text Template',
    description: 'Fills {{name}} placeholders from a JSON object (dotted paths allowed); unknown names are an error.',
    category: 'text',
    inputs: {
      required: {
        template: { type: 'STRING', multiline: true, default: '', tooltip: 'text with {{name}} placeholders' },
      },
      optional: {
        values: { type: 'JSON', tooltip: 'an object whose fields fill the placeholders' },
        text: { type: 'STRING', tooltip: 'fills {{text}}' },
      },
    },
    outputs: [{ type: 'STRING', name: 'STRING' }],
    run: async ({ template, values, text }) => {
      const scope: Record<string, unknown> = { ...(isObject(values) ? values : {}) };
      if (typeof text === 'string') scope['text'] = text;
      const out = (template as string).replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_m, path: string) => {
        const v = getPath(scope, path);
        if (v === undefined) {
          throw new HearthError('WORKFLOW_INVALID', `template placeholder {{${path}}} has no value: add it to values`);
        }
        return typeof v === 'string' ? v : JSON.stringify(v);
      });
      return { outputs: [out] };
    },
  },
  {
    name: 'TextConcat',
    displayName: 'Concatenate Text',
    description: 'Joins two texts with a separator.',
    category: 'text',
    inputs: {
      required: { a: { type: 'STRING', default: '' }, b: { type: 'STRING', default: '' } },
      optional: { separator: { type: 'STRING', default: '' } },
    },
    outputs: [{ type: 'STRING', name: 'STRING' }],
    run: async ({ a, b, separator }) => ({ outputs: [`${a}${separator}${b}`] }),
  },
  {
    name: 'RegexReplace',
    displayName: 'Regex Replace',
    description: 'Replaces every match of a pattern ($1 etc. refer to groups).',
    category: 'text/regex',
    inputs: {
      required: {
        text: { type: 'STRING', default: '' },
        pattern: { type: 'STRING' },
        replacement: { type: 'STRING', default: '' },
      },
      optional: { flags: FLAGS },
    },
    outputs: [{ type: 'STRING', name: 'STRING' }],
    run: async ({ text, pattern, replacement, flags }) => {
      const re = regex(pattern as string, `${(flags as string).replace('g', '')}g`);
      return { outputs: [(text as string).replace(re, replacement as string)] };
    },
  },
  {
    name: 'RegexExtract',
    displayName: 'Regex Extract',
    description: 'The first match (or a group of it) and every match, as a list.',
    category: 'text/regex',
    inputs: {
      required: { text: { type: 'STRING', default: '' }, pattern: { type: 'STRING' } },
      optional: { group: { type: 'INT', default: 0, min: 0, max: 99, tooltip: '0 = the whole match' }, flags: FLAGS },
    },
    outputs: [
      { type: 'STRING', name: 'first' },
      { type: 'STRING', name: 'all', isList: true },
    ],
    run: async ({ text, pattern, group, flags }) => {
      const re = regex(pattern as string, `${(flags as string).replace('g', '')}g`);
      const all = [...(text as string).matchAll(re)].map((m) => m[group as number] ?? '');
      return { outputs: [all[0] ?? '', all] };
    },
  },
  {
    name: 'NumberToText',
    displayName: 'Number to Text',
    description: 'Formats a number with a fixed number of decimals.',
    category: 'text',
    inputs: {
      required: { number: { type: 'FLOAT', default: 0 } },
      optional: { decimals: { type: 'INT', default: 0, min: 0, max: 20 } },
    },
    outputs: [{ type: 'STRING', name: 'STRING' }],
    run: async ({ number, decimals }) => ({ outputs: [(number as number).toFixed(decimals as number)] }),
  },
];

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `a.b.0.c` or `a.b[0].c` into nested objects and arrays; undefined when any step is missing. */
export function getPath(value: unknown, path: string): unknown {
  const steps = path
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(Boolean);
  let cur: unknown = value;
  for (const step of steps) {
    if (Array.isArray(cur) && /^\d+$/.test(step)) cur = cur[Number(step)];
    else if (isObject(cur) && Object.hasOwn(cur, step)) cur = cur[step];
    else return undefined;
  }
  return cur;
}
