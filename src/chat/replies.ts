/**
 * Writing a reply: the user's message is committed before generation starts;
 * the assistant's is committed as a `streaming` row at once, its text written
 * every 250 ms (and at the end of each sentence) while tokens arrive, and its
 * end (done, stopped, error) when it ends. A reply runs on the server whatever
 * the browser does; it ends only by itself, by an explicit stop, or with its
 * node. Anyone may follow it ({@link ChatReplies.follow}): from memory on the
 * node writing it, through Atlas on any other (woken by LISTEN/NOTIFY). Each write renews the reply's
 * lease; a reply past its lease (a crashed node) is marked interrupted by the
 * next node that looks at it. Generation goes through the one inference path
 * (`InferencePlanner.prepare` then `Engine.generate`).
 */
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import type { ChatMessage } from '../engine/types.js';
import { describeError, HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { parseOptions } from '../models/options.js';
import {
  type AttachmentInput,
  checkVision,
  imageBase64,
  readAttachments,
  storeImages,
  type TextAttachmentInput,
} from './attachments.js';
import {
  type Attachment,
  type ChatSource,
  type Conversation,
  type ConversationMessage,
  type ConversationStore,
  type MessageStats,
  type MessageStatus,
  storableText,
} from './conversations.js';
import type { TitleWriter } from './titles.js';
import type { User } from './users.js';

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
}

/** What the caller hears while a reply is written. */
export interface ReplyEvents {
  /** A message was committed: the user's, then the assistant's (status `streaming`). */
  message(message: ConversationMessage): void;
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
  /** How often a streaming reply's text is written to Atlas, ms (default 250; also at each sentence's end). */
  flushEveryMs?: number;
  /** A streaming reply's lease, ms (default 15 000): renewed by every write, at least every third of it. */
  leaseMs?: number;
  /**
   * A follower on another node reads a reply from Atlas when its writer announces a write
   * (LISTEN/NOTIFY, see ConversationStore.watchReplies), and also every `followPollMs` without one
   * (default 2000): a notification lost with a connection, or a writer that died, is noticed then.
   */
  followPollMs?: number;
  /**
   * Knowledge for a question (the `#name` bases it mentions, src/knowledge): the system text with the
   * retrieved passages, and the passages, stored with the reply. Null: no base mentioned, or nothing found.
   */
  retrieve?: (
    user: User,
    question: string,
    /** the bases the conversation has attached (from a preset), searched besides the message's tags */
    attached: readonly string[],
  ) => Promise<{ system: string; sources: ChatSource[] } | null>;
  /** Atlas files, where images given to messages are stored (without it, images are refused) */
  files?: FileStore;
}

/** What a follower of a reply hears: its text from the offset asked for, then the final message. */
export interface FollowEvents {
  text(text: string): void;
}

/** Rough characters per token, on the safe side, to keep attachments inside the context. */
const CHARS_PER_TOKEN = 3;

interface Running {
  userId: string;
  controller: AbortController;
  done: Promise<ConversationMessage>;
  /** the text so far, as followers get it */
  text: string;
  followers: Set<(text: string) => void>;
}

/** A chunk that ends a sentence (or a line): the text so far is written to Atlas at once. */
const SENTENCE_END = /[.!?。！？:;]["')\]]*\s*$|\n/;

/** Why followers through Atlas read the reply again, counted since start (tests and the node screen). */
export interface FollowWakes {
  /** a write of the reply was announced */
  notified: number;
  /** `followPollMs` passed without one */
  polled: number;
}

export class ChatReplies {
  private readonly opts: ChatRepliesOptions;
  private readonly running = new Map<string, Running>();
  private readonly wakes: FollowWakes = { notified: 0, polled: 0 };

  constructor(opts: ChatRepliesOptions) {
    this.opts = opts;
  }

  /** Replies being written on this node. */
  get inFlight(): number {
    return this.running.size;
  }

  /**
   * Writes one reply. Errors before the assistant's row exists (unknown
   * conversation or model, bad attachment) are thrown; after, they end the
   * reply with status `error` and its text so far, and the final message is
   * returned.
   */
  async reply(user: User, req: ReplyRequest, events: ReplyEvents): Promise<ConversationMessage> {
    const { conversations, inference, titles } = this.opts;
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
    // Everything is read and checked before anything is written.
    const read = await readAttachments(req.attachments ?? []);
    if (read.images.length > 0) {
      checkVision(prepared.entry.name, await inference.capabilities(prepared.entry), read.images);
      if (!this.opts.files) throw new HearthError('UNSUPPORTED', 'this server keeps no files for chat images');
    }
    const attachments = [
      ...fitAttachments(read.texts, prepared.load.numCtx, events),
      ...(this.opts.files ? await storeImages(this.opts.files, user.id, read.images) : []),
    ];

    // Titles come from the first exchange only, not from later edits of it.
    const firstExchange = conversation.currentLeafId === null && conversation.titleSource === 'default';
    let userMessage: ConversationMessage;
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
    const knowledge = (await this.opts.retrieve?.(user, userMessage.content, conversation.knowledge)) ?? null;
    const assistant = await conversations.addMessage(conversation.id, {
      parentId: userMessage.id,
      role: 'assistant',
      content: '',
      model: prepared.entry.name,
      status: 'streaming',
      nodeId: this.opts.nodeId,
      leaseMs: this.opts.leaseMs ?? 15_000,
    });
    events.message(assistant);
    const final = await this.run(user, conversation, assistant, history, prepared, events, knowledge);
    if (firstExchange && final.content.trim()) {
      titles.generateLater(conversation.id, prepared.entry.name, userMessage.content, final.content);
    }
    return final;
  }

  /**
   * Continues a reply that ended early (stopped, interrupted, failed, or cut at its length): the
   * model is shown the branch with the reply's saved text as the start of its answer, and what it
   * writes is appended to that text, in the same message. Events as for {@link reply}: the reopened
   * message, then the new text only.
   */
  async continueReply(
    user: User,
    conversationId: string,
    messageId: string,
    events: ReplyEvents,
  ): Promise<ConversationMessage> {
    const { conversations, inference } = this.opts;
    const conversation = await conversations.get(user.id, conversationId);
    const saved = await conversations.message(user.id, conversationId, messageId);
    if (saved.role !== 'assistant') {
      throw new HearthError('BAD_REQUEST', 'only a reply can be continued', { details: { param: 'messageId' } });
    }
    if (saved.status === 'streaming') {
      throw new HearthError('BAD_REQUEST', 'this reply is still being written: follow it, or stop it first', {
        details: { param: 'messageId' },
      });
    }
    if (saved.status === 'done' && saved.stats?.doneReason !== 'length') {
      throw new HearthError(
        'BAD_REQUEST',
        'this reply ended by itself: regenerate it, or ask a follow-up question, instead',
        { details: { param: 'messageId' } },
      );
    }
    const model = saved.model || conversation.model || user.defaultModel;
    if (!model) {
      throw new HearthError('BAD_REQUEST', 'no model chosen for this chat: pick one in the model menu', {
        details: { param: 'model' },
      });
    }
    const prepared = await inference.prepare(model, parseOptions(conversation.params, 'params'), undefined);
    const history = await conversations.path(conversation.id, saved.id);
    const reopened = await conversations.reopenReply(saved.id, this.opts.nodeId, this.opts.leaseMs ?? 15_000);
    if (!reopened) {
      throw new HearthError('BAD_REQUEST', 'this reply is being written already: follow it instead', {
        details: { param: 'messageId' },
      });
    }
    events.message(reopened);
    return this.run(user, conversation, reopened, history, prepared, events, null);
  }

  /** Generates into `assistant` (a streaming row), in the open for followers and stop, until it ends. */
  private async run(
    user: User,
    conversation: Conversation,
    assistant: ConversationMessage,
    history: ConversationMessage[],
    prepared: Awaited<ReturnType<InferencePlanner['prepare']>>,
    events: ReplyEvents,
    knowledge: { system: string; sources: ChatSource[] } | null,
  ): Promise<ConversationMessage> {
    const controller = new AbortController();
    const running: Running = {
      userId: user.id,
      controller,
      done: Promise.resolve(assistant),
      text: assistant.content,
      followers: new Set(),
    };
    const toFollowers: ReplyEvents = {
      ...events,
      text: (chunk) => {
        running.text += chunk;
        for (const f of running.followers) f(chunk);
        events.text(chunk);
      },
    };
    running.done = this.generate(
      user.id,
      conversation,
      assistant,
      history,
      prepared,
      controller,
      toFollowers,
      knowledge,
    ).finally(() => {
      this.running.delete(assistant.id);
    });
    this.running.set(assistant.id, running);
    return running.done;
  }

  /**
   * Stops a reply: at once when this node writes it (resolving the final
   * message), otherwise by flagging the row for the node that does (null).
   */
  async stop(userId: string, conversationId: string, messageId: string): Promise<ConversationMessage | null> {
    const running = this.running.get(messageId);
    if (running && running.userId === userId) {
      running.controller.abort(new Error('stopped'));
      return running.done;
    }
    const flagged = await this.opts.conversations.requestStop(userId, conversationId, messageId);
    if (!flagged) {
      // Not streaming (any more): answer with the message as it stands, or MESSAGE_NOT_FOUND.
      return this.opts.conversations.message(userId, conversationId, messageId);
    }
    return null;
  }

  /**
   * Follows a reply from character `from` of its text: `events.text` gets the
   * text from there as it grows, and the final message is returned when the
   * reply ends (at once when it already has). On the node writing it the text
   * comes from memory; elsewhere from Atlas, read when the writer announces a write (and every
   * `followPollMs` without one).
   * `signal` ends the following (not the reply); then null is returned.
   */
  async follow(
    userId: string,
    conversationId: string,
    messageId: string,
    from: number,
    events: FollowEvents,
    signal?: AbortSignal,
  ): Promise<ConversationMessage | null> {
    const { conversations } = this.opts;
    // Owner check first: another person's reply is MESSAGE_NOT_FOUND.
    const message = await conversations.message(userId, conversationId, messageId);
    if (message.role !== 'assistant') {
      throw new HearthError('BAD_REQUEST', 'only a reply can be followed', { details: { param: 'messageId' } });
    }
    const running = this.running.get(messageId);
    if (running) {
      if (running.text.length > from) events.text(running.text.slice(from));
      const follower = (chunk: string) => events.text(chunk);
      running.followers.add(follower);
      const gone = new Promise<null>((resolve) => {
        if (signal?.aborted) resolve(null);
        signal?.addEventListener('abort', () => resolve(null), { once: true });
      });
      try {
        return await Promise.race([running.done, gone]);
      } finally {
        running.followers.delete(follower);
      }
    }
    // Elsewhere: read from Atlas whenever the writer announces a write, and every followPollMs anyway.
    let announced = false;
    let wake: (() => void) | null = null;
    const unwatch = await conversations
      .watchReplies((written) => {
        if (written.id !== messageId) return;
        announced = true;
        wake?.();
      })
      .catch((err: unknown) => {
        this.opts.log.warn({ err, message: messageId }, 'chat: cannot listen for reply writes; polling Atlas only');
        return null;
      });
    try {
      let offset = from;
      // Read again after listening: a write between the first read and the LISTEN was not announced.
      let state: ConversationMessage | null = unwatch ? await conversations.replyState(messageId) : message;
      const every = this.opts.followPollMs ?? 2000;
      for (;;) {
        if (!state) throw new HearthError('MESSAGE_NOT_FOUND', `message ${JSON.stringify(messageId)} is gone`);
        if (state.content.length > offset) {
          events.text(state.content.slice(offset));
          offset = state.content.length;
        }
        if (state.status !== 'streaming') return state;
        if (signal?.aborted) return null;
        if (!announced) {
          const woken = await new Promise<boolean>((resolve) => {
            const done = (byNotice: boolean) => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', aborted);
              wake = null;
              resolve(byNotice);
            };
            const aborted = () => done(false);
            const timer = setTimeout(() => done(false), every);
            signal?.addEventListener('abort', aborted, { once: true });
            wake = () => done(true);
          });
          if (signal?.aborted) return null;
          if (!woken) this.wakes.polled++;
        }
        if (announced) this.wakes.notified++;
        announced = false;
        state = await conversations.replyState(messageId);
      }
    } finally {
      await unwatch?.();
    }
  }

  /** Why followers through Atlas read replies again, since start. */
  get followWakes(): Readonly<FollowWakes> {
    return { ...this.wakes };
  }

  /** Replies being written on this node, by message id (for tests and the node screen). */
  get runningIds(): string[] {
    return [...this.running.keys()];
  }

  /** Ends every reply in flight as interrupted (hearth is shutting down); each keeps its text. */
  async close(): Promise<void> {
    const running = [...this.running.values()];
    for (const r of running) r.controller.abort(new HearthError('SHUTTING_DOWN', 'hearth is shutting down'));
    await Promise.allSettled(running.map((r) => r.done));
  }

  /** The branch as the engine sees it: text files go in front of the user's words, images as `images`. */
  private async engineMessages(userId: string, history: ConversationMessage[]): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    for (const m of history) {
      if (m.role === 'assistant' && m.content === '' && m.status !== 'done') continue;
      if (m.role !== 'user') {
        out.push({ role: m.role, content: m.content });
        continue;
      }
      const images = m.attachments.flatMap((a) => (a.image ? [a.image] : []));
      const files = this.opts.files;
      out.push({
        role: 'user',
        content: withAttachments(m.content, m.attachments),
        ...(images.length > 0 && files
          ? { images: await Promise.all(images.map((name) => imageBase64(files, userId, name))) }
          : {}),
      });
    }
    return out;
  }

  private async generate(
    userId: string,
    conversation: Conversation,
    assistant: ConversationMessage,
    history: ConversationMessage[],
    prepared: Awaited<ReturnType<InferencePlanner['prepare']>>,
    controller: AbortController,
    events: ReplyEvents,
    knowledge: { system: string; sources: ChatSource[] } | null,
  ): Promise<ConversationMessage> {
    const { conversations, inference, engine, log } = this.opts;
    const started = performance.now();
    let firstTokenAt: number | undefined;
    // Reasoning models write `<think>…</think>` first: how long that took is shown with it.
    let reasoningMs: number | undefined;
    // reasoning the engine hands apart (the server engine), stored as the <think> section the UI folds
    const reasoning: { section: 'none' | 'open' | 'closed' } = { section: 'none' };
    const leaseMs = this.opts.leaseMs ?? 15_000;
    // A continued reply starts from its saved text; the engine writes what follows it.
    const prefix = assistant.content;
    let text = prefix;
    let written = prefix;
    let writtenAt = Date.now();
    let writing: Promise<void> | null = null;
    // One write at a time; a write also renews the lease, so one goes out at least every third of it.
    const flush = () => {
      if (writing) return;
      if (text === written && Date.now() - writtenAt < leaseMs / 3) return;
      const content = text;
      writing = conversations
        .writeReply(assistant.id, { content, leaseMs })
        .then(({ stopRequested }) => {
          written = content;
          writtenAt = Date.now();
          if (stopRequested) controller.abort(new Error('stopped'));
        })
        .catch((err: unknown) =>
          log.warn({ err, message: assistant.id }, 'chat: could not write a streaming reply to Atlas'),
        )
        .finally(() => {
          writing = null;
        });
    };
    const timer = setInterval(flush, this.opts.flushEveryMs ?? 250);
    let status: MessageStatus = 'done';
    let error: string | null = null;
    let stats: MessageStats = {};
    let messages = inference.withModelPrelude(
      prepared.entry,
      await this.engineMessages(userId, history),
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
      const result = await engine.generate(
        await inference.chat(prepared, {
          signal: controller.signal,
          messages,
          onText: (raw) => {
            firstTokenAt ??= performance.now();
            const chunk = (reasoning.section === 'open' ? '</think>\n\n' : '') + storableText(raw);
            if (reasoning.section === 'open') reasoning.section = 'closed';
            text += chunk;
            if (reasoningMs === undefined && text.trimStart().startsWith('<think>')) {
              if (text.slice(-(chunk.length + 8)).includes('</think>'))
                reasoningMs = Math.round(performance.now() - (firstTokenAt ?? started));
            }
            events.text(chunk);
            if (SENTENCE_END.test(chunk)) flush();
          },
          onThinking: (raw) => {
            firstTokenAt ??= performance.now();
            const chunk = (reasoning.section === 'none' ? '<think>' : '') + storableText(raw);
            if (reasoning.section === 'none') reasoning.section = 'open';
            text += chunk;
            events.text(chunk);
          },
        }),
      );
      if (reasoning.section === 'open') {
        text += '</think>';
        events.text('</think>');
      }
      if (reasoning.section === 'none') text = prefix + (storableText(result.text) || text.slice(prefix.length));
      stats = {
        promptTokens: result.promptTokens,
        evalTokens: result.evalTokens,
        tokensPerSecond:
          result.evalDurationNs > 0 ? round(result.evalTokens / (result.evalDurationNs / 1e9), 1) : undefined,
        doneReason: result.doneReason,
      };
    } catch (err) {
      const shutdown = isHearthError(err, 'SHUTTING_DOWN') || isHearthError(controller.signal.reason, 'SHUTTING_DOWN');
      if (controller.signal.aborted && !shutdown) {
        status = 'stopped';
      } else if (shutdown) {
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
    if (reasoningMs !== undefined) stats.reasoningMs = reasoningMs;
    await conversations.writeReply(assistant.id, { content: text, status, stats, error });
    const stored = { ...assistant, content: text, status, stats, error, updatedAt: new Date() };
    return stored;
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function withAttachments(content: string, attachments: Attachment[]): string {
  attachments = attachments.filter((a) => !a.image);
  if (attachments.length === 0) return content;
  const files = attachments.map((a) => `File "${a.name}":\n\`\`\`\n${a.text}\n\`\`\``).join('\n\n');
  return content.trim() ? `${files}\n\n${content}` : files;
}

/** Cuts text attachments to fit half of the model's context, with a notice for each one cut. */
export function fitAttachments(
  inputs: TextAttachmentInput[],
  numCtx: number,
  events: Pick<ReplyEvents, 'notice'>,
): Attachment[] {
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
