// The Atlas state database: one schema and one migration set over PostgreSQL (pg) and PGlite.
export { type AtlasDb, type AtlasDbOptions, openAtlasDb } from './atlas-db.js';
export { EMBEDDED_DATABASE, isEmbeddedDatabase, maskDatabaseUrl } from './database-url.js';
export type { AtlasOrm, AtlasTransaction } from './driver.js';
export { type Migration, migrations } from './migrations/index.js';
export type { MigrationStatus } from './migrator.js';
export { isConnectionError } from './pg/connection-errors.js';
export * as schema from './schema.js';
