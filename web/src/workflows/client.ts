// The workflow editor's calls to /api/ui/workflows (docs/ui.md), with the session.
import type {
  ClearQueueAnswer,
  FileRef,
  GalleryAnswer,
  InterruptAnswer,
  NodeErrors,
  OkAnswer,
  PromptAnswer,
  PromptHistoryAnswer,
  PromptRefusedAnswer,
  QueueAnswer,
  RenamedAnswer,
  SavedPutAnswer,
  SavedWorkflowAnswer,
  SavedWorkflowsAnswer,
} from '@contract/ui';
import { ApiError, request } from '../api';
import type { ApiPrompt, ObjectInfo, UiWorkflow } from './format';

// The answers' types come from the server's contract (src/http/ui/contract.ts, docs/ui.md "One
// contract"), as types only.
export type { FileRef, GalleryItem, HistoryEntry, NodeError, NodeErrors, NodeOutput, QueueItem } from '@contract/ui';

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
      return await request<PromptAnswer>('POST', `${W}/prompt`, { prompt, workflow, client });
    } catch (err) {
      const body = err instanceof ApiError ? (err.body as Partial<PromptRefusedAnswer> | undefined) : undefined;
      if (body?.node_errors && !Array.isArray(body.node_errors))
        throw new PromptRefused((err as Error).message, body.node_errors);
      throw err;
    }
  },
  queue: () => request<QueueAnswer>('GET', `${W}/queue`),
  interrupt: (promptId?: string) =>
    request<InterruptAnswer>('POST', `${W}/interrupt`, promptId ? { prompt_id: promptId } : {}),
  clearQueue: () => request<ClearQueueAnswer>('POST', `${W}/queue/clear`, {}),
  history: (id: string) => request<PromptHistoryAnswer>('GET', `${W}/history/${enc(id)}`),
  saved: () => request<SavedWorkflowsAnswer>('GET', `${W}/saved`).then((r) => r.workflows),
  open: (name: string) => request<SavedWorkflowAnswer>('GET', `${W}/saved/${enc(name)}`),
  save: (name: string, workflow: UiWorkflow) => request<SavedPutAnswer>('PUT', `${W}/saved/${enc(name)}`, { workflow }),
  rename: (name: string, to: string) => request<RenamedAnswer>('POST', `${W}/saved/${enc(name)}/rename`, { name: to }),
  remove: (name: string) => request<OkAnswer>('DELETE', `${W}/saved/${enc(name)}`),
  gallery: (offset = 0) => request<GalleryAnswer>('GET', `${W}/gallery?limit=60&offset=${offset}`),
  deleteOutput: (f: FileRef) =>
    request<OkAnswer>('DELETE', `${W}/gallery?filename=${enc(f.filename)}&subfolder=${enc(f.subfolder)}&type=output`),
  events: (client: string) => new EventSource(`${W}/events?client=${enc(client)}`),
};
