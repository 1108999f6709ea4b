/**
 * Conversation titles. A new chat is named after its first message at once;
 * then, in the background, the model is asked for a short title from the first
 * exchange. A title a person typed is never overwritten.
 */
import type { Engine } from '../engine/index.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { type ConversationStore, cleanTitle } from './conversations.js';

/** Options for {@link TitleWriter}. */
export interface TitleWriterOptions {
  conversations: ConversationStore;
  inference: InferencePlanner;
  engine: Engine;
  log: Logger;
  /** Ask the model (ui.generateTitles); when false, the first message stays the title. */
  generate: boolean;
}

const TITLE_PROMPT =
  'Write a title of at most six words for the conversation below. Answer with the title only: no quotes, no punctuation at the end.';

export class TitleWriter {
  private readonly opts: TitleWriterOptions;
  private readonly running = new Set<Promise<void>>();
  private readonly closing = new AbortController();

  constructor(opts: TitleWriterOptions) {
    this.opts = opts;
  }

  /** The immediate title: the first words of the first message. */
  async fromFirstMessage(conversationId: string, text: string): Promise<void> {
    const title = cleanTitle(text, 60);
    if (title) await this.opts.conversations.setGeneratedTitle(conversationId, title, 'default');
  }

  /** Starts naming a conversation in the background; failures are logged, never shown. */
  generateLater(conversationId: string, model: string, question: string, answer: string): void {
    if (!this.opts.generate || this.closing.signal.aborted) return;
    const run = this.generate(conversationId, model, question, answer)
      .catch((err: unknown) => this.opts.log.debug({ err, conversationId }, 'chat: no generated title'))
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /** Titles being generated right now (tests wait on them). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.settled();
  }

  private async generate(conversationId: string, model: string, question: string, answer: string): Promise<void> {
    const { inference, engine, conversations } = this.opts;
    const prepared = await inference.prepare(model, { temperature: 0.2, num_predict: 24 }, undefined);
    const result = await engine.generate(
      await inference.chat(prepared, {
        signal: this.closing.signal,
        messages: [
          { role: 'system', content: TITLE_PROMPT },
          { role: 'user', content: `User: ${question.slice(0, 2000)}\n\nAssistant: ${answer.slice(0, 2000)}` },
        ],
      }),
    );
    const title = titleFromReply(result.text);
    if (title) await conversations.setGeneratedTitle(conversationId, title, 'generated');
  }
}

/** The first line of a model's answer, without quotes, markdown or a `Title:` prefix; null if nothing usable is left. */
export function titleFromReply(text: string): string | null {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  if (!line) return null;
  const title = cleanTitle(
    line
      .replace(/^(?:#+\s*|title\s*:\s*)/i, '')
      .replace(/[*_`"“”'‘’]/g, '')
      .replace(/[.!?:;,]+$/, ''),
    60,
  );
  return /\p{L}/u.test(title) && title.length >= 2 ? title : null;
}
