// Workflows: node graphs with a ComfyUI-compatible API; queue and history on Atlas (docs/workflows.md).
export { type CachedOutput, OutputCache } from './cache.js';
export { ExecutionInterrupted, executePlan, NodeExecutionError } from './executor.js';
export { type ExecutionPlan, type PromptRejection, planPrompt } from './graph.js';
export { builtinNodes, NODE_FAMILIES, OUTPUT_FOLDER, readPngText } from './nodes/index.js';
export { NodeRegistry, type ObjectInfo } from './registry.js';
export {
  type FrameListener,
  type HistoryEntry,
  PromptRejected,
  type PromptSubmission,
  type QueueItem,
  type WorkflowFrame,
  WorkflowService,
  type WorkflowServiceOptions,
  type WorkflowSettings,
} from './service.js';
export type { ImageValue, NodeDefinition, NodeRunContext, Prompt, ValueType } from './types.js';
