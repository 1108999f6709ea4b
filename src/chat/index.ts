/**
 * The chat UI's services: accounts, sessions, conversations (message trees),
 * presets and reply writing, all on Atlas. The HTTP API is src/http/ui; the
 * browser app is web/.
 */
import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { ConversationStore } from './conversations.js';
import { GeneratedImages } from './generated.js';
import { PresetStore } from './presets.js';
import { ChatReplies, type ChatRepliesOptions } from './replies.js';
import { SessionStore } from './sessions.js';
import { TitleWriter } from './titles.js';
import { UserStore } from './users.js';

export {
  type AttachmentInput,
  IMAGE_NAME,
  imageKey,
  imageMediaType,
  MAX_ATTACHMENT_BYTES,
} from './attachments.js';
export * from './conversations.js';
export { type GeneratedImage, GeneratedImages } from './generated.js';
export { checkNewPassword, PASSWORD_MIN_LENGTH } from './passwords.js';
export type { Preset, PresetInput } from './presets.js';
export { PresetStore } from './presets.js';
export {
  ChatReplies,
  type FollowEvents,
  fitAttachments,
  type ReplyEvents,
  type ReplyRequest,
} from './replies.js';
export { type Session, SessionStore } from './sessions.js';
export { TitleWriter, titleFromReply } from './titles.js';
export * from './transfer.js';
export {
  checkUsername,
  type NewUser,
  THEMES,
  USER_ROLES,
  type User,
  type UserPreferences,
  type UserRole,
  UserStore,
} from './users.js';

/** Options for {@link ChatService.open}. */
export interface ChatServiceOptions {
  db: AtlasDb;
  inference: InferencePlanner;
  engine: Engine;
  log: Logger;
  /** this node's id (streaming replies carry it) */
  nodeId: string;
  /** ui.sessionTtl, ms */
  sessionTtlMs: number;
  /** ui.generateTitles */
  generateTitles: boolean;
  /** How often housekeeping runs (expired sessions, the conversation bin), ms (default one hour; 0 = never). */
  housekeepingEveryMs?: number;
  /** How long a deleted conversation can be restored, ms (default 7 days). */
  binRetentionMs?: number;
  /** knowledge for a reply (`#name` bases in the user's message); see ChatRepliesOptions.retrieve */
  retrieve?: ChatRepliesOptions['retrieve'];
  /** Atlas files: images given to messages are kept there */
  files?: FileStore;
}

export class ChatService {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly conversations: ConversationStore;
  readonly presets: PresetStore;
  readonly titles: TitleWriter;
  readonly replies: ChatReplies;
  /** images made from a chat ("Create image"), kept as messages */
  readonly images: GeneratedImages;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly binRetentionMs: number;

  private constructor(opts: ChatServiceOptions) {
    this.log = opts.log;
    this.binRetentionMs = opts.binRetentionMs ?? 7 * 24 * 3_600_000;
    this.users = new UserStore({ db: opts.db });
    this.sessions = new SessionStore({ db: opts.db, ttlMs: opts.sessionTtlMs });
    this.conversations = new ConversationStore({ db: opts.db });
    this.presets = new PresetStore({ db: opts.db });
    this.titles = new TitleWriter({
      conversations: this.conversations,
      inference: opts.inference,
      engine: opts.engine,
      log: opts.log,
      generate: opts.generateTitles,
    });
    this.replies = new ChatReplies({
      conversations: this.conversations,
      inference: opts.inference,
      engine: opts.engine,
      titles: this.titles,
      log: opts.log,
      nodeId: opts.nodeId,
      ...(opts.retrieve ? { retrieve: opts.retrieve } : {}),
      ...(opts.files ? { files: opts.files } : {}),
    });
    this.images = new GeneratedImages({ conversations: this.conversations, titles: this.titles, files: opts.files });
    const every = opts.housekeepingEveryMs ?? 3_600_000;
    if (every > 0) {
      this.timer = setInterval(() => void this.housekeeping(), every);
      this.timer.unref();
    }
  }

  /** Opens the service; replies this node was writing when it last stopped are marked interrupted (their text kept). */
  static async open(opts: ChatServiceOptions): Promise<ChatService> {
    const service = new ChatService(opts);
    const interrupted = await service.conversations.markInterrupted(opts.nodeId);
    if (interrupted > 0)
      opts.log.warn({ interrupted }, `chat: ${interrupted} reply(s) were cut short by the last stop of this node`);
    return service;
  }

  /** Removes expired sessions and conversations past the bin's retention. Failures are logged. */
  async housekeeping(): Promise<void> {
    try {
      await this.sessions.purgeExpired();
      await this.conversations.purgeDeleted(this.binRetentionMs);
    } catch (err) {
      this.log.warn({ err }, 'chat: housekeeping failed');
    }
  }

  /** Stops replies in flight (each keeps its text), pictures being drawn (storing nothing) and background titles. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.images.close();
    await this.replies.close();
    await this.titles.close();
  }
}
