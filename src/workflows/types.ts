import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import type { ImageRuntime } from '../images/runtime.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';

/** The value types a socket can carry (ComfyUI's type names). */
export const VALUE_TYPES = [
  'STRING',
  'INT',
  'FLOAT',
  'BOOLEAN',
  'JSON',
  'IMAGE',
  'EMBEDDING',
  // Stable Diffusion (nodes/diffusion.ts): ComfyUI's own type names
  'MODEL',
  'CLIP',
  'VAE',
  'CONDITIONING',
  'LATENT',
  'MASK',
] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

/** An image travelling between nodes: encoded bytes plus what a node needs to know without decoding them. */
export interface ImageValue {
  readonly kind: 'image';
  readonly format: 'png' | 'jpeg' | 'webp';
  readonly width: number;
  readonly height: number;
  readonly bytes: Buffer;
}

/** One input socket of a node type. */
export interface InputSpec {
  /** the value type, or a list of choices (ComfyUI's combo: the value must be one of them) */
  readonly type: ValueType | readonly string[];
  /** used when the prompt leaves an optional input out */
  readonly default?: unknown;
  /** smallest allowed number (INT, FLOAT) */
  readonly min?: number;
  /** largest allowed number (INT, FLOAT) */
  readonly max?: number;
  /** the editor's increment (INT, FLOAT) */
  readonly step?: number;
  /** the editor shows a multi-line box (STRING) */
  readonly multiline?: boolean;
  /** one line for people, shown in the editor and /object_info */
  readonly tooltip?: string;
  /**
   * The node takes the whole list when this input is linked to a list output (e.g. a grid of images).
   * Without it, a list arriving here runs the node once per item, as in ComfyUI.
   */
  readonly acceptsList?: boolean;
  /**
   * The combo's choices are filled in when prompts are validated and /object_info is read:
   * `checkpoints` (image models in the library) or `inputs` (uploaded images).
   */
  readonly choicesFrom?: ChoiceSource;
  /** further ComfyUI socket options shown as they are in /object_info (e.g. image_upload, round) */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export type ChoiceSource = 'checkpoints' | 'inputs';

/** One output socket. */
export interface OutputSpec {
  readonly type: ValueType;
  readonly name: string;
  /** the node emits several items here; each downstream node runs once per item unless it accepts lists */
  readonly isList?: boolean;
}

/** What an output node shows: ComfyUI's `executed.output` / history `outputs[node]` (`images`, `text`, ...). */
export type NodeUi = Record<string, unknown[]>;

export interface NodeResult {
  /** one value per declared output, in order */
  readonly outputs: readonly unknown[];
  /** for output nodes: what history and the `executed` frame report */
  readonly ui?: NodeUi;
}

/** What the executor gives every node run: services, progress and interruption. */
export interface NodeRunContext {
  readonly promptId: string;
  readonly nodeId: string;
  /** the prompt as submitted, and its extra_data (SaveImage embeds both in PNG metadata, as ComfyUI does) */
  readonly prompt: Readonly<Record<string, unknown>>;
  readonly extraData: Readonly<Record<string, unknown>>;
  /** aborted on interrupt: pass to long calls (engine.generate) so they stop at once */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly files: FileStore;
  readonly engine: Engine;
  readonly inference: InferencePlanner;
  /** image models (ONNX Runtime sessions) */
  readonly images: ImageRuntime;
  /** the node's disposable temp area (PreviewImage writes here); a folder path */
  readonly tempDir: string;
  /** reports progress (a `progress` frame) and is an interruption point: throws when the prompt was interrupted */
  progress(value: number, max: number): void;
}

/**
 * A node type. Adding one means adding one declaration to a family file in nodes/
 * and listing it in that family's export; nothing else changes.
 */
export interface NodeDefinition {
  /** the class_type prompts use; unique */
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  /** editor menu path, e.g. `text` or `image/transform` */
  readonly category: string;
  /** output nodes are where execution starts from: only they and their ancestors run */
  readonly outputNode?: boolean;
  readonly inputs: {
    readonly required: Readonly<Record<string, InputSpec>>;
    readonly optional?: Readonly<Record<string, InputSpec>>;
  };
  readonly outputs: readonly OutputSpec[];
  /** inputs arrive validated and defaulted; a list input (acceptsList) arrives as an array */
  run(inputs: Record<string, unknown>, ctx: NodeRunContext): Promise<NodeResult>;
}

/** A prompt in ComfyUI's API format: `{id: {class_type, inputs: {name: value | [src_id, output_index]}}}`. */
export type Prompt = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: unknown }>;

/** A link in a prompt: `["<src_id>", output_index]`. */
export type Link = readonly [string, number];

export function isLink(value: unknown): value is Link {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isInteger(value[1]);
}

export function isImage(value: unknown): value is ImageValue {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as ImageValue).kind === 'image' &&
    Buffer.isBuffer((value as ImageValue).bytes)
  );
}
