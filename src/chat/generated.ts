/**
 * Images an image model made from a chat ("Create image" in the composer): the prompt becomes the
 * user's message, and the picture the answer's attachment, stored on Atlas files as chat images are
 * (`chat/<user>/<sha256>.png`, src/chat/attachments.ts). The image is generated before anything is
 * written; then the file is stored (content-addressed: a retry writes the same name), then both
 * messages in one transaction, so a failure never leaves half a exchange on Atlas.
 */
import type { FileStore } from '../atlas/files/index.js';
import { HearthError } from '../errors.js';
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

export class GeneratedImages {
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
}
