// ComfyUI's two workflow formats and the editor's graph, converted with the node definitions
// (/object_info). Pure: no DOM, no React; unit-tested in test/workflow-format.test.ts.
//
// - API format (what /prompt runs): {"<id>": {class_type, inputs: {name: value | ["<src id>", slot]}}}
// - UI format (what ComfyUI's page saves, version 0.4): nodes with pos/size/flags/mode,
//   `inputs` (sockets, and widgets turned into sockets: `widget: {name}`), `outputs` with their link ids,
//   `widgets_values` in widget order (a seed widget is followed by its control_after_generate value),
//   links as [id, from node, from slot, to node, to slot, type], groups with `bounding` [x, y, w, h].

/** One input of a node type: `[TYPE | [choices], {default, min, max, step, multiline, tooltip, ...}]`. */
export type InputSpec = [string | string[], Record<string, unknown>?];

/** `/object_info`'s entry for a node type. */
export interface NodeInfo {
  input: { required?: Record<string, InputSpec>; optional?: Record<string, InputSpec> };
  input_order?: { required?: string[]; optional?: string[] };
  output: string[];
  output_is_list?: boolean[];
  output_name?: string[];
  name: string;
  display_name?: string;
  description?: string;
  category?: string;
  output_node?: boolean;
}
export type ObjectInfo = Record<string, NodeInfo>;

/** The types ComfyUI shows as widgets (a combo list is one too); everything else is a socket only. */
const WIDGET_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN']);
export const CONTROL_VALUES = ['fixed', 'increment', 'decrement', 'randomize'] as const;
export type ControlValue = (typeof CONTROL_VALUES)[number];

export interface InputShape {
  name: string;
  /** the socket type; COMBO for a list of choices */
  type: string;
  choices?: string[];
  options: Record<string, unknown>;
  optional: boolean;
  /** shown as a widget (its value lives in widgets_values); it can still be linked */
  widget: boolean;
  /** an INT seed: followed in widgets_values by its control_after_generate value */
  control: boolean;
}
export interface OutputShape {
  name: string;
  type: string;
  isList: boolean;
}
export interface NodeShape {
  inputs: InputShape[];
  outputs: OutputShape[];
}

/** A node type's inputs (required, then optional, in input_order) and outputs. */
export function shapeOf(info: NodeInfo): NodeShape {
  const inputs: InputShape[] = [];
  for (const optional of [false, true]) {
    const specs = (optional ? info.input.optional : info.input.required) ?? {};
    const order = (optional ? info.input_order?.optional : info.input_order?.required) ?? Object.keys(specs);
    for (const name of order) {
      const spec = specs[name];
      if (!spec) continue;
      const [t, options = {}] = spec;
      const choices = Array.isArray(t) ? t.map(String) : undefined;
      const type = choices ? 'COMBO' : String(t);
      const widget = choices !== undefined || WIDGET_TYPES.has(type);
      const control =
        type === 'INT' && (options['control_after_generate'] === true || name === 'seed' || name === 'noise_seed');
      inputs.push({ name, type, ...(choices ? { choices } : {}), options, optional, widget, control });
    }
  }
  const outputs = info.output.map((type, i) => ({
    name: info.output_name?.[i] ?? type,
    type,
    isList: info.output_is_list?.[i] === true,
  }));
  return { inputs, outputs };
}

/** A widget's starting value: its default, else the first choice, else the type's zero. */
export function defaultValue(input: InputShape): unknown {
  if (input.options['default'] !== undefined) return input.options['default'];
  if (input.choices) return input.choices[0] ?? '';
  switch (input.type) {
    case 'INT':
    case 'FLOAT':
      return typeof input.options['min'] === 'number' ? Math.max(0, input.options['min']) : 0;
    case 'BOOLEAN':
      return false;
    default:
      return '';
  }
}

// ---- the editor's graph

export interface GraphNode {
  id: number;
  type: string;
  pos: [number, number];
  size?: [number, number];
  title?: string;
  collapsed?: boolean;
  /** ComfyUI's mode: 0 always, 2 never (muted), 4 bypass */
  mode?: number;
  /** widget values by input name */
  widgets: Record<string, unknown>;
  /** control_after_generate per seed widget */
  control: Record<string, ControlValue>;
  /** widgets_values of a type this server does not know, kept as they were */
  unknownValues?: unknown;
}
export interface GraphLink {
  id: number;
  from: number;
  fromSlot: number;
  to: number;
  /** the target input's name */
  input: string;
  type: string;
}
export interface GraphGroup {
  title: string;
  bounding: [number, number, number, number];
  color?: string;
  fontSize?: number;
}
export interface Graph {
  nodes: GraphNode[];
  links: GraphLink[];
  groups: GraphGroup[];
}

/** A new node of a type, its widgets at their defaults. */
export function newNode(id: number, type: string, info: NodeInfo | undefined, pos: [number, number]): GraphNode {
  const widgets: Record<string, unknown> = {};
  const control: Record<string, ControlValue> = {};
  for (const input of info ? shapeOf(info).inputs : []) {
    if (!input.widget) continue;
    widgets[input.name] = defaultValue(input);
    if (input.control) control[input.name] = 'randomize';
  }
  return { id, type, pos, widgets, control };
}

// ---- UI format

export type UiLink = [number, number, number, number, number, string];
export interface UiNode {
  id: number;
  type: string;
  pos: [number, number] | Record<string, number>;
  size?: [number, number] | Record<string, number>;
  flags?: { collapsed?: boolean };
  order?: number;
  mode?: number;
  title?: string;
  inputs?: Array<{ name: string; type: string; link: number | null; widget?: { name: string } }>;
  outputs?: Array<{ name: string; type: string; links: number[] | null; slot_index?: number }>;
  properties?: Record<string, unknown>;
  widgets_values?: unknown[] | Record<string, unknown>;
}
export interface UiGroup {
  title: string;
  bounding: [number, number, number, number];
  color?: string;
  font_size?: number;
  flags?: Record<string, unknown>;
}
export interface UiWorkflow {
  last_node_id: number;
  last_link_id: number;
  nodes: UiNode[];
  links: UiLink[];
  groups: UiGroup[];
  config: Record<string, unknown>;
  extra: Record<string, unknown>;
  version: number;
}

/** `[x, y]` from an array or LiteGraph's older `{"0": x, "1": y}`. */
function pair(value: unknown, fallback: [number, number]): [number, number] {
  if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'number') return [value[0], value[1]];
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o['0'] === 'number' && typeof o['1'] === 'number') return [o['0'], o['1']];
  }
  return fallback;
}

/** Execution order: each node after the nodes it links from (a cycle's nodes go last). */
function topoOrder(graph: Graph): number[] {
  const incoming = new Map<number, Set<number>>(graph.nodes.map((n) => [n.id, new Set<number>()]));
  for (const l of graph.links) incoming.get(l.to)?.add(l.from);
  const done = new Set<number>();
  const order: number[] = [];
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (const n of graph.nodes) {
      if (done.has(n.id)) continue;
      if ([...(incoming.get(n.id) ?? [])].every((f) => done.has(f) || !incoming.has(f))) {
        done.add(n.id);
        order.push(n.id);
        progressed = true;
      }
    }
  }
  for (const n of graph.nodes) if (!done.has(n.id)) order.push(n.id);
  return order;
}

/** The editor's graph as ComfyUI's UI-format workflow (version 0.4). */
export function graphToUi(graph: Graph, infos: ObjectInfo, extra: Record<string, unknown> = {}): UiWorkflow {
  const order = topoOrder(graph);
  const nodes: UiNode[] = graph.nodes.map((node) => {
    const info = infos[node.type];
    const shape = info ? shapeOf(info) : { inputs: [], outputs: [] };
    const linkTo = (name: string) => graph.links.find((l) => l.to === node.id && l.input === name);
    const inputs: NonNullable<UiNode['inputs']> = [];
    for (const input of shape.inputs) {
      if (!input.widget) inputs.push({ name: input.name, type: input.type, link: linkTo(input.name)?.id ?? null });
    }
    for (const input of shape.inputs) {
      const link = input.widget ? linkTo(input.name) : undefined;
      if (link) inputs.push({ name: input.name, type: input.type, link: link.id, widget: { name: input.name } });
    }
    const outputs = shape.outputs.map((o, slot) => ({
      name: o.name,
      type: o.type,
      links: graph.links.filter((l) => l.from === node.id && l.fromSlot === slot).map((l) => l.id),
      slot_index: slot,
    }));
    const values: unknown[] = [];
    for (const input of shape.inputs) {
      if (!input.widget) continue;
      values.push(node.widgets[input.name] ?? defaultValue(input));
      if (input.control) values.push(node.control[input.name] ?? 'fixed');
    }
    return {
      id: node.id,
      type: node.type,
      pos: node.pos,
      size: node.size ?? [320, 60 + 26 * (inputs.length + values.length)],
      flags: node.collapsed ? { collapsed: true } : {},
      order: order.indexOf(node.id),
      mode: node.mode ?? 0,
      ...(node.title ? { title: node.title } : {}),
      inputs,
      outputs,
      properties: { 'Node name for S&R': node.type },
      widgets_values: info ? values : ((node.unknownValues as unknown[] | undefined) ?? []),
    };
  });
  const links: UiLink[] = graph.links.map((l) => {
    const target = nodes.find((n) => n.id === l.to);
    const slot = target?.inputs?.findIndex((i) => i.link === l.id) ?? -1;
    return [l.id, l.from, l.fromSlot, l.to, slot, l.type];
  });
  return {
    last_node_id: Math.max(0, ...graph.nodes.map((n) => n.id)),
    last_link_id: Math.max(0, ...graph.links.map((l) => l.id)),
    nodes,
    links,
    groups: graph.groups.map((g) => ({
      title: g.title,
      bounding: g.bounding,
      color: g.color ?? '#3f789e',
      font_size: g.fontSize ?? 24,
      flags: {},
    })),
    config: {},
    extra,
    version: 0.4,
  };
}

/** Whether a parsed JSON document looks like a UI-format workflow (rather than an API prompt). */
export function isUiWorkflow(doc: unknown): doc is UiWorkflow {
  return typeof doc === 'object' && doc !== null && Array.isArray((doc as { nodes?: unknown }).nodes);
}

/** A UI-format workflow as the editor's graph. Problems (unknown types, broken links) are warnings, not failures. */
export function uiToGraph(ui: UiWorkflow, infos: ObjectInfo): { graph: Graph; warnings: string[] } {
  const warnings: string[] = [];
  const nodes: GraphNode[] = [];
  for (const n of ui.nodes) {
    const info = infos[n.type];
    const node: GraphNode = {
      id: Number(n.id),
      type: n.type,
      pos: pair(n.pos, [0, 0]),
      ...(n.size ? { size: pair(n.size, [320, 100]) } : {}),
      ...(n.title && n.title !== info?.display_name && n.title !== n.type ? { title: n.title } : {}),
      ...(n.flags?.collapsed ? { collapsed: true } : {}),
      ...(n.mode ? { mode: n.mode } : {}),
      widgets: {},
      control: {},
    };
    if (!info) {
      warnings.push(`node ${n.id}: this server has no node type ${n.type}`);
      node.unknownValues = n.widgets_values ?? [];
      nodes.push(node);
      continue;
    }
    const values = n.widgets_values;
    let i = 0;
    for (const input of shapeOf(info).inputs) {
      if (!input.widget) continue;
      if (Array.isArray(values)) {
        node.widgets[input.name] = i < values.length ? values[i++] : defaultValue(input);
        if (input.control) {
          const c = values[i];
          if (typeof c === 'string' && (CONTROL_VALUES as readonly string[]).includes(c)) {
            node.control[input.name] = c as ControlValue;
            i++;
          } else node.control[input.name] = 'fixed';
        }
      } else {
        node.widgets[input.name] = values && input.name in values ? values[input.name] : defaultValue(input);
        if (input.control) node.control[input.name] = 'fixed';
      }
    }
    nodes.push(node);
  }
  const links: GraphLink[] = [];
  for (const raw of ui.links ?? []) {
    // Links are arrays in 0.4; some exporters write objects {id, origin_id, origin_slot, target_id, target_slot, type}.
    const l = Array.isArray(raw)
      ? raw
      : (() => {
          const o = raw as unknown as Record<string, unknown>;
          return [o['id'], o['origin_id'], o['origin_slot'], o['target_id'], o['target_slot'], o['type']];
        })();
    const [id, from, fromSlot, to, toSlot, type] = l as [number, number, number, number, number, string];
    const target = ui.nodes.find((n) => Number(n.id) === Number(to));
    const slot = target?.inputs?.[Number(toSlot)];
    const name = slot?.widget?.name ?? slot?.name;
    if (!target || !name || !nodes.some((n) => n.id === Number(from))) {
      warnings.push(`link ${id}: its ends are missing; left out`);
      continue;
    }
    links.push({ id: Number(id), from: Number(from), fromSlot: Number(fromSlot), to: Number(to), input: name, type });
  }
  const groups: GraphGroup[] = (ui.groups ?? []).map((g) => ({
    title: String(g.title ?? 'Group'),
    bounding: [...(g.bounding ?? [0, 0, 300, 200])] as [number, number, number, number],
    ...(g.color ? { color: g.color } : {}),
    ...(g.font_size ? { fontSize: g.font_size } : {}),
  }));
  return { graph: { nodes, links, groups }, warnings };
}

// ---- API format

export type ApiPrompt = Record<
  string,
  { class_type: string; inputs: Record<string, unknown>; _meta?: { title: string } }
>;

/**
 * The graph as an API-format prompt: widgets become constants unless linked; muted (mode 2) and
 * bypassed (mode 4) nodes are left out, with the links to and from them.
 */
export function graphToApi(graph: Graph, infos: ObjectInfo): ApiPrompt {
  const prompt: ApiPrompt = {};
  const active = new Set(graph.nodes.filter((n) => (n.mode ?? 0) === 0).map((n) => n.id));
  for (const node of graph.nodes) {
    if (!active.has(node.id)) continue;
    const info = infos[node.type];
    const inputs: Record<string, unknown> = {};
    for (const input of info ? shapeOf(info).inputs : []) {
      const link = graph.links.find((l) => l.to === node.id && l.input === input.name);
      if (link && active.has(link.from)) inputs[input.name] = [String(link.from), link.fromSlot];
      else if (input.widget) inputs[input.name] = node.widgets[input.name] ?? defaultValue(input);
    }
    prompt[String(node.id)] = {
      class_type: node.type,
      inputs,
      _meta: { title: node.title ?? info?.display_name ?? node.type },
    };
  }
  return prompt;
}

/** An API-format prompt as a graph, laid out in columns by depth (a prompt has no positions). */
export function apiToGraph(prompt: ApiPrompt, infos: ObjectInfo): { graph: Graph; warnings: string[] } {
  const warnings: string[] = [];
  const ids = Object.keys(prompt);
  const numeric = new Map<string, number>();
  let next = Math.max(0, ...ids.map(Number).filter(Number.isInteger)) + 1;
  for (const id of ids) numeric.set(id, Number.isInteger(Number(id)) && Number(id) > 0 ? Number(id) : next++);
  const isLink = (v: unknown): v is [string, number] =>
    Array.isArray(v) &&
    v.length === 2 &&
    (typeof v[0] === 'string' || typeof v[0] === 'number') &&
    Number.isInteger(v[1]);
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen: Set<string>): number => {
    if (depth.has(id)) return depth.get(id)!;
    if (seen.has(id)) return 0;
    seen.add(id);
    let d = 0;
    for (const v of Object.values(prompt[id]?.inputs ?? {})) {
      if (isLink(v) && prompt[String(v[0])]) d = Math.max(d, depthOf(String(v[0]), seen) + 1);
    }
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const nodes: GraphNode[] = [];
  const links: GraphLink[] = [];
  for (const id of ids) {
    const entry = prompt[id]!;
    const d = depthOf(id, new Set());
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    const info = infos[entry.class_type];
    if (!info) warnings.push(`node ${id}: this server has no node type ${entry.class_type}`);
    const node = newNode(numeric.get(id)!, entry.class_type, info, [40 + d * 380, 40 + row * 260]);
    const title = entry._meta?.title;
    if (title && title !== info?.display_name && title !== entry.class_type) node.title = title;
    for (const [name, value] of Object.entries(entry.inputs ?? {})) {
      if (isLink(value)) {
        const from = numeric.get(String(value[0]));
        if (from === undefined) {
          warnings.push(`node ${id}: input ${name} links to a missing node ${value[0]}`);
          continue;
        }
        const source = infos[prompt[String(value[0])]!.class_type];
        links.push({
          id: links.length + 1,
          from,
          fromSlot: value[1],
          to: node.id,
          input: name,
          type: source?.output[value[1]] ?? '*',
        });
      } else {
        node.widgets[name] = value;
      }
    }
    for (const name of Object.keys(node.control)) node.control[name] = 'fixed';
    nodes.push(node);
  }
  return { graph: { nodes, links, groups: [] }, warnings };
}

/** Whether an output of `from` type may feed an input of `to` type (`*` takes anything; a combo takes STRING). */
export function typesMatch(from: string, to: string): boolean {
  if (from === '*' || to === '*') return true;
  if (to === 'COMBO') return from === 'STRING' || from === 'COMBO';
  return from.split(',').some((t) => to.split(',').includes(t));
}

/**
 * ComfyUI's control_after_generate, applied once a prompt is queued: a seed goes up, down, or to a
 * random value for the next run (fixed keeps it). `random` returns [0, 1).
 */
export function afterQueue(graph: Graph, infos: ObjectInfo, random: () => number = Math.random): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((node) => {
      const info = infos[node.type];
      if (!info || Object.keys(node.control).length === 0) return node;
      const widgets = { ...node.widgets };
      for (const input of shapeOf(info).inputs) {
        const mode = node.control[input.name];
        if (!input.control || !mode || mode === 'fixed') continue;
        const min = typeof input.options['min'] === 'number' ? input.options['min'] : 0;
        const max = Math.min(
          typeof input.options['max'] === 'number' ? input.options['max'] : Number.MAX_SAFE_INTEGER,
          Number.MAX_SAFE_INTEGER,
        );
        const value = Number(widgets[input.name] ?? min);
        const nextValue =
          mode === 'increment'
            ? value + 1
            : mode === 'decrement'
              ? value - 1
              : Math.floor(min + random() * (Math.min(max, 2 ** 50) - min));
        widgets[input.name] = Math.min(max, Math.max(min, nextValue));
      }
      return { ...node, widgets };
    }),
  };
}
