export { type CachedBlob, NodeCache, type NodeCacheOptions } from './cache/node-cache.js';
export { ScratchArea, type ScratchFolder } from './scratch.js';
