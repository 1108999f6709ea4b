import { HearthError } from '../../errors.js';
import { locateDataset, sampleDataset } from '../../jobs/index.js';
import type { NodeDefinition } from '../types.js';
import { getPath, isObject } from './text.js';

const PAIRS = 4;

/** JSON nodes (parse, get a path, build an object) and reading a dataset from Atlas. */
export const jsonNodes: NodeDefinition[] = [
  {
    name: 'JSONParse',
    displayName: 'Parse JSON',
    description: 'Parses text as JSON (a ```json fence around it, as models often write, is ignored).',
    category: 'json',
    inputs: { required: { text: { type: 'STRING', multiline: true, default: '{}' } } },
    outputs: [{ type: 'JSON', name: 'JSON' }],
    run: async ({ text }) => {
      const body = (text as string).trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/, '$1');
      try {
        return { outputs: [JSON.parse(body)] };
      } catch (err) {
        throw new HearthError('WORKFLOW_INVALID', `text is not JSON (${(err as Error).message}): ${body.slice(0, 80)}`);
      }
    },
  },
  {
    name: 'JSONGetPath',
    displayName: 'Get JSON Path',
    description: 'The value at a dotted path (a.b[0].c), as JSON and as text.',
    category: 'json',
    inputs: {
      required: { json: { type: 'JSON' }, path: { type: 'STRING', default: '' } },
      optional: {
        default: { type: 'JSON', tooltip: 'used when the path is missing; without it a missing path is an error' },
      },
    },
    outputs: [
      { type: 'JSON', name: 'value' },
      { type: 'STRING', name: 'text' },
    ],
    run: async ({ json, path, default: fallback }) => {
      const v = (path as string) === '' ? json : getPath(json, path as string);
      const value = v === undefined ? fallback : v;
      if (value === undefined)
        throw new HearthError('WORKFLOW_INVALID', `path ${JSON.stringify(path)} is not in the JSON`);
      return { outputs: [value, typeof value === 'string' ? value : JSON.stringify(value)] };
    },
  },
  {
    name: 'JSONBuildObject',
    displayName: 'Build JSON Object',
    description: `An object from up to ${PAIRS} key/value pairs, optionally added to a base object.`,
    category: 'json',
    inputs: {
      required: { key_1: { type: 'STRING', default: 'key' }, value_1: { type: 'JSON' } },
      optional: {
        base: { type: 'JSON' },
        ...Object.fromEntries(
          Array.from({ length: PAIRS - 1 }, (_, i) => [
            [`key_${i + 2}`, { type: 'STRING' }],
            [`value_${i + 2}`, { type: 'JSON' }],
          ]).flat(),
        ),
      },
    },
    outputs: [{ type: 'JSON', name: 'JSON' }],
    run: async (inputs) => {
      const out: Record<string, unknown> = isObject(inputs['base']) ? { ...inputs['base'] } : {};
      for (let i = 1; i <= PAIRS; i++) {
        const key = inputs[`key_${i}`];
        if (typeof key === 'string' && key !== '' && inputs[`value_${i}`] !== undefined)
          out[key] = inputs[`value_${i}`];
      }
      return { outputs: [out] };
    },
  },
  {
    name: 'DatasetRead',
    displayName: 'Read Dataset',
    description: 'Records of a JSONL or CSV file on Atlas, as a list: each downstream node runs once per record.',
    category: 'data',
    inputs: {
      required: { path: { type: 'STRING', default: 'datasets/records.jsonl', tooltip: 'Atlas file key' } },
      optional: {
        format: { type: ['auto', 'jsonl', 'csv'], default: 'auto' },
        limit: { type: 'INT', default: 100, min: 1, max: 10_000, tooltip: 'records read at most' },
      },
    },
    outputs: [{ type: 'JSON', name: 'records', isList: true }],
    run: async ({ path, format, limit }, ctx) => {
      const ref = await locateDataset(
        ctx.files,
        path as string,
        format === 'auto' ? undefined : (format as 'jsonl' | 'csv'),
      );
      const records = await sampleDataset(ctx.files, ref, limit as number);
      const bad = records.find((r) => r.error);
      if (bad) throw new HearthError('WORKFLOW_INVALID', `${path} line ${bad.line}: ${bad.error}`);
      return { outputs: [records.map((r) => r.fields ?? {})] };
    },
  },
];
