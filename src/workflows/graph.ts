import { createHash } from 'node:crypto';
import type { NodeRegistry } from './registry.js';
import { type InputSpec, isLink, type Link, type NodeDefinition, type Prompt, type ValueType } from './types.js';

/** One error in ComfyUI's shape. */
export interface PromptError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

export interface NodeErrors {
  errors: PromptError[];
  /** the output nodes that cannot run because of this node */
  dependent_outputs: string[];
  class_type: string;
}

/** The body of a 400 from POST /prompt, as ComfyUI sends it. */
export interface PromptRejection {
  error: PromptError;
  node_errors: Record<string, NodeErrors> | [];
}

/** A node that will run (or be served from the cache), its inputs checked and defaulted. */
export interface PlannedNode {
  readonly id: string;
  readonly def: NodeDefinition;
  /** constants coerced to their type, links as `[src_id, index]` */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** class + constant inputs + the signatures of what it links to; never node ids, so equal work shares it */
  readonly signature: string;
}

/** What a valid prompt executes: output nodes and their ancestors, each after everything it reads. */
export interface ExecutionPlan {
  readonly order: readonly PlannedNode[];
  readonly outputs: readonly string[];
}

export type PlanResult = { ok: true; plan: ExecutionPlan } | { ok: false; rejection: PromptRejection };

/** ComfyUI core classes hearth knows of but does not run yet, and why. */
const NOT_YET: Record<string, string> = {
  LoraLoader: 'LoRA weights are not applied to ONNX models',
  LoraLoaderModelOnly: 'LoRA weights are not applied to ONNX models',
  ControlNetLoader: 'ControlNet is not supported',
  ControlNetApply: 'ControlNet is not supported',
  ControlNetApplyAdvanced: 'ControlNet is not supported',
  VAELoader: 'the VAE comes from the checkpoint',
  CLIPSetLastLayer: 'CLIP skip is not supported',
  UNETLoader: 'SD3 and Flux models are not supported',
  DualCLIPLoader: 'SD3 and Flux models are not supported',
  TripleCLIPLoader: 'SD3 and Flux models are not supported',
};

function problem(type: string, message: string, details = '', extra_info: Record<string, unknown> = {}): PromptError {
  return { type, message, details, extra_info };
}

function rejected(error: PromptError, node_errors: Record<string, NodeErrors> | [] = []): PlanResult {
  return { ok: false, rejection: { error, node_errors } };
}

/**
 * Validates a prompt against the node types and plans its execution. Like ComfyUI it checks only
 * output nodes and their ancestors; unlike ComfyUI it refuses the whole prompt if any of them is
 * invalid, so nothing runs half-way.
 */
export function planPrompt(prompt: unknown, registry: NodeRegistry): PlanResult {
  if (typeof prompt !== 'object' || prompt === null || Array.isArray(prompt) || Object.keys(prompt).length === 0) {
    return rejected(problem('no_prompt', 'No prompt provided', 'send {"prompt": {"<id>": {"class_type", "inputs"}}}'));
  }
  const nodes = prompt as Prompt;
  for (const [id, node] of Object.entries(nodes)) {
    const classType = (node as { class_type?: unknown } | null)?.class_type;
    if (typeof classType !== 'string') {
      return rejected(
        problem('invalid_prompt', `Cannot execute because node ${id} has no class_type property.`, '', { node_id: id }),
      );
    }
    if (!registry.get(classType)) {
      const why = NOT_YET[classType];
      const error = problem(
        'invalid_prompt',
        `Cannot execute because node ${classType} does not exist.`,
        why ? `Node ID '#${id}': hearth does not run ${classType} yet (${why})` : `Node ID '#${id}'`,
        { node_id: id, class_type: classType },
      );
      // ComfyUI leaves node_errors empty here; hearth names the node and its class so a client can show it.
      return rejected(error, { [id]: { errors: [error], dependent_outputs: [], class_type: classType } });
    }
    if (typeof node.inputs !== 'object' || node.inputs === null || Array.isArray(node.inputs)) {
      return rejected(problem('invalid_prompt', `Node ${id} has no inputs object.`, '', { node_id: id }));
    }
  }
  const outputs = Object.keys(nodes)
    .filter((id) => registry.get(nodes[id]!.class_type)!.outputNode)
    .sort(byNodeId);
  if (outputs.length === 0) {
    return rejected(
      problem('prompt_no_outputs', 'Prompt has no outputs', 'add an output node (SaveText, SaveImage, ...)'),
    );
  }

  const errors = new Map<string, PromptError[]>();
  const planned = new Map<string, PlannedNode>();
  const order: PlannedNode[] = [];
  const state = new Map<string, 'visiting' | 'done' | 'failed'>();
  const failedOutputs = new Map<string, string[]>(); // node id -> outputs that depend on it
  const addError = (id: string, e: PromptError) => errors.set(id, [...(errors.get(id) ?? []), e]);

  // Depth-first, post-order: a node is planned after all it links to. Returns false if it or an ancestor is invalid.
  const visit = (id: string, trail: string[]): boolean => {
    const seen = state.get(id);
    if (seen === 'done') return true;
    if (seen === 'failed') return false;
    if (seen === 'visiting') {
      addError(id, problem('dependency_cycle', 'Dependency cycle detected', `through ${[...trail, id].join(' -> ')}`));
      return false;
    }
    state.set(id, 'visiting');
    const node = nodes[id]!;
    const def = registry.get(node.class_type)!;
    const inputs: Record<string, unknown> = {};
    const sigParts: Array<[string, unknown]> = [];
    let ok = true;
    const specs: Array<[string, InputSpec, boolean]> = [
      ...Object.entries(def.inputs.required).map(([k, v]) => [k, v, true] as [string, InputSpec, boolean]),
      ...Object.entries(def.inputs.optional ?? {}).map(([k, v]) => [k, v, false] as [string, InputSpec, boolean]),
    ];
    for (const [name, spec, required] of specs) {
      const extra = { input_name: name, input_config: [spec.type, {}], received_value: node.inputs[name] };
      const value = node.inputs[name];
      if (value === undefined || value === null) {
        if (required && spec.default === undefined) {
          addError(id, problem('required_input_missing', 'Required input is missing', name, { input_name: name }));
          ok = false;
        } else if (spec.default !== undefined) {
          inputs[name] = spec.default;
          sigParts.push([name, spec.default]);
        }
        continue;
      }
      if (isLink(value)) {
        const [src, index] = value;
        const srcNode = nodes[src];
        const srcDef = srcNode ? registry.get(srcNode.class_type) : undefined;
        if (!srcNode || !srcDef) {
          addError(
            id,
            problem('bad_linked_input', 'Bad linked input, node does not exist', `${name}: node ${src}`, extra),
          );
          ok = false;
          continue;
        }
        const out = srcDef.outputs[index];
        if (!out) {
          addError(
            id,
            problem(
              'bad_linked_input',
              'Bad linked input, output index out of range',
              `${name}: ${src}[${index}]`,
              extra,
            ),
          );
          ok = false;
          continue;
        }
        if (!linkable(out.type, spec.type)) {
          addError(
            id,
            problem(
              'return_type_mismatch',
              'Return type mismatch between linked nodes',
              `${name}, received_type(${out.type}) mismatch input_type(${describeType(spec.type)})`,
              { ...extra, linked_node: [src, index] },
            ),
          );
          ok = false;
          continue;
        }
        if (!visit(src, [...trail, id])) {
          ok = false;
          continue;
        }
        inputs[name] = [src, index] satisfies Link;
        sigParts.push([name, ['link', planned.get(src)!.signature, index]]);
        continue;
      }
      const coerced = coerce(name, value, spec, extra);
      if ('error' in coerced) {
        addError(id, coerced.error);
        ok = false;
        continue;
      }
      inputs[name] = coerced.value;
      sigParts.push([name, coerced.value]);
    }
    if (!ok) {
      state.set(id, 'failed');
      return false;
    }
    const signature = createHash('sha256')
      .update(JSON.stringify([def.name, sigParts.sort(([a], [b]) => (a < b ? -1 : 1))]))
      .digest('hex');
    const entry: PlannedNode = { id, def, inputs, signature };
    planned.set(id, entry);
    order.push(entry);
    state.set(id, 'done');
    return true;
  };

  for (const out of outputs) {
    if (!visit(out, [])) {
      // Every node with errors that this output reaches makes the output fail.
      for (const id of reachable(out, nodes))
        if (errors.has(id)) failedOutputs.set(id, [...(failedOutputs.get(id) ?? []), out]);
    }
  }
  if (errors.size > 0) {
    const node_errors: Record<string, NodeErrors> = {};
    for (const [id, list] of errors) {
      node_errors[id] = {
        errors: list,
        dependent_outputs: failedOutputs.get(id) ?? [],
        class_type: nodes[id]!.class_type,
      };
    }
    return rejected(problem('prompt_outputs_failed_validation', 'Prompt outputs failed validation'), node_errors);
  }
  return { ok: true, plan: { order, outputs } };
}

function reachable(start: string, nodes: Prompt): Set<string> {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id) || !nodes[id]) continue;
    seen.add(id);
    for (const v of Object.values(nodes[id].inputs ?? {})) if (isLink(v)) stack.push(v[0]);
  }
  return seen;
}

function byNodeId(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a < b ? -1 : a > b ? 1 : 0;
}

function describeType(type: InputSpec['type']): string {
  return typeof type === 'string' ? type : 'COMBO';
}

/** Which output types an input accepts: exact matches, plus the widening a person would expect. */
function linkable(from: ValueType, to: InputSpec['type']): boolean {
  if (typeof to !== 'string') return from === 'STRING'; // a combo fed by text is checked when it runs
  if (from === to) return true;
  if (to === 'FLOAT') return from === 'INT';
  if (to === 'JSON') return from !== 'IMAGE';
  return false;
}

function coerce(
  name: string,
  value: unknown,
  spec: InputSpec,
  extra: Record<string, unknown>,
): { value: unknown } | { error: PromptError } {
  const invalid = (why: string) => ({
    error: problem(
      'invalid_input_type',
      `Failed to convert an input value to a ${describeType(spec.type)} value`,
      `${name}, ${why}`,
      extra,
    ),
  });
  if (typeof spec.type !== 'string') {
    if (typeof value !== 'string' || !spec.type.includes(value)) {
      return {
        error: problem(
          'value_not_in_list',
          'Value not in list',
          `${name}: '${String(value)}' not in ${JSON.stringify(spec.type)}`,
          extra,
        ),
      };
    }
    return { value };
  }
  switch (spec.type) {
    case 'INT':
    case 'FLOAT': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && value.trim() !== ''
            ? Number(value)
            : Number.NaN;
      if (!Number.isFinite(n)) return invalid(`${JSON.stringify(value)} is not a number`);
      const v = spec.type === 'INT' ? Math.trunc(n) : n;
      if (spec.min !== undefined && v < spec.min) {
        return {
          error: problem('value_smaller_than_min', `Value ${v} smaller than min of ${spec.min}`, `${name}`, extra),
        };
      }
      if (spec.max !== undefined && v > spec.max) {
        return {
          error: problem('value_bigger_than_max', `Value ${v} bigger than max of ${spec.max}`, `${name}`, extra),
        };
      }
      return { value: v };
    }
    case 'BOOLEAN':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return invalid(`${JSON.stringify(value)} is not true or false`);
    case 'STRING':
      if (typeof value === 'string') return { value };
      if (typeof value === 'number' || typeof value === 'boolean') return { value: String(value) };
      return invalid('expected text');
    case 'JSON':
      return { value };
    default:
      return invalid(`a ${spec.type} cannot be typed in: link it from a node that makes one`);
  }
}
