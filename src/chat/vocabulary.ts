/**
 * The chat's words and limits that its HTTP contract shares (src/http/ui/contract.ts): no imports,
 * so the contract stays free of node code and web/ can type-check it (docs/ui.md, "One contract").
 */

export const USER_ROLES = ['admin', 'user'] as const;
/** Themes of the chat UI: `system` follows the device's light or dark setting. */
export const THEMES = ['system', 'light', 'dark'] as const;
export const MESSAGE_ROLES = ['system', 'user', 'assistant'] as const;
export const MESSAGE_STATUSES = ['streaming', 'done', 'stopped', 'error', 'interrupted'] as const;
/** The largest file a message may carry (before base64). */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;
/**
 * Files a message carries as their bytes (base64), which the server reads (src/chat/attachments.ts):
 * PDF and Word (.docx) for their text, images for vision models. Any other file goes as text. The
 * composer (web/) holds these through the contract's types, so the two lists cannot drift apart.
 */
export const BYTE_ATTACHMENTS = ['.pdf', '.docx', '.png', '.jpg', '.jpeg', '.gif', '.webp'] as const;
/** Files that are neither text nor read by hearth: refused, as text or as bytes, saying what is read. */
export const UNREAD_ATTACHMENTS = [
  '.doc',
  '.xls',
  '.xlsx',
  '.ppt',
  '.pptx',
  '.odt',
  '.bmp',
  '.heic',
  '.heif',
  '.tif',
  '.tiff',
  '.svg',
  '.ico',
  '.zip',
  '.gz',
  '.tgz',
  '.7z',
  '.rar',
  '.mp3',
  '.wav',
  '.mp4',
  '.mov',
  '.gguf',
  '.bin',
] as const;
