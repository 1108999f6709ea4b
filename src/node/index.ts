export { type CachedBlob, NodeCache, type NodeCacheOptions } from './cache/NodeCache.js';
export { ScratchArea, type ScratchFolder } from './scratch.js';
