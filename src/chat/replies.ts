/**
 * Writing a reply: the user's message is committed before generation starts;
 * the assistant's is committed as a `streaming` row at once, its text written
 * every second while tokens arrive, and its end (done, stopped, error) when it
 * ends. A crashed node loses at most the last second of a reply in flight; a
 * stopped reply keeps its text. Generation goes through the one inference path
 * (`InferencePlanner.prepare` then `Engine.generate`).
 */
import type { Engine } from '../engine/index.js';
import type { ChatMessage as EngineMessage } from '../engine/types.js';
import { describeError, HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { parseOptions } from '../models/options.js';
import {
  type Attachment,
  type ChatMessage,
  type ChatSource,
  type Conversation,
  type ConversationStore,
  type MessageStats,
  type MessageStatus,
  storableText,
} from './conversations.js';
import type { TitleWriter } from './titles.js';
import type { User } from './users.js';

/** A file the browser read as text. */
export interface AttachmentInput {
  name: string;
  text: string;
}

/** One reply to write. */
export interface ReplyRequest {
  conversationId: string;
  /**
   * With `content`: the parent of the new user message (null: the first
   * message; a sibling of an existing message when editing). Without: the user
   * message to answer again (regenerate).
   */
  parentId: string | null;
  content?: string;
  attachments?: AttachmentInput[];
  /** The model to use (and remember for this chat); default: the chat's, then the user's default. */
  model?: string;
  /** Aborted when the browser goes away: the reply stops and keeps its text. */
  signal?: AbortSignal;
}

/** What the caller hears while a reply is written. */
export interface ReplyEvents {
  /** A message was committed: the user's, then the assistant's (status `streaming`). */
  message(message: ChatMessage): void;
  /** Generated text, as it arrives. */
  text(text: string): void;
  /** Something the person should know (an attachment was cut to fit). */
  notice(text: string): void;
}

/** Options for {@link ChatReplies}. */
export interface ChatRepliesOptions {
  conversations: ConversationStore;
  inference: InferencePlanner;
  engine: Engine;
  titles: TitleWriter;
  log: Logger;
  /** This node's id: streaming rows carry it, so a restarted node can mark its own as interrupted. */
  nodeId: string;
  /** How often a streaming reply's text is written to Atlas, ms (default 1000). */
  flushEveryMs?: number;
  /**
   * Knowledge for a question (the `#name` bases it mentions, src/knowledge): the system text with the
   * retrieved passages, and the passages, stored with the reply. Null: no base mentioned, or nothing found.
   */
  retrieve?: (user: User, question: string) => Promise<{ system: string; sources: ChatSource[] } | null>;
}

/** Extensions of files that are not text; later issues handle PDF and images. */
const NOT_TEXT =
  /\.(pdf|png|jpe?g|gif|webp|bmp|heic|heif|tiff?|svg|ico|zip|gz|tgz|7z|rar|docx?|xlsx?|pptx?|odt|mp3|wav|mp4|mov|gguf|bin)$/i;
/** Rough characters per token, on the safe side, to keep attachments inside the context. */
const CHARS_PER_TOKEN = 3;

interface Running {
  userId: string;
  controller: AbortController;
  done: Promise<ChatMessage>;
}

export class ChatReplies {
  readonly #opts: ChatRepliesOptions;
  readonly #running = new Map<string, Running>();

  constructor(opts: ChatRepliesOptions) {
    this.#opts = opts;
  }

  /** Replies being written on this node. */
  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Writes one reply. Errors before the assistant's row exists (unknown
   * conversation or model, bad attachment) are thrown; after, they end the
   * reply with status `error` and its text so far, and the final message is
   * returned.
   */
  async reply(user: User, req: ReplyRequest, events: ReplyEvents): Promise<ChatMessage> {
    const { conversations, inference, titles } = this.#opts;
    const conversation = await conversations.get(user.id, req.conversationId);
    const model = req.model || conversation.model || user.defaultModel;
    if (!model) {
      throw new HearthError(
        'BAD_REQUEST',
        'no model chosen for this chat: pick one in the model menu (or set a default)',
        {
          details: { param: 'model' },
        },
      );
    }
    const prepared = await inference.prepare(model, parseOptions(conversation.params, 'params'), undefined);
    const attachments = fitAttachments(req.attachments ?? [], prepared.load.numCtx, events);

    // Titles come from the first exchange only, not from later edits of it.
    const firstExchange = conversation.currentLeafId === null && conversation.titleSource === 'default';
    let userMessage: ChatMessage;
    if (req.content !== undefined) {
      if (req.content.trim() === '' && attachments.length === 0) {
        throw new HearthError('BAD_REQUEST', 'the message is empty', { details: { param: 'content' } });
      }
      userMessage = await conversations.addMessage(conversation.id, {
        parentId: req.parentId,
        role: 'user',
        content: req.content,
        attachments,
      });
      events.message(userMessage);
      if (firstExchange) {
        await titles.fromFirstMessage(conversation.id, req.content || attachments[0]?.name || '');
      }
    } else {
      if (req.parentId === null) {
        throw new HearthError('BAD_REQUEST', 'say which message to answer again (parentId)', {
          details: { param: 'parentId' },
        });
      }
      userMessage = await conversations.message(user.id, conversation.id, req.parentId);
      if (userMessage.role !== 'user') {
        throw new HearthError('BAD_REQUEST', 'only a user message can be answered again: regenerate from its reply', {
          details: { param: 'parentId' },
        });
      }
    }
    if (req.model && req.model !== conversation.model)
      await conversations.update(user.id, conversation.id, { model: req.model });

    const history = await conversations.path(conversation.id, userMessage.id);
    const knowledge = (await this.#opts.retrieve?.(user, userMessage.content)) ?? null;
    const assistant = await conversations.addMessage(conversation.id, {
      parentId: userMessage.id,
      role: 'assistant',
      content: '',
      model: prepared.entry.name,
      status: 'streaming',
      nodeId: this.#opts.nodeId,
    });
    events.message(assistant);

    const controller = new AbortController();
    const onGone = () => controller.abort(new Error('the browser went away'));
    req.signal?.addEventListener('abort', onGone, { once: true });
    if (req.signal?.aborted) onGone();
    const done = this.#generate(conversation, assistant, history, prepared, controller, events, knowledge).finally(
      () => {
        req.signal?.removeEventListener('abort', onGone);
        this.#running.delete(assistant.id);
      },
    );
    this.#running.set(assistant.id, { userId: user.id, controller, done });
    const final = await done;
    if (firstExchange && final.content.trim()) {
      titles.generateLater(conversation.id, prepared.entry.name, userMessage.content, final.content);
    }
    return final;
  }

  /**
   * Stops a reply: at once when this node writes it (resolving the final
   * message), otherwise by flagging the row for the node that does (null).
   */
  async stop(userId: string, conversationId: string, messageId: string): Promise<ChatMessage | null> {
    const running = this.#running.get(messageId);
    if (running && running.userId === userId) {
      running.controller.abort(new Error('stopped'));
      return running.done;
    }
    const flagged = await this.#opts.conversations.requestStop(userId, conversationId, messageId);
    if (!flagged) {
      // Not streaming (any more): answer with the message as it stands, or MESSAGE_NOT_FOUND.
      return this.#opts.conversations.message(userId, conversationId, messageId);
    }
    return null;
  }

  /** Stops every reply in flight; each keeps its text. */
  async close(): Promise<void> {
    const running = [...this.#running.values()];
    for (const r of running) r.controller.abort(new Error('hearth is shutting down'));
    await Promise.allSettled(running.map((r) => r.done));
  }

  async #generate(
    conversation: Conversation,
    assistant: ChatMessage,
    history: ChatMessage[],
    prepared: Awaited<ReturnType<InferencePlanner['prepare']>>,
    controller: AbortController,
    events: ReplyEvents,
    knowledge: { system: string; sources: ChatSource[] } | null,
  ): Promise<ChatMessage> {
    const { conversations, inference, engine, log } = this.#opts;
    const started = performance.now();
    let firstTokenAt: number | undefined;
    let text = '';
    let written = '';
    let writing: Promise<void> = Promise.resolve();
    const flush = () => {
      if (text === written) return;
      const content = text;
      writing = writing
        .then(async () => {
          const { stopRequested } = await conversations.writeReply(assistant.id, { content });
          written = content;
          if (stopRequested) controller.abort(new Error('stopped'));
        })
        .catch((err: unknown) =>
          log.warn({ err, message: assistant.id }, 'chat: could not write a streaming reply to Atlas'),
        );
    };
    const timer = setInterval(flush, this.#opts.flushEveryMs ?? 1000);
    let status: MessageStatus = 'done';
    let error: string | null = null;
    let stats: MessageStats = {};
    let messages = inference.withModelPrelude(
      prepared.entry,
      toEngineMessages(history),
      conversation.systemPrompt ?? undefined,
    );
    if (knowledge) {
      // The passages join the system text (the first system message, or a new one).
      const first = messages.findIndex((m) => m.role === 'system');
      messages =
        first >= 0
          ? messages.map((m, i) => (i === first ? { ...m, content: `${m.content}\n\n${knowledge.system}` } : m))
          : [{ role: 'system', content: knowledge.system }, ...messages];
    }
    try {
      const result = await engine.generate({
        kind: 'chat',
        model: prepared.spec,
        load: prepared.load,
        keepAliveMs: prepared.keepAliveMs,
        sampling: prepared.sampling,
        signal: controller.signal,
        messages,
        onText: (raw) => {
          firstTokenAt ??= performance.now();
          const chunk = storableText(raw);
          text += chunk;
          events.text(chunk);
        },
      });
      text = storableText(result.text) || text;
      stats = {
        promptTokens: result.promptTokens,
        evalTokens: result.evalTokens,
        tokensPerSecond:
          result.evalDurationNs > 0 ? round(result.evalTokens / (result.evalDurationNs / 1e9), 1) : undefined,
        doneReason: result.doneReason,
      };
    } catch (err) {
      if (controller.signal.aborted) {
        status = 'stopped';
      } else if (isHearthError(err, 'SHUTTING_DOWN')) {
        status = 'interrupted';
        error = 'hearth shut down while writing this reply; the text written until then is kept';
      } else {
        status = 'error';
        error = describeError(err);
        log.warn({ err, message: assistant.id }, 'chat: a reply failed');
      }
    } finally {
      clearInterval(timer);
    }
    await writing;
    stats.totalMs = Math.round(performance.now() - started);
    if (knowledge) stats.sources = knowledge.sources;
    if (firstTokenAt !== undefined) stats.timeToFirstTokenMs = Math.round(firstTokenAt - started);
    await conversations.writeReply(assistant.id, { content: text, status, stats, error });
    const stored = { ...assistant, content: text, status, stats, error, updatedAt: new Date() };
    return stored;
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The branch as the engine sees it: attachments go in front of the user's words. */
function toEngineMessages(history: ChatMessage[]): EngineMessage[] {
  const out: EngineMessage[] = [];
  for (const m of history) {
    if (m.role === 'assistant' && m.content === '' && m.status !== 'done') continue;
    out.push({ role: m.role, content: m.role === 'user' ? withAttachments(m.content, m.attachments) : m.content });
  }
  return out;
}

export function withAttachments(content: string, attachments: Attachment[]): string {
  if (attachments.length === 0) return content;
  const files = attachments.map((a) => `File "${a.name}":\n\`\`\`\n${a.text}\n\`\`\``).join('\n\n');
  return content.trim() ? `${files}\n\n${content}` : files;
}

/**
 * Checks attachments and cuts them to fit half of the model's context, with a
 * notice for each one cut. PDF, images and other binary files are refused
 * (later issues read them).
 */
export function fitAttachments(
  inputs: AttachmentInput[],
  numCtx: number,
  events: Pick<ReplyEvents, 'notice'>,
): Attachment[] {
  for (const input of inputs) {
    if (NOT_TEXT.test(input.name) || input.text.includes('\u0000')) {
      const kind = /\.pdf$/i.test(input.name)
        ? 'PDF files are'
        : /\.(png|jpe?g|gif|webp|bmp|heic|heif|tiff?|svg|ico)$/i.test(input.name)
          ? 'images are'
          : 'binary files are';
      throw new HearthError(
        'ATTACHMENT_UNSUPPORTED',
        `"${input.name}": ${kind} not supported yet; attach text, markdown or code files (or paste the text)`,
        { details: { param: 'attachments' } },
      );
    }
  }
  let budget = Math.floor((numCtx / 2) * CHARS_PER_TOKEN);
  return inputs.map((input) => {
    const size = Buffer.byteLength(input.text);
    if (input.text.length <= budget) {
      budget -= input.text.length;
      return { name: input.name, size, text: input.text, truncated: false };
    }
    const kept = Math.max(0, budget);
    budget = 0;
    events.notice(
      `"${input.name}" was cut to ${kept.toLocaleString('en')} of ${input.text.length.toLocaleString('en')} characters to fit the model's context (${numCtx} tokens)`,
    );
    return { name: input.name, size, text: input.text.slice(0, kept), truncated: true };
  });
}
