// The workflow editor's calls to /api/ui/workflows (docs/ui.md), with the session.
import { ApiError, request } from '../api';
import type { ApiPrompt, ObjectInfo, UiWorkflow } from './format';

/** What an output node showed: ComfyUI's `executed.output` (`images`, `text`, `files`, ...). */
export type NodeOutput = Record<string, unknown[]>;
export interface FileRef {
  filename: string;
  subfolder: string;
  type: string;
}
export interface NodeError {
  type: string;
  message: string;
  details?: string;
  extra_info?: { input_name?: string };
}
export type NodeErrors = Record<string, { errors: NodeError[]; class_type?: string }>;

export interface HistoryEntry {
  prompt: [number, string, ApiPrompt, { extra_pnginfo?: { workflow?: unknown } }, string[]];
  outputs: Record<string, NodeOutput>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
}
export type QueueItem = HistoryEntry['prompt'];

export interface GalleryItem extends FileRef {
  kind: 'image' | 'text' | 'json';
  promptId: string;
  node: string;
  classType: string | null;
  createdAt: string | null;
  prompt: ApiPrompt;
  workflow: unknown;
}

/** The prompt was refused: hearth's message and ComfyUI's node_errors. */
export class PromptRefused extends Error {
  constructor(
    message: string,
    readonly nodeErrors: NodeErrors,
  ) {
    super(message);
  }
}

const W = '/api/ui/workflows';
const enc = encodeURIComponent;

export function fileUrl(f: FileRef, download = false): string {
  return `${W}/view?filename=${enc(f.filename)}&subfolder=${enc(f.subfolder)}&type=${enc(f.type)}${download ? '&download=1' : ''}`;
}

export const workflows = {
  objectInfo: () => request<ObjectInfo>('GET', `${W}/object_info`),
  async queuePrompt(prompt: ApiPrompt, workflow: UiWorkflow, client: string) {
    try {
      return await request<{ prompt_id: string; number: number }>('POST', `${W}/prompt`, { prompt, workflow, client });
    } catch (err) {
      const body = err instanceof ApiError ? (err.body as { node_errors?: NodeErrors } | undefined) : undefined;
      if (body?.node_errors && !Array.isArray(body.node_errors))
        throw new PromptRefused((err as Error).message, body.node_errors);
      throw err;
    }
  },
  queue: () => request<{ queue_running: QueueItem[]; queue_pending: QueueItem[] }>('GET', `${W}/queue`),
  interrupt: (promptId?: string) =>
    request<{ interrupted: number }>('POST', `${W}/interrupt`, promptId ? { prompt_id: promptId } : {}),
  clearQueue: () => request<{ removed: number }>('POST', `${W}/queue/clear`, {}),
  history: (id: string) =>
    request<Record<string, HistoryEntry | { pending: boolean; running: boolean }>>('GET', `${W}/history/${enc(id)}`),
  saved: () =>
    request<{ workflows: Array<{ name: string; updatedAt: string }> }>('GET', `${W}/saved`).then((r) => r.workflows),
  open: (name: string) => request<{ name: string; workflow: unknown }>('GET', `${W}/saved/${enc(name)}`),
  save: (name: string, workflow: UiWorkflow) => request('PUT', `${W}/saved/${enc(name)}`, { workflow }),
  rename: (name: string, to: string) => request('POST', `${W}/saved/${enc(name)}/rename`, { name: to }),
  remove: (name: string) => request('DELETE', `${W}/saved/${enc(name)}`),
  gallery: (offset = 0) =>
    request<{ items: GalleryItem[]; more: boolean }>('GET', `${W}/gallery?limit=60&offset=${offset}`),
  deleteOutput: (f: FileRef) =>
    request('DELETE', `${W}/gallery?filename=${enc(f.filename)}&subfolder=${enc(f.subfolder)}&type=output`),
  events: (client: string) => new EventSource(`${W}/events?client=${enc(client)}`),
};
