import type { ChatMessage, ChatRequest, OutputFormat, ToolDefinition } from '../engine/types.js';
import type { PreparedRequest } from '../models/inference.js';

/** What an API family adds to a chat request beyond the planner's model, options and keep-alive. */
export interface ChatRequestParts {
  messages: ChatMessage[];
  signal: AbortSignal;
  tools?: ToolDefinition[] | undefined;
  toolChoice?: ChatRequest['toolChoice'];
  format?: OutputFormat | undefined;
  onText?: ((text: string) => void) | undefined;
  /**
   * Whether (and how hard) the model should think, as Ollama's `think`: the
   * Responses API's `reasoning.effort` and the Messages API's `thinking` land
   * here. Undefined leaves it to the model. The in-process engine cannot think,
   * so it is not passed on yet: this is the one place to pass it once the
   * engine's ChatRequest takes it.
   */
  think?: boolean | 'low' | 'medium' | 'high' | undefined;
}

/**
 * The engine request of a chat turn, the same for every API that translates
 * onto it (/v1/chat/completions, /v1/responses, /v1/messages).
 */
export function chatRequest(prepared: PreparedRequest, parts: ChatRequestParts): ChatRequest {
  return {
    kind: 'chat',
    model: prepared.spec,
    load: prepared.load,
    keepAliveMs: prepared.keepAliveMs,
    signal: parts.signal,
    sampling: prepared.sampling,
    messages: parts.messages,
    ...(parts.tools ? { tools: parts.tools } : {}),
    ...(parts.toolChoice ? { toolChoice: parts.toolChoice } : {}),
    ...(parts.format ? { format: parts.format } : {}),
    ...(parts.onText ? { onText: parts.onText } : {}),
  };
}
