// The Atlas state database: one migration set and one raw-SQL path over PostgreSQL (pg) and PGlite.
export { type AtlasDb, type AtlasDbOptions, NOTIFY_PAYLOAD_MAX_BYTES, openAtlasDb } from './atlas-db.js';
export type { CopyColumns, CopyColumnType } from './copy-binary.js';
export { EMBEDDED_DATABASE, isEmbeddedDatabase, maskDatabaseUrl } from './database-url.js';
export type { AtlasTransaction, SqlRunner } from './driver.js';
export { jsonForAtlas } from './json.js';
export { type Migration, migrations } from './migrations/index.js';
export type { MigrationStatus } from './migrator.js';
export { isConnectionError } from './pg/connection-errors.js';
