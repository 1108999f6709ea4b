// The editor's ComfyUI file conversion (web/src/workflows/format.ts) and PNG chunk reader (png.ts),
// against fixtures written by hand from ComfyUI's documented formats (test/fixtures/comfy/README.md),
// and hearth's own node types.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { builtinNodes } from '../src/workflows/nodes/index.js';
import { withPngText } from '../src/workflows/nodes/output.js';
import {
  afterQueue,
  apiToGraph,
  type Graph,
  graphToApi,
  graphToUi,
  isUiWorkflow,
  newNode,
  type ObjectInfo,
  shapeOf,
  typesMatch,
  type UiWorkflow,
  uiToGraph,
} from '../web/src/workflows/format.js';
import { pngTextChunks, workflowFromPng } from '../web/src/workflows/png.js';
import { REPO_ROOT } from './support/hearth.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'comfy');
const fixture = async <T>(name: string) => JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as T;
const hearthInfo = builtinNodes().objectInfo() as unknown as ObjectInfo;

describe("ComfyUI's UI-format workflow", () => {
  it('converts the default workflow to the API prompt ComfyUI queues for it', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const ui = await fixture<UiWorkflow>('default-workflow.json');
    expect(isUiWorkflow(ui)).toBe(true);
    const { graph, warnings } = uiToGraph(ui, infos);
    expect(warnings).toEqual([]);
    const prompt = graphToApi(graph, infos);
    for (const entry of Object.values(prompt)) delete entry._meta;
    expect(prompt).toEqual(await fixture('default-prompt.json'));
    // The seed's control_after_generate value is read, not taken for the next widget.
    expect(graph.nodes.find((n) => n.id === 3)?.control).toEqual({ seed: 'randomize' });
    expect(graph.nodes.find((n) => n.id === 7)?.size).toEqual([425.28, 180.61]);
    expect(graph.groups).toEqual([
      { title: 'Prompts', bounding: [400, 110, 460, 480], color: '#3f789e', fontSize: 24 },
    ]);
  });

  it('saves a graph back faithfully: the same links, slots, widgets_values and groups', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const original = await fixture<UiWorkflow>('default-workflow.json');
    const saved = graphToUi(uiToGraph(original, infos).graph, infos, original.extra);
    expect(saved.version).toBe(0.4);
    expect(saved.last_node_id).toBe(9);
    expect(saved.last_link_id).toBe(9);
    expect([...saved.links].sort((a, b) => a[0] - b[0])).toEqual(original.links);
    for (const node of original.nodes) {
      const out = saved.nodes.find((n) => n.id === node.id)!;
      expect(out.type).toBe(node.type);
      expect(out.pos).toEqual(node.pos);
      expect(out.widgets_values).toEqual(node.widgets_values ?? []);
      expect(out.inputs ?? []).toEqual(node.inputs ?? []);
      expect(out.outputs?.map((o) => [o.name, o.type, o.links])).toEqual(
        (node.outputs ?? []).map((o) => [o.name, o.type, o.links]),
      );
    }
    // `order` is an execution order: every link goes from an earlier node to a later one.
    const order = (id: number) => saved.nodes.find((n) => n.id === id)!.order!;
    for (const [, from, , to] of saved.links) expect(order(from)).toBeLessThan(order(to));
    expect(saved.groups[0]).toMatchObject({ title: 'Prompts', bounding: [400, 110, 460, 480] });
    // Read back, it is the same graph.
    expect(uiToGraph(saved, infos).graph).toEqual(uiToGraph(original, infos).graph);
  });

  it('reads a widget turned into an input (ComfyUI writes it with widget: {name}) and links it', () => {
    const ui: UiWorkflow = {
      last_node_id: 2,
      last_link_id: 1,
      nodes: [
        {
          id: 1,
          type: 'Text',
          pos: [0, 0],
          outputs: [{ name: 'STRING', type: 'STRING', links: [1], slot_index: 0 }],
          widgets_values: ['a cat'],
        },
        {
          id: 2,
          type: 'SaveText',
          pos: [400, 0],
          inputs: [{ name: 'text', type: 'STRING', link: 1, widget: { name: 'text' } }],
          widgets_values: ['', 'cats/out'],
        },
      ],
      links: [[1, 1, 0, 2, 0, 'STRING']],
      groups: [],
      config: {},
      extra: {},
      version: 0.4,
    };
    const { graph } = uiToGraph(ui, hearthInfo);
    const prompt = graphToApi(graph, hearthInfo);
    expect(prompt['2']?.inputs).toEqual({ text: ['1', 0], filename_prefix: 'cats/out' });
    expect(prompt['1']?.inputs).toEqual({ text: 'a cat' });
    expect(graphToUi(graph, hearthInfo).nodes[1]?.inputs).toEqual(ui.nodes[1]?.inputs);
  });

  it('keeps a node of an unknown type (with a warning) and its widgets_values as they were', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const ui = await fixture<UiWorkflow>('default-workflow.json');
    const { graph, warnings } = uiToGraph(ui, { ...infos, SaveImage: undefined } as unknown as ObjectInfo);
    expect(warnings).toEqual(['node 9: this server has no node type SaveImage']);
    expect(graphToUi(graph, infos).nodes.find((n) => n.id === 9)?.widgets_values).toEqual(['ComfyUI']);
  });

  it('leaves muted and bypassed nodes out of the prompt', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const ui = await fixture<UiWorkflow>('default-workflow.json');
    ui.nodes.find((n) => n.id === 9)!.mode = 2;
    const prompt = graphToApi(uiToGraph(ui, infos).graph, infos);
    expect(Object.keys(prompt).sort()).toEqual(['3', '4', '5', '6', '7', '8']);
  });
});

describe('the API format', () => {
  it('lays an API prompt out as a graph and converts it back unchanged', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const prompt =
      await fixture<Record<string, { class_type: string; inputs: Record<string, unknown> }>>('default-prompt.json');
    const { graph, warnings } = apiToGraph(prompt, infos);
    expect(warnings).toEqual([]);
    // Columns by depth: the loader left of the sampler, the sampler left of the decoder.
    const x = (id: number) => graph.nodes.find((n) => n.id === id)!.pos[0];
    expect(x(4)).toBeLessThan(x(6));
    expect(x(6)).toBeLessThan(x(3));
    expect(x(3)).toBeLessThan(x(8));
    const back = graphToApi(graph, infos);
    for (const entry of Object.values(back)) delete entry._meta;
    expect(back).toEqual(prompt);
  });
});

describe('the editor graph', () => {
  it('gives new nodes their defaults from /object_info, seeds randomized after each queue', async () => {
    const infos = await fixture<ObjectInfo>('object-info-sd.json');
    const sampler = newNode(1, 'KSampler', infos['KSampler'], [0, 0]);
    expect(sampler.widgets).toEqual({
      seed: 0,
      steps: 20,
      cfg: 8,
      sampler_name: 'euler',
      scheduler: 'normal',
      denoise: 1,
    });
    expect(sampler.control).toEqual({ seed: 'randomize' });
    const graph: Graph = { nodes: [sampler], links: [], groups: [] };
    expect(afterQueue(graph, infos, () => 0.5).nodes[0]?.widgets['seed']).toBe(2 ** 49);
    sampler.control['seed'] = 'increment';
    expect(afterQueue(graph, infos).nodes[0]?.widgets['seed']).toBe(1);
    sampler.control['seed'] = 'fixed';
    expect(afterQueue(graph, infos).nodes[0]?.widgets['seed']).toBe(0);
  });

  it('knows which inputs are widgets and which sockets, and which types connect', () => {
    const llm = shapeOf(hearthInfo['LLMGenerate']!);
    expect(llm.inputs.find((i) => i.name === 'prompt')).toMatchObject({ type: 'STRING', widget: true });
    expect(llm.inputs.find((i) => i.name === 'seed')).toMatchObject({ type: 'INT', control: true });
    const save = shapeOf(hearthInfo['SaveImage']!);
    expect(save.inputs.find((i) => i.name === 'images')).toMatchObject({ type: 'IMAGE', widget: false });
    expect(typesMatch('STRING', 'STRING')).toBe(true);
    expect(typesMatch('IMAGE', 'STRING')).toBe(false);
    expect(typesMatch('STRING', 'COMBO')).toBe(true);
    expect(typesMatch('*', 'LATENT')).toBe(true);
  });
});

describe('PNG workflow chunks', () => {
  it('reads the workflow and prompt that SaveImage (as ComfyUI) writes into a PNG', async () => {
    const ui = await fixture<UiWorkflow>('default-workflow.json');
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#884422' } })
      .png()
      .toBuffer();
    const withText = withPngText(png, { prompt: JSON.stringify({ a: 1 }), workflow: JSON.stringify(ui) });
    const chunks = await pngTextChunks(new Uint8Array(withText));
    expect(Object.keys(chunks).sort()).toEqual(['prompt', 'workflow']);
    expect(await workflowFromPng(new Uint8Array(withText))).toEqual({ kind: 'ui', workflow: ui });
    const promptOnly = withPngText(png, { prompt: JSON.stringify({ '1': { class_type: 'Text', inputs: {} } }) });
    expect((await workflowFromPng(new Uint8Array(promptOnly)))?.kind).toBe('api');
    expect(await workflowFromPng(new Uint8Array(png))).toBeNull();
    await expect(pngTextChunks(new Uint8Array([1, 2, 3]))).rejects.toThrow(/not a PNG/);
  });
});
