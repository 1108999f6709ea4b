import { JobQueue, type JobQueueOptions } from '../jobs/queue.js';

/** The pg-boss queues of workflow prompts (beside the batch jobs' in the same schema). */
export const PROMPT_QUEUE = 'hearth-workflows';
export const PROMPT_DEAD_QUEUE = 'hearth-workflows-dead';

/** A ticket: "run this prompt". The prompt's row (store.ts) is the record of what happened. */
export interface PromptTicket {
  promptId: string;
  /** the ticket's own id: a dead-lettered copy has another, and must still name the prompt's ticket */
  ticket: string;
  /** higher first: ComfyUI's `front` prompts (newest front first), then the rest in order */
  priority: number;
}

export type PromptQueue = JobQueue<PromptTicket>;

/**
 * Opens the prompt queue: the jobs' lease queue (src/jobs/queue.ts) on its own pg-boss queue, so a
 * prompt gets the same claim (SKIP LOCKED), lease renewed by heartbeats, expiry and retry on any node,
 * and dead-lettering after `maxAttempts` runs lost with their node. Retries come at once: a prompt is
 * retried only because its node was lost, never because it failed (a failure is its result).
 */
export function openPromptQueue(
  opts: Omit<JobQueueOptions<PromptTicket>, 'names' | 'retryDelayMs' | 'retryBackoff'>,
): Promise<PromptQueue> {
  return JobQueue.open<PromptTicket>({
    ...opts,
    names: { work: PROMPT_QUEUE, dead: PROMPT_DEAD_QUEUE, priority: (t) => t.priority },
    retryDelayMs: 0,
    retryBackoff: false,
  });
}
