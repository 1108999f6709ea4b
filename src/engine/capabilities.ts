import {
  EmptyChatWrapper,
  GeneralChatWrapper,
  type GgufFileInfo,
  JinjaTemplateChatWrapper,
  type Llama,
  readGgufFileInfo,
  resolveChatWrapper,
} from 'node-llama-cpp';
import { describeError, HearthError } from '../errors.js';
import type { ModelCapabilities } from './types.js';

/** llama.cpp's pooling types (`<arch>.pooling_type`): 1 mean, 2 cls, 3 last make an embedding model; 4 (rank) a reranker. */
const EMBEDDING_POOLING = new Set([1, 2, 3]);
const RANK_POOLING = 4;

/** Fill-in-the-middle tokens by text, for GGUFs that do not name their ids in metadata (llama.cpp looks for the same). */
const FIM_PREFIX_TEXTS = ['<fim_prefix>', '<|fim_prefix|>', '<fim-prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>'];
const FIM_SUFFIX_TEXTS = ['<fim_suffix>', '<|fim_suffix|>', '<fim-suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>'];

/**
 * What a GGUF can do, from its metadata alone (no weights are read). Vision is
 * always false: hearth has no multimodal projector support yet.
 */
export async function readCapabilities(path: string, llama: Llama): Promise<ModelCapabilities> {
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
  } catch (err) {
    throw new HearthError('MODEL_INVALID', `engine: cannot read GGUF metadata of ${path}: ${describeError(err)}`, {
      cause: err,
    });
  }
  return capabilitiesOf(info, llama);
}

export function capabilitiesOf(info: GgufFileInfo, llama: Llama): ModelCapabilities {
  const embedding = isEmbeddingModel(info);
  return {
    completion: generatesText(info),
    tools: !embedding && hasToolCalling(info, llama),
    insert: !embedding && hasInfillTokens(info),
    thinking: !embedding && hasThinking(info),
    embedding,
    vision: false,
  };
}

function poolingType(info: GgufFileInfo): number {
  const arch = info.architectureMetadata as Record<string, unknown>;
  return typeof arch['pooling_type'] === 'number' ? arch['pooling_type'] : 0;
}

/** Encoder-only architectures (BERT and kin) and embedding fine-tunes carry a pooling type: they embed and cannot generate. */
export function isEmbeddingModel(info: GgufFileInfo): boolean {
  return EMBEDDING_POOLING.has(poolingType(info));
}

/** A reranker: llama.cpp's rank pooling and a classifier head (llama-server's --rerank). */
export function isReranker(info: GgufFileInfo): boolean {
  return poolingType(info) === RANK_POOLING;
}

/** Whether the model can generate text (chat, completion); false for embedding models and rerankers. */
export function generatesText(info: GgufFileInfo): boolean {
  return !isEmbeddingModel(info) && poolingType(info) !== RANK_POOLING;
}

function hasToolCalling(info: GgufFileInfo, llama: Llama): boolean {
  const template = info.metadata.tokenizer?.chat_template;
  if (typeof template !== 'string' || !/\btools?\b/.test(template)) return false;
  try {
    // cheap first: node-llama-cpp learns the tool syntax from the template itself
    if (new JinjaTemplateChatWrapper({ template }).usingJinjaFunctionCallTemplate) return true;
  } catch {
    // a template its Jinja engine cannot parse: a specialized wrapper may still fit (below)
  }
  try {
    // else the full matching against node-llama-cpp's specialized wrappers (slow: renders the template many times)
    const wrapper = resolveChatWrapper({
      fileInfo: info,
      architecture: info.metadata.general?.architecture,
      warningLogs: false,
      llama,
    });
    if (wrapper == null || wrapper instanceof GeneralChatWrapper || wrapper instanceof EmptyChatWrapper) return false;
    // A Jinja template whose tool syntax node-llama-cpp could not learn falls back to its generic syntax, which a model trained on
    // the template's own syntax does not follow: that is no tool support worth advertising.
    if (wrapper instanceof JinjaTemplateChatWrapper) return wrapper.usingJinjaFunctionCallTemplate;
    return true;
  } catch {
    return false;
  }
}

/** A chat template that renders or switches a reasoning section (Qwen 3, DeepSeek R1, gpt-oss style). */
function hasThinking(info: GgufFileInfo): boolean {
  const template = info.metadata.tokenizer?.chat_template;
  return typeof template === 'string' && /<think>|enable_thinking|reasoning_content/.test(template);
}

function hasInfillTokens(info: GgufFileInfo): boolean {
  const ggml = (info.metadata.tokenizer?.ggml ?? {}) as Record<string, unknown>;
  const id = (...keys: string[]) => keys.some((k) => typeof ggml[k] === 'number' && (ggml[k] as number) >= 0);
  if (id('fim_pre_token_id', 'prefix_token_id') && id('fim_suf_token_id', 'suffix_token_id')) return true;
  const tokens = ggml['tokens'];
  if (!Array.isArray(tokens)) return false;
  const texts = new Set(tokens as string[]);
  return FIM_PREFIX_TEXTS.some((t) => texts.has(t)) && FIM_SUFFIX_TEXTS.some((t) => texts.has(t));
}
