/**
 * Images an image model made from a chat ("Create image" in the composer): the prompt becomes the
 * user's message, and the picture the answer's attachment, stored on Atlas files as chat images are
 * (`chat/<user>/<sha256>.png`, src/chat/attachments.ts). The image is generated before anything is
 * written; then the file is stored (content-addressed: a retry writes the same name), then both
 * messages in one transaction, so a failure or a stop never leaves half an exchange on Atlas.
 *
 * A picture being drawn is this node's business only, kept in memory ({@link GeneratedImages.draw}):
 * the chat's page (after a reload too) sees it, follows its steps and can stop it, all through the
 * node drawing it. Nothing of it is on Atlas until it is stored whole, so a node that dies leaves no
 * pending state behind (see docs/ui.md, "Create image").
 */
import type { FileStore } from '../atlas/files/index.js';
import { HearthError, isHearthError } from '../errors.js';
import { storeImages } from './attachments.js';
import { type Conversation, type ConversationMessage, type ConversationStore, cleanTitle } from './conversations.js';
import type { TitleWriter } from './titles.js';
import type { User } from './users.js';

/** One generated image to keep in a conversation. */
export interface GeneratedImage {
  /** the message the prompt answers (null: the chat's first message) */
  parentId: string | null;
  prompt: string;
  /** the image model that made it (the answer's model) */
  model: string;
  png: Buffer;
  /** what the answer says about it: size, steps, seed */
  caption: string;
}

/** A picture being drawn: what the chat's page shows of it. */
export interface Drawing {
  prompt: string;
  model: string;
  /** the sampling step done (0: not started yet) and how many there are */
  step: number;
  total: number;
  startedAt: Date;
}

/** What a draw tells whoever watches it (the request that started it, pages following it). */
export type DrawEvent =
  | { type: 'progress'; step: number; total: number }
  | { type: 'message'; message: ConversationMessage }
  | { type: 'done'; message: ConversationMessage }
  | { type: 'stopped' };

/** One draw on this node. */
interface Running {
  userId: string;
  drawing: Drawing;
  controller: AbortController;
  watchers: Set<(event: DrawEvent) => void>;
  /** settles when the draw ends: stored (the messages), stopped (null), or failed (rejects) */
  ended: Promise<ConversationMessage[] | null>;
}

export class GeneratedImages {
  /** Pictures being drawn on this node, by conversation (one at a time in a chat). */
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly opts: { conversations: ConversationStore; titles: TitleWriter; files?: FileStore | undefined },
  ) {}

  /** Refuses before any work when this server keeps no chat files (every `hearth serve` does). */
  checkCanStore(): void {
    if (!this.opts.files) throw new HearthError('UNSUPPORTED', 'this server keeps no files for chat images');
  }

  /** Stores the image and the two messages; returns them, the user's first. */
  async save(user: User, conversation: Conversation, image: GeneratedImage): Promise<ConversationMessage[]> {
    this.checkCanStore();
    const files = this.opts.files as FileStore;
    const name = `${cleanTitle(image.prompt, 80) || 'image'}.png`;
    const attachments = await storeImages(files, user.id, [{ name, bytes: image.png, type: 'image/png' }]);
    const messages = await this.opts.conversations.addExchange(
      conversation.id,
      { parentId: image.parentId, role: 'user', content: image.prompt },
      { role: 'assistant', content: image.caption, attachments, model: image.model },
    );
    if (conversation.currentLeafId === null && conversation.titleSource === 'default')
      await this.opts.titles.fromFirstMessage(conversation.id, image.prompt);
    return messages;
  }

  /**
   * Draws a picture and stores it ({@link save}), telling `onEvent` (and every page following the
   * draw) each sampling step, then the two stored messages and `done`; or `stopped` when someone
   * stopped it ({@link stop}): then nothing is stored. `render` makes the PNG, stopping between
   * sampling steps once `signal` aborts (IMAGE_ABORTED). A chat draws one picture at a time
   * (IMAGE_DRAWING). Rejects when drawing or storing fails, having stored nothing.
   */
  async draw(
    user: User,
    conversation: Conversation,
    image: Omit<GeneratedImage, 'png' | 'caption'> & { steps: number },
    render: (
      signal: AbortSignal,
      onStep: (step: number, total: number) => void,
    ) => Promise<{ png: Buffer; caption: string }>,
    onEvent: (event: DrawEvent) => void,
  ): Promise<void> {
    this.checkCanStore();
    if (this.running.has(conversation.id)) {
      const prompt = this.running.get(conversation.id)!.drawing.prompt;
      throw new HearthError('IMAGE_DRAWING', [JSON.stringify(cleanTitle(prompt, 60))]);
    }
    const watchers = new Set<(event: DrawEvent) => void>([onEvent]);
    const tell = (event: DrawEvent) => {
      for (const watcher of watchers) watcher(event);
    };
    const controller = new AbortController();
    const drawing: Drawing = {
      prompt: image.prompt,
      model: image.model,
      step: 0,
      total: image.steps,
      startedAt: new Date(),
    };
    const work = (async (): Promise<ConversationMessage[] | null> => {
      try {
        const made = await render(controller.signal, (step, total) => {
          drawing.step = step;
          drawing.total = total;
          tell({ type: 'progress', step, total });
        });
        // Stopped after the last step: the picture is not kept either.
        if (controller.signal.aborted) throw new HearthError('IMAGE_ABORTED');
        return await this.save(user, conversation, { ...image, png: made.png, caption: made.caption });
      } catch (err) {
        if (!controller.signal.aborted || !isHearthError(err, 'IMAGE_ABORTED')) throw err;
        // Hearth shutting down is a failure the page reports; a person's stop is not.
        if (isHearthError(controller.signal.reason, 'SHUTTING_DOWN')) throw controller.signal.reason;
        return null;
      }
    })();
    const running: Running = { userId: user.id, drawing, controller, watchers, ended: work };
    this.running.set(conversation.id, running);
    try {
      const messages = await work;
      if (!messages) return tell({ type: 'stopped' });
      for (const message of messages) tell({ type: 'message', message });
      tell({ type: 'done', message: messages.at(-1)! });
    } finally {
      this.running.delete(conversation.id);
    }
  }

  /** The picture being drawn on this node in this chat of the user's, if any. */
  drawing(userId: string, conversationId: string): Drawing | null {
    const running = this.running.get(conversationId);
    return running && running.userId === userId ? { ...running.drawing } : null;
  }

  /**
   * Follows the picture being drawn in this chat: `onEvent` gets its current step, then each step,
   * then the stored messages and `done`, or `stopped`. Resolves when it ends or `signal` aborts (the
   * page left; the draw goes on); false when nothing is being drawn here. Rejects when the draw fails.
   */
  async follow(
    userId: string,
    conversationId: string,
    onEvent: (event: DrawEvent) => void,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const running = this.running.get(conversationId);
    if (!running || running.userId !== userId) return false;
    onEvent({ type: 'progress', step: running.drawing.step, total: running.drawing.total });
    running.watchers.add(onEvent);
    const gone = new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      // The draw's own events reach onEvent; its end settles here (a failure rejects).
      await Promise.race([running.ended, gone]);
      return true;
    } finally {
      running.watchers.delete(onEvent);
    }
  }

  /** Ends every draw on this node, storing nothing (hearth is shutting down: SHUTTING_DOWN to their pages). */
  async close(): Promise<void> {
    const running = [...this.running.values()];
    for (const r of running) r.controller.abort(new HearthError('SHUTTING_DOWN', 'hearth is shutting down'));
    await Promise.allSettled(running.map((r) => r.ended));
  }

  /**
   * Stops the picture being drawn in this chat (between two sampling steps) and waits for the draw
   * to end. True when it was stopped, storing nothing; false when nothing was being drawn here or
   * it was already being stored.
   */
  async stop(userId: string, conversationId: string): Promise<boolean> {
    const running = this.running.get(conversationId);
    if (!running || running.userId !== userId) return false;
    running.controller.abort();
    const messages = await running.ended.catch(() => undefined);
    return messages === null;
  }
}
