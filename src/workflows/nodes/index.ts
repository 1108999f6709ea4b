import { NodeRegistry } from '../registry.js';
import { diffusionNodes } from './diffusion.js';
import { imageNodes } from './image.js';
import { jsonNodes } from './json.js';
import { llmNodes } from './llm.js';
import { outputNodes } from './output.js';
import { textNodes } from './text.js';

/** Every built-in node family. A new family is one file here and one entry in this list. */
export const NODE_FAMILIES = [textNodes, jsonNodes, llmNodes, imageNodes, diffusionNodes, outputNodes] as const;

export function builtinNodes(): NodeRegistry {
  return new NodeRegistry(NODE_FAMILIES);
}

export { OUTPUT_FOLDER, readPngText, type SavedFile } from './output.js';
