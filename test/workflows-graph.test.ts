// Workflow graphs without a server: node info, validation errors in ComfyUI's shape, execution order, caching, interrupt.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { OutputCache } from '../src/workflows/cache.js';
import { ExecutionInterrupted, executePlan } from '../src/workflows/executor.js';
import { type ExecutionPlan, planPrompt } from '../src/workflows/graph.js';
import { builtinNodes } from '../src/workflows/nodes/index.js';

const registry = builtinNodes();
let dir: string;
let cache: OutputCache;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-wf-'));
  cache = await OutputCache.open({ dir, memoryMaxBytes: 1 << 20, diskMaxBytes: 1 << 20, log: silentLogger() });
});
afterAll(async () => {
  cache.close();
  await rm(dir, { recursive: true, force: true });
});

function plan(prompt: unknown): ExecutionPlan {
  const r = planPrompt(prompt, registry);
  if (!r.ok) throw new Error(JSON.stringify(r.rejection));
  return r.plan;
}

function errorsOf(prompt: unknown) {
  const r = planPrompt(prompt, registry);
  expect(r.ok).toBe(false);
  return (r as { rejection: any }).rejection;
}

async function run(p: Record<string, unknown>, signal = new AbortController().signal) {
  const frames: Array<[string, unknown]> = [];
  const result = await executePlan({
    promptId: 'p',
    prompt: p,
    extraData: {},
    plan: plan(p),
    cache,
    signal,
    events: {
      start: () => frames.push(['start', null]),
      cached: (n) => frames.push(['cached', n]),
      executing: (n) => frames.push(['executing', n]),
      progress: (n, v, m) => frames.push(['progress', [n, v, m]]),
      executed: (n, ui) => frames.push(['executed', [n, ui]]),
    },
    files: undefined as never,
    engine: undefined as never,
    inference: undefined as never,
    images: undefined as never,
    tempDir: dir,
    log: silentLogger(),
  });
  return { ...result, frames };
}

const chain = (name: string) => ({
  '1': { class_type: 'Text', inputs: { text: name } },
  '2': { class_type: 'TextTemplate', inputs: { template: 'Hello {{text}}!', text: ['1', 0] } },
  '3': { class_type: 'RegexReplace', inputs: { text: ['2', 0], pattern: 'll', replacement: 'L' } },
  '4': { class_type: 'PreviewText', inputs: { text: ['3', 0] } },
  '9': { class_type: 'Text', inputs: { text: 'not an ancestor of an output: never runs' } },
});

describe('object_info', () => {
  it('describes every node type in ComfyUI shape, from the declarations', () => {
    const info = registry.objectInfo();
    expect(Object.keys(info).length).toBeGreaterThan(20);
    const resize = info['ImageResize']!;
    expect(resize.input.required['width']).toEqual(['INT', { default: 512, min: 0, max: 16384 }]);
    expect(resize.input.optional['fit']![0]).toContain('cover');
    expect(resize.input_order.required).toEqual(['image', 'width', 'height']);
    expect(resize).toMatchObject({
      output: ['IMAGE'],
      output_name: ['IMAGE'],
      output_is_list: [false],
      output_node: false,
    });
    expect(info['SaveImage']).toMatchObject({ output_node: true, category: 'image', output: [] });
    expect(info['RegexExtract']!.output_is_list).toEqual([false, true]);
  });
});

describe('validation', () => {
  it('refuses a prompt without output nodes, an unknown class and an empty prompt', () => {
    expect(errorsOf({ '1': { class_type: 'Text', inputs: { text: 'x' } } }).error.type).toBe('prompt_no_outputs');
    expect(errorsOf({ '1': { class_type: 'Nope', inputs: {} } }).error).toMatchObject({
      type: 'invalid_prompt',
      extra_info: { node_id: '1' },
    });
    expect(errorsOf({}).error.type).toBe('no_prompt');
  });

  it.each([
    ['required_input_missing', { '4': { class_type: 'SaveJSON', inputs: { filename_prefix: 'x' } } }, '4'],
    ['bad_linked_input', { '4': { class_type: 'PreviewText', inputs: { text: ['7', 0] } } }, '4'],
    [
      'bad_linked_input',
      { '1': { class_type: 'Text', inputs: {} }, '4': { class_type: 'PreviewText', inputs: { text: ['1', 3] } } },
      '4',
    ],
    [
      'return_type_mismatch',
      { '1': { class_type: 'JSONParse', inputs: {} }, '4': { class_type: 'PreviewText', inputs: { text: ['1', 0] } } },
      '4',
    ],
    [
      'invalid_input_type',
      { '4': { class_type: 'SaveImage', inputs: { images: 'cat.png', filename_prefix: 'x' } } },
      '4',
    ],
    [
      'value_smaller_than_min',
      {
        '1': { class_type: 'NumberToText', inputs: { number: 1, decimals: -1 } },
        '4': { class_type: 'PreviewText', inputs: { text: ['1', 0] } },
      },
      '1',
    ],
    [
      'value_bigger_than_max',
      {
        '1': { class_type: 'NumberToText', inputs: { number: 1, decimals: 99 } },
        '4': { class_type: 'PreviewText', inputs: { text: ['1', 0] } },
      },
      '1',
    ],
    [
      'value_not_in_list',
      {
        '1': { class_type: 'DatasetRead', inputs: { format: 'xml' } },
        '4': { class_type: 'SaveJSON', inputs: { json: ['1', 0] } },
      },
      '1',
    ],
    [
      'dependency_cycle',
      {
        '1': { class_type: 'TextConcat', inputs: { a: ['2', 0] } },
        '2': { class_type: 'TextConcat', inputs: { a: ['1', 0] } },
        '4': { class_type: 'PreviewText', inputs: { text: ['2', 0] } },
      },
      '2',
    ],
  ])('%s is reported on the node, with the outputs it blocks', (type, prompt, node) => {
    const rejection = errorsOf(prompt);
    expect(rejection.error.type).toBe('prompt_outputs_failed_validation');
    const entry = rejection.node_errors[node];
    expect(entry.errors.map((e: any) => e.type)).toContain(type);
    expect(entry.errors[0]).toHaveProperty('details');
    expect(entry.errors[0]).toHaveProperty('extra_info');
    expect(entry.dependent_outputs).toEqual(['4']);
    expect(entry.class_type).toBe((prompt as any)[node].class_type);
  });
});

describe('execution', () => {
  it('runs only outputs and their ancestors, in order, then serves an unchanged graph from the cache', async () => {
    const first = await run(chain('world'));
    expect(first.ran).toEqual(['1', '2', '3', '4']);
    expect(first.outputs['4']).toEqual({ text: ['HeLo world!'] });
    const again = await run(chain('world'));
    expect(again.ran).toEqual([]);
    expect(again.cached).toEqual(['1', '2', '3', '4']);
    expect(again.outputs['4']).toEqual({ text: ['HeLo world!'] });
  });

  it('reruns only what depends on a changed input, whatever the node ids', async () => {
    await run(chain('moon'));
    const p = chain('moon') as Record<string, any>;
    p['3'].inputs.replacement = '_';
    const changed = await run(p);
    expect(changed.ran).toEqual(['3', '4']);
    expect(changed.outputs['4']).toEqual({ text: ['He_o moon!'] });
    // The same graph under other ids shares the signatures.
    const renumbered = {
      a: { class_type: 'Text', inputs: { text: 'moon' } },
      b: { class_type: 'TextTemplate', inputs: { template: 'Hello {{text}}!', text: ['a', 0] } },
      c: { class_type: 'PreviewText', inputs: { text: ['b', 0] } },
    };
    expect((await run(renumbered)).ran).toEqual(['c']);
  });

  it('runs a node once per item of a list and joins the results', async () => {
    const r = await run({
      '1': { class_type: 'RegexExtract', inputs: { text: 'a1 b22 c333', pattern: '\\d+' } },
      '2': { class_type: 'TextConcat', inputs: { a: 'n=', b: ['1', 1] } },
      '3': { class_type: 'PreviewText', inputs: { text: ['2', 0] } },
    });
    expect(r.outputs['3']).toEqual({ text: ['n=1', 'n=22', 'n=333'] });
  });

  it('stops at the next node boundary when interrupted, reporting the node', async () => {
    const controller = new AbortController();
    const p = chain('interrupted');
    const planned = plan(p);
    const err = await executePlan({
      promptId: 'p',
      prompt: p,
      extraData: {},
      plan: planned,
      cache,
      signal: controller.signal,
      events: {
        start() {},
        cached() {},
        executing: (n) => {
          if (n === '2') controller.abort();
        },
        progress() {},
        executed() {},
      },
      files: undefined as never,
      engine: undefined as never,
      inference: undefined as never,
      images: undefined as never,
      tempDir: dir,
      log: silentLogger(),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionInterrupted);
    expect(err.nodeId).toBe('2');
    expect(cache.has(planned.order.find((n) => n.id === '3')!.signature)).toBe(false);
  });

  it('keeps outputs on disk across a new cache on the same folder', async () => {
    await run(chain('disk'));
    const reopened = await OutputCache.open({
      dir,
      memoryMaxBytes: 1 << 20,
      diskMaxBytes: 1 << 20,
      log: silentLogger(),
    });
    const sig = plan(chain('disk')).order.at(-1)!.signature;
    expect(await reopened.get(sig)).toMatchObject({ ui: { text: ['HeLo disk!'] } });
    reopened.close();
  });
});
