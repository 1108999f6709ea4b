import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { describeError, HearthError } from '../errors.js';
import type { ImageRuntime } from '../images/runtime.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import type { CachedOutput, OutputCache } from './cache.js';
import type { ExecutionPlan, PlannedNode } from './graph.js';
import { isLink, type NodeUi } from './types.js';

/** What a run reports as it goes; the service turns these into ComfyUI's WebSocket frames and history. */
export interface ExecutionEvents {
  start(): void;
  cached(nodeIds: string[]): void;
  executing(nodeId: string | null): void;
  progress(nodeId: string, value: number, max: number): void;
  executed(nodeId: string, ui: NodeUi): void;
}

export interface ExecuteOptions {
  promptId: string;
  prompt: Record<string, unknown>;
  extraData: Record<string, unknown>;
  plan: ExecutionPlan;
  cache: OutputCache;
  /** aborted by an interrupt: the run stops at the next node boundary or progress point */
  signal: AbortSignal;
  events: ExecutionEvents;
  files: FileStore;
  engine: Engine;
  inference: InferencePlanner;
  images: ImageRuntime;
  tempDir: string;
  log: Logger;
}

export interface ExecutionResult {
  /** what output nodes showed, by node id (history `outputs`) */
  outputs: Record<string, NodeUi>;
  /** node ids that ran, in order */
  ran: string[];
  /** node ids served from the cache */
  cached: string[];
}

/** The run stopped because someone interrupted it (ComfyUI's `execution_interrupted` names the node). */
export class ExecutionInterrupted extends HearthError<'WORKFLOW_INTERRUPTED'> {
  override readonly name = 'ExecutionInterrupted';
  constructor(readonly nodeId: string | null) {
    super('WORKFLOW_INTERRUPTED', [nodeId ?? '(none)'], { details: { node_id: nodeId } });
  }
}

/**
 * A node threw: ComfyUI's `execution_error` fields. The message is the node's own
 * (ComfyUI's `exception_message`); `exceptionType` is the thrown error's code or class.
 */
export class NodeExecutionError extends HearthError<'WORKFLOW_NODE_FAILED'> {
  override readonly name = 'NodeExecutionError';
  constructor(
    readonly nodeId: string,
    readonly nodeType: string,
    readonly exceptionType: string,
    message: string,
    readonly traceback: string[],
  ) {
    super('WORKFLOW_NODE_FAILED', message, {
      details: { node_id: nodeId, node_type: nodeType, exception_type: exceptionType },
    });
  }
}

/** Runs a planned prompt: each node after its inputs, cached ones served from the cache. */
export async function executePlan(opts: ExecuteOptions): Promise<ExecutionResult> {
  const { plan, cache, signal, events } = opts;
  const results = new Map<string, CachedOutput>();
  const outputs: Record<string, NodeUi> = {};
  const ran: string[] = [];
  const cached = plan.order.filter((n) => cache.has(n.signature)).map((n) => n.id);
  events.start();
  events.cached(cached);
  const cachedSet = new Set(cached);
  for (const node of plan.order) {
    if (signal.aborted) throw new ExecutionInterrupted(node.id);
    let result = cachedSet.has(node.id) ? await cache.get(node.signature) : undefined;
    if (result) {
      if (result.ui) {
        outputs[node.id] = result.ui;
        events.executed(node.id, result.ui);
      }
    } else {
      events.executing(node.id);
      result = await runNode(node, results, opts);
      ran.push(node.id);
      await cache.set(node.signature, result);
      if (result.ui) {
        outputs[node.id] = result.ui;
        events.executed(node.id, result.ui);
      }
    }
    results.set(node.id, result);
  }
  return { outputs, ran, cached };
}

async function runNode(
  node: PlannedNode,
  results: Map<string, CachedOutput>,
  opts: ExecuteOptions,
): Promise<CachedOutput> {
  const { def } = node;
  const specs = { ...def.inputs.required, ...(def.inputs.optional ?? {}) };
  const fixed: Record<string, unknown> = {};
  const mapped: Record<string, unknown[]> = {};
  for (const [name, value] of Object.entries(node.inputs)) {
    if (!isLink(value)) {
      fixed[name] = value;
      continue;
    }
    const src = results.get(value[0])!;
    const v = src.outputs[value[1]];
    const isList = src.listOutputs[value[1]] === true;
    if (specs[name]?.acceptsList) fixed[name] = isList ? v : [v];
    else if (isList) mapped[name] = v as unknown[];
    else fixed[name] = v;
  }
  const mappedNames = Object.keys(mapped);
  // A list arriving at an input that takes one value runs the node once per item (shorter lists repeat their last).
  const runs = mappedNames.length === 0 ? 1 : Math.max(...mappedNames.map((n) => mapped[n]!.length));
  const anyEmpty = mappedNames.some((n) => mapped[n]!.length === 0);
  const perRun: Array<{ outputs: readonly unknown[]; ui?: NodeUi }> = [];
  const controller = { signal: opts.signal };
  for (let i = 0; i < (anyEmpty ? 0 : runs); i++) {
    if (opts.signal.aborted) throw new ExecutionInterrupted(node.id);
    const inputs = { ...fixed };
    for (const n of mappedNames) inputs[n] = mapped[n]![Math.min(i, mapped[n]!.length - 1)];
    try {
      perRun.push(
        await def.run(inputs, {
          promptId: opts.promptId,
          nodeId: node.id,
          prompt: opts.prompt,
          extraData: opts.extraData,
          signal: controller.signal,
          log: opts.log.child({ node: node.id, class_type: def.name }),
          files: opts.files,
          engine: opts.engine,
          inference: opts.inference,
          images: opts.images,
          tempDir: opts.tempDir,
          progress: (value, max) => {
            if (opts.signal.aborted) throw new ExecutionInterrupted(node.id);
            opts.events.progress(node.id, value, max);
          },
        }),
      );
    } catch (err) {
      if (err instanceof ExecutionInterrupted || opts.signal.aborted) throw new ExecutionInterrupted(node.id);
      throw new NodeExecutionError(
        node.id,
        def.name,
        err instanceof HearthError ? err.code : err instanceof Error ? err.name : 'Error',
        describeError(err),
        err instanceof Error && err.stack ? err.stack.split('\n').slice(1, 8) : [],
      );
    }
  }
  if (mappedNames.length === 0) {
    const only = perRun[0]!;
    return {
      outputs: only.outputs,
      listOutputs: def.outputs.map((o) => o.isList === true),
      ...(only.ui ? { ui: only.ui } : {}),
    };
  }
  // Mapped: every output becomes a list of the per-item results (declared lists are joined).
  const outputs = def.outputs.map((o, k) =>
    o.isList ? perRun.flatMap((r) => r.outputs[k] as unknown[]) : perRun.map((r) => r.outputs[k]),
  );
  let ui: NodeUi | undefined;
  for (const r of perRun) {
    if (!r.ui) continue;
    ui ??= {};
    for (const [k, v] of Object.entries(r.ui)) ui[k] = [...(ui[k] ?? []), ...v];
  }
  return { outputs, listOutputs: def.outputs.map(() => true), ...(ui ? { ui } : {}) };
}
