import type { GenerateResult, ToolCall } from '../../engine/types.js';
import { itemId } from '../openai/results.js';

/** One event of a streamed message; its `type` is also the SSE `event:` name. */
export interface MessageEvent {
  type: string;
  [field: string]: unknown;
}

type ContentBlock =
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export interface MessageObject {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_creation_input_tokens: number;
    cache_read_input_tokens: number;
  };
}

/**
 * Builds one message, as the final object and, when streaming, as Anthropic's
 * events in their order: message_start, ping, per block content_block_start,
 * content_block_delta (text_delta | input_json_delta)…, content_block_stop,
 * then message_delta (stop_reason, usage) and message_stop. Both answers come
 * from this one builder, so they cannot differ.
 */
export class MessageBuilder {
  private readonly message: MessageObject;
  private readonly emit: ((event: MessageEvent) => void) | null;
  private textIndex: number | null = null;
  private thinkingIndex: number | null = null;
  private thinkingClosed = false;
  private started = false;

  constructor(model: string, emit: ((event: MessageEvent) => void) | null) {
    this.message = {
      id: itemId('msg'),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // The prompt's size is known once the engine has read it: message_delta carries it.
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    this.emit = emit;
  }

  /** message_start and a ping: sent with the first output, so an engine refusal before any keeps its HTTP status. */
  private start(): void {
    if (this.started) return;
    this.started = true;
    this.send({ type: 'message_start', message: structuredClone(this.message) });
    this.send({ type: 'ping' });
  }

  /** The model's reasoning as it arrives (a thinking model): a thinking block before the text. */
  thinking(delta: string): void {
    if (delta === '' || this.thinkingClosed) return;
    this.start();
    if (this.thinkingIndex === null) {
      this.thinkingIndex = this.message.content.length;
      this.message.content.push({ type: 'thinking', thinking: '', signature: '' });
      this.send({
        type: 'content_block_start',
        index: this.thinkingIndex,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      });
    }
    const index = this.thinkingIndex;
    (this.message.content[index] as { thinking: string }).thinking += delta;
    this.send({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: delta } });
  }

  private closeThinking(): void {
    if (this.thinkingIndex === null || this.thinkingClosed) return;
    this.thinkingClosed = true;
    this.send({ type: 'content_block_stop', index: this.thinkingIndex });
  }

  /** Generated text as it arrives: opens the text block on the first piece. */
  text(delta: string): void {
    if (delta === '') return;
    this.start();
    this.closeThinking();
    const index = this.openText();
    (this.message.content[index] as { text: string }).text += delta;
    this.send({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: delta } });
  }

  finish(result: GenerateResult, toolCalls: ToolCall[]): MessageObject {
    this.start();
    const m = this.message;
    if (this.thinkingIndex === null && result.thinking) {
      if (this.emit) this.thinking(result.thinking);
      else m.content.push({ type: 'thinking', thinking: result.thinking, signature: '' });
    }
    this.closeThinking();
    if (this.textIndex === null && result.text !== '') {
      if (this.emit) this.text(result.text);
      else m.content.push({ type: 'text', text: result.text });
    }
    if (this.textIndex !== null) this.send({ type: 'content_block_stop', index: this.textIndex });
    for (const call of toolCalls) {
      const index = m.content.length;
      const block = { type: 'tool_use' as const, id: itemId('toolu'), name: call.name, input: call.arguments };
      m.content.push(block);
      this.send({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
      // The engine parses a call whole; its input arrives as one delta.
      this.send({
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(call.arguments) },
      });
      this.send({ type: 'content_block_stop', index });
    }
    m.stop_reason = toolCalls.length ? 'tool_use' : result.doneReason === 'length' ? 'max_tokens' : 'end_turn';
    m.usage.input_tokens = result.promptTokens;
    m.usage.output_tokens = result.evalTokens;
    this.send({
      type: 'message_delta',
      delta: { stop_reason: m.stop_reason, stop_sequence: null },
      usage: { input_tokens: m.usage.input_tokens, output_tokens: m.usage.output_tokens },
    });
    this.send({ type: 'message_stop' });
    return m;
  }

  private openText(): number {
    if (this.textIndex !== null) return this.textIndex;
    this.textIndex = this.message.content.length;
    this.message.content.push({ type: 'text', text: '' });
    this.send({ type: 'content_block_start', index: this.textIndex, content_block: { type: 'text', text: '' } });
    return this.textIndex;
  }

  private send(event: MessageEvent): void {
    this.emit?.(event);
  }
}
