import { HearthError } from '../errors.js';
import type { ChoiceSource, InputSpec, NodeDefinition } from './types.js';

/** ComfyUI's `/object_info` entry for one node type. */
export interface ObjectInfo {
  input: {
    required: Record<string, [unknown, Record<string, unknown>]>;
    optional: Record<string, [unknown, Record<string, unknown>]>;
  };
  input_order: { required: string[]; optional: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  display_name: string;
  description: string;
  python_module: string;
  category: string;
  output_node: boolean;
}

/** The node types a workflow may use, by class_type. */
export class NodeRegistry {
  private readonly types = new Map<string, NodeDefinition>();
  private readonly choices = new Map<ChoiceSource, string[]>();

  constructor(families: ReadonlyArray<readonly NodeDefinition[]>) {
    for (const family of families) {
      for (const def of family) {
        // Two declarations under one name is a programming error: fail when the registry is built.
        if (this.types.has(def.name)) throw new Error(`workflow node type ${def.name} is declared twice`);
        this.types.set(def.name, def);
      }
    }
  }

  get(name: string): NodeDefinition | undefined {
    const def = this.types.get(name);
    return def ? this.withChoices(def) : undefined;
  }

  /** Sets the current choices of combos declared with `choicesFrom` (checkpoints, uploaded images). */
  setChoices(source: ChoiceSource, choices: string[]): void {
    this.choices.set(source, choices);
  }

  private withChoices(def: NodeDefinition): NodeDefinition {
    const fill = (specs: Readonly<Record<string, InputSpec>> | undefined) =>
      specs &&
      Object.fromEntries(
        Object.entries(specs).map(([k, v]) => [
          k,
          v.choicesFrom ? { ...v, type: this.choices.get(v.choicesFrom) ?? [] } : v,
        ]),
      );
    const all = [...Object.values(def.inputs.required), ...Object.values(def.inputs.optional ?? {})];
    if (!all.some((s) => s.choicesFrom)) return def;
    const optional = fill(def.inputs.optional);
    return { ...def, inputs: { required: fill(def.inputs.required)!, ...(optional ? { optional } : {}) } };
  }

  names(): string[] {
    return [...this.types.keys()].sort();
  }

  /** `/object_info`, generated from the declarations. */
  objectInfo(): Record<string, ObjectInfo> {
    const out: Record<string, ObjectInfo> = {};
    for (const name of this.names()) out[name] = describe(this.get(name)!);
    return out;
  }

  objectInfoOf(name: string): Record<string, ObjectInfo> {
    const def = this.get(name);
    if (!def) throw new HearthError('WORKFLOW_NODE_UNKNOWN', [name]);
    return { [name]: describe(def) };
  }
}

function describe(def: NodeDefinition): ObjectInfo {
  const required = Object.fromEntries(Object.entries(def.inputs.required).map(([k, v]) => [k, socket(v)]));
  const optional = Object.fromEntries(Object.entries(def.inputs.optional ?? {}).map(([k, v]) => [k, socket(v)]));
  return {
    input: { required, optional },
    input_order: { required: Object.keys(required), optional: Object.keys(optional) },
    output: def.outputs.map((o) => o.type),
    output_is_list: def.outputs.map((o) => o.isList === true),
    output_name: def.outputs.map((o) => o.name),
    name: def.name,
    display_name: def.displayName,
    description: def.description,
    python_module: 'hearth',
    category: def.category,
    output_node: def.outputNode === true,
  };
}

function socket(spec: InputSpec): [unknown, Record<string, unknown>] {
  const options: Record<string, unknown> = {};
  for (const key of ['default', 'min', 'max', 'step', 'multiline', 'tooltip'] as const) {
    if (spec[key] !== undefined) options[key] = spec[key];
  }
  Object.assign(options, spec.extra);
  return [typeof spec.type === 'string' ? spec.type : [...spec.type], options];
}
