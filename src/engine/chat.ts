import { randomBytes } from 'node:crypto';
import {
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelFunctions,
  type ChatModelResponse,
  type ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
  type GbnfJsonSchema,
  type LLamaChatGenerateResponseOptions,
  LlamaChat,
  type LlamaChatResponse,
  type LlamaGrammar,
  type Token,
} from 'node-llama-cpp';
import { HearthError } from '../errors.js';
import {
  emptyOutcome,
  GenerationClock,
  type GenerationOutcome,
  type PreparedGeneration,
  repeatPenaltyOf,
  safeText,
  samplerOptions,
  stopSequences,
} from './generation.js';
import type { ModelInstance, SequenceSlot } from './instance.js';
import type { ChatMessage, ChatRequest, ToolDefinition } from './types.js';

/**
 * A chat request for LlamaChat with the GGUF's own chat wrapper.
 *
 * Tools: `auto` offers them as node-llama-cpp functions (the model may call
 * them; generation stops at the calls). `none` offers none. `required` and a
 * named tool force a call: the wrapper's context state is marked "function call
 * initially engaged", so the first thing generated is a function name (limited
 * by grammar to the offered tools, or to the named one) and its parameters,
 * and at most one call is made. With `format`, the grammar wins and tools are
 * not offered (node-llama-cpp cannot combine a grammar with functions).
 */
export function prepareChat(req: ChatRequest, grammar: LlamaGrammar | undefined): PreparedGeneration {
  const history = toChatHistory(req.messages);
  const choice = req.toolChoice ?? 'auto';
  const offered = grammar || choice === 'none' || !req.tools?.length ? [] : req.tools;
  let functions = offered.length > 0 ? toFunctions(offered) : undefined;
  if (functions && typeof choice === 'object') {
    const only = functions[choice.name];
    if (!only) {
      throw new HearthError('BAD_REQUEST', `tool_choice names "${choice.name}", which is not among the tools offered`, {
        details: { param: 'tool_choice' },
      });
    }
    functions = { [choice.name]: only };
  }
  const forced = functions !== undefined && (choice === 'required' || typeof choice === 'object');
  const rendered = new WeakMap<ModelInstance, readonly Token[]>();
  const promptTokens = (instance: ModelInstance): readonly Token[] => {
    let tokens = rendered.get(instance);
    if (!tokens) {
      const wrapper = instance.weights.chatWrapper();
      const full: ChatHistoryItem[] =
        history.at(-1)?.type === 'model' ? history : [...history, { type: 'model', response: [] }];
      tokens = wrapper
        .generateContextState({ chatHistory: full, ...(functions ? { availableFunctions: functions } : {}) })
        .contextText.tokenize(instance.weights.model.tokenizer);
      rendered.set(instance, tokens);
    }
    return tokens;
  };

  return {
    promptTokens,
    async run(instance, slot, signal, onTokens) {
      const sequence = slot.sequence;
      const contextSize = instance.contextSize;
      let promptEstimate = 0;
      try {
        promptEstimate = promptTokens(instance).length;
      } catch {
        // LlamaChat renders the template again and reports the error itself
      }
      const room = contextSize - promptEstimate;
      if (req.sampling.numPredict === 0) return emptyOutcome(promptEstimate);
      const maxTokens =
        req.sampling.numPredict > 0
          ? req.sampling.numPredict
          : // until the context is full; a prompt that does not fit is shortened by LlamaChat's context shift first
            room > 0
            ? room
            : Math.max(1, Math.floor(contextSize / 4));
      const base = instance.weights.chatWrapper();
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: forced ? forceFunctionCall(base) : base });
      const clock = new GenerationClock();
      const generated: Token[] = [];
      const before = sequence.tokenMeter.getState();
      const options: LLamaChatGenerateResponseOptions<ChatModelFunctions> = {
        ...samplerOptions(req.sampling),
        repeatPenalty: repeatPenaltyOf(req.sampling, contextSize) ?? false,
        ...(stopSequences(req.sampling).length > 0 ? { customStopTriggers: stopSequences(req.sampling) } : {}),
        maxTokens,
        signal,
        stopOnAbortSignal: false,
        onToken: (tokens) => {
          clock.firstToken();
          onTokens?.(tokens.length);
          generated.push(...tokens);
        },
        onResponseChunk: () => clock.firstToken(),
        ...(req.onText ? { onTextChunk: safeText(req.onText) } : {}),
        ...(grammar
          ? { grammar }
          : functions
            ? {
                functions,
                onFunctionCallParamsChunk: () => clock.firstToken(),
                ...(forced ? { maxParallelFunctionCalls: 1 } : {}),
              }
            : {}),
      };
      let response: LlamaChatResponse<ChatModelFunctions>;
      try {
        response = await chat.generateResponse(history, options);
      } finally {
        chat.dispose({ disposeSequence: false });
      }
      clock.end();
      const toolCalls = (response.functionCalls ?? []).map((call) => ({
        id: newToolCallId(),
        name: call.functionName,
        arguments: isPlainObject(call.params) ? call.params : {},
      }));
      const stop = response.metadata.stopReason;
      const doneReason = stop === 'maxTokens' ? 'length' : toolCalls.length > 0 ? 'toolCalls' : 'stop';
      return {
        text: response.response,
        toolCalls,
        doneReason,
        ...measured(slot, before, generated, clock),
      };
    },
  };
}

/** Ollama/OpenAI messages → node-llama-cpp chat history; tool results attach to the call they answer. */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const out: ChatHistoryItem[] = [];
  let unanswered: ChatModelFunctionCall[] = [];
  for (const m of messages) {
    if (m.role === 'system') {
      out.push({ type: 'system', text: m.content });
      unanswered = [];
    } else if (m.role === 'user') {
      out.push({ type: 'user', text: m.content });
      unanswered = [];
    } else if (m.role === 'assistant') {
      const response: ChatModelResponse['response'] = [];
      if (m.content !== '') response.push(m.content);
      const calls: ChatModelFunctionCall[] = (m.toolCalls ?? []).map((c) => ({
        type: 'functionCall',
        name: c.name,
        params: c.arguments,
        result: undefined,
      }));
      response.push(...calls);
      out.push({ type: 'model', response });
      unanswered = calls;
    } else {
      const call =
        unanswered.find((c) => c.name === m.toolName) ?? (m.toolName === undefined ? unanswered[0] : undefined);
      if (call) {
        call.result = parseToolResult(m.content);
        unanswered = unanswered.filter((c) => c !== call);
      } else {
        // a result with no call to answer (the client dropped the assistant turn): still let the model read it
        out.push({ type: 'user', text: `Result of tool ${m.toolName ?? 'call'}:\n${m.content}` });
      }
    }
  }
  // calls nobody answered still need a result to render
  for (const item of out) {
    if (item.type !== 'model') continue;
    for (const part of item.response) {
      if (typeof part === 'object' && part.type === 'functionCall' && part.result === undefined) part.result = null;
    }
  }
  return out;
}

function parseToolResult(content: string): unknown {
  const trimmed = content.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // not JSON after all: the text itself is the result
    }
  }
  return content;
}

function toFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  for (const tool of tools) {
    if (!tool.name || /\s/.test(tool.name)) {
      throw new HearthError(
        'BAD_REQUEST',
        `tool name ${JSON.stringify(tool.name)} is invalid: use a non-empty name without spaces`,
        {
          details: { param: 'tools' },
        },
      );
    }
    functions[tool.name] = {
      ...(tool.description ? { description: tool.description } : {}),
      ...(tool.parameters ? { params: tool.parameters as GbnfJsonSchema } : {}),
    };
  }
  return functions;
}

/** A wrapper that starts the model's turn inside a function call (tool_choice required / a named tool). */
function forceFunctionCall(base: ChatWrapper): ChatWrapper {
  const forced = Object.create(base) as ChatWrapper;
  Object.defineProperty(forced, 'generateContextState', {
    value: (options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState => {
      const state = base.generateContextState(options);
      return {
        contextText: state.contextText,
        stopGenerationTriggers: state.stopGenerationTriggers,
        ignoreStartText: state.ignoreStartText ?? [],
        functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
      };
    },
  });
  return forced;
}

/** OpenAI-style call ids (`call_` + 24 random characters). */
export function newToolCallId(): string {
  return `call_${randomBytes(18).toString('base64url').slice(0, 24)}`;
}

/**
 * Token counts from the sequence's token meter: every decode that produced
 * logits sampled one token (evalTokens); the other decoded tokens are prompt,
 * plus the prompt's last token, which produced the first logits. A cached
 * prefix is not decoded, so promptTokensEvaluated shows the prompt cache at work.
 */
function measured(
  slot: SequenceSlot,
  before: { usedInputTokens: number; usedOutputTokens: number },
  generated: readonly Token[],
  clock: GenerationClock,
): Pick<GenerationOutcome, 'promptTokens' | 'promptTokensEvaluated' | 'evalTokens' | 'context'> &
  ReturnType<GenerationClock['durations']> {
  const used = slot.sequence.tokenMeter.diff(before);
  const evalTokens = used.usedOutputTokens;
  const promptTokensEvaluated = used.usedInputTokens + (evalTokens > 0 ? 1 : 0);
  const held = slot.sequence.contextTokens;
  // the sequence holds the prompt and every sampled token but the last (never decoded)
  const promptTokens = Math.max(promptTokensEvaluated, held.length - Math.max(0, evalTokens - 1));
  return {
    promptTokens,
    promptTokensEvaluated,
    evalTokens,
    context: [...held.slice(0, promptTokens), ...generated],
    ...clock.durations(),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
