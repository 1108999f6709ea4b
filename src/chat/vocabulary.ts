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
