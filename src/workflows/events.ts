import type { Logger } from '../log.js';

/** A ComfyUI WebSocket frame. */
export interface WorkflowFrame {
  type: string;
  data: Record<string, unknown>;
}

/** Receives frames: `clientId` null = for every client (status), else for the client that submitted the prompt. */
export type FrameListener = (frame: WorkflowFrame, clientId: string | null) => void;

/**
 * The frame bus between the prompt runner and the WebSocket clients of this node. Frames of a prompt
 * come from the node that runs it; `status` (queue_remaining) goes to every client.
 */
export class WorkflowEvents {
  private readonly listeners = new Set<FrameListener>();
  private readonly log: Logger;
  private readonly remaining: () => Promise<number>;

  constructor(log: Logger, remaining: () => Promise<number>) {
    this.log = log;
    this.remaining = remaining;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: FrameListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(frame: WorkflowFrame, clientId: string | null): void {
    for (const l of this.listeners) {
      try {
        l(frame, clientId);
      } catch (err) {
        this.log.warn({ err }, 'workflow frame listener failed');
      }
    }
  }

  /** Sends every client the queue's length (ComfyUI's `status` frame). */
  async broadcastStatus(): Promise<void> {
    if (this.listeners.size === 0) return;
    const remaining = await this.remaining().catch(() => 0);
    this.emit({ type: 'status', data: { status: { exec_info: { queue_remaining: remaining } } } }, null);
  }

  clear(): void {
    this.listeners.clear();
  }
}
