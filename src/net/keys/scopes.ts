/** What a key may be used for: the service classes that take bearer keys. No imports: the UI's contract uses it. */
export const KEY_SCOPES = ['inference', 'workflows', 'jobs', 'admin'] as const;
