// The inference engine: llama.cpp through node-llama-cpp, behind the contract in ./types.ts.
export { Engine } from './engine.js';
export type * from './observer.js';
export { defaultLoadOptions, defaultSampling, type EngineOptions } from './options.js';
export type * from './types.js';
