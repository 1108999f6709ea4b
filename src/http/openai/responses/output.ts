import type { GenerateResult, ToolCall } from '../../../engine/types.js';
import { itemId } from '../results.js';

/** One typed event of a streamed response, before its `sequence_number`. */
export interface ResponseEvent {
  type: string;
  [field: string]: unknown;
}

export interface MessageOutput {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: Array<{ type: 'output_text'; text: string; annotations: unknown[]; logprobs: unknown[] }>;
}

export interface FunctionCallOutput {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed';
}

export interface ReasoningOutput {
  type: 'reasoning';
  id: string;
  summary: Array<{ type: 'summary_text'; text: string }>;
  content: Array<{ type: 'reasoning_text'; text: string }>;
}

export type OutputItem = ReasoningOutput | MessageOutput | FunctionCallOutput;

/** A response object as OpenAI's API returns it; `output` and `usage` are filled in by {@link ResponseBuilder}. */
export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' } | null;
  output: OutputItem[];
  usage: {
    input_tokens: number;
    input_tokens_details: { cached_tokens: number };
    output_tokens: number;
    output_tokens_details: { reasoning_tokens: number };
    total_tokens: number;
  } | null;
  [field: string]: unknown;
}

/**
 * Builds one response, as a final object and, when streaming, as OpenAI's
 * typed events in their order: response.created, response.in_progress, then
 * per output item output_item.added, (content_part.added, output_text.delta…,
 * output_text.done, content_part.done | function_call_arguments.delta/.done),
 * output_item.done, and last response.completed (or response.incomplete) with
 * the usage. Both answers come from this one builder, so they cannot differ.
 * Events are numbered by the caller (`sequence_number`).
 */
export class ResponseBuilder {
  private readonly response: ResponseObject;
  private readonly emit: ((event: ResponseEvent) => void) | null;
  private message: MessageOutput | null = null;
  private _text = '';
  private _thinking = '';
  private reasoningDone = false;
  private started = false;

  constructor(response: ResponseObject, emit: ((event: ResponseEvent) => void) | null) {
    this.response = response;
    this.emit = emit;
  }

  get id(): string {
    return this.response.id;
  }

  /**
   * response.created and response.in_progress: sent with the first output, so
   * an engine refusal before any (queue full, a model that cannot see) still
   * answers with its HTTP status.
   */
  private start(): void {
    if (this.started) return;
    this.started = true;
    this.send({ type: 'response.created', response: this.snapshot() });
    this.send({ type: 'response.in_progress', response: this.snapshot() });
  }

  /** The model's reasoning as it arrives: one reasoning item, sent whole before the message. */
  thinking(delta: string): void {
    if (!this.reasoningDone) this._thinking += delta;
  }

  /** The reasoning item (Ollama's shape: the text as summary and as reasoning_text), before any other output. */
  private reasoning(): void {
    if (this.reasoningDone) return;
    this.reasoningDone = true;
    if (this._thinking === '') return;
    const item: ReasoningOutput = {
      type: 'reasoning',
      id: itemId('rs'),
      summary: [{ type: 'summary_text', text: this._thinking }],
      content: [{ type: 'reasoning_text', text: this._thinking }],
    };
    this.response.output.push(item);
    const output_index = this.indexOf(item);
    this.send({ type: 'response.output_item.added', output_index, item: clone(item) });
    this.send({ type: 'response.output_item.done', output_index, item: clone(item) });
  }

  /** Generated text as it arrives: opens the message item on the first piece. */
  text(delta: string): void {
    if (delta === '') return;
    this.start();
    this.reasoning();
    const message = this.openMessage();
    this._text += delta;
    this.send({
      type: 'response.output_text.delta',
      item_id: message.id,
      output_index: this.indexOf(message),
      content_index: 0,
      delta,
      logprobs: [],
    });
  }

  /**
   * Closes the output with the engine's result: the message (if any), the
   * function calls, the usage. The last event waits for {@link complete}, so
   * a stored response is on Atlas before the client hears it is done.
   */
  finish(result: GenerateResult, toolCalls: ToolCall[]): ResponseObject {
    this.start();
    if (!this.reasoningDone && this._thinking === '' && result.thinking) this._thinking = result.thinking;
    this.reasoning();
    // A response always carries a message unless the model only called tools.
    if (this.message === null && (result.text !== '' || toolCalls.length === 0)) {
      this.openMessage();
      if (this.emit === null) this._text = result.text;
      else if (result.text !== '') this.text(result.text);
    }
    const incomplete = result.doneReason === 'length' && toolCalls.length === 0;
    if (this.message) this.closeMessage(incomplete ? 'incomplete' : 'completed');
    for (const call of toolCalls) this.functionCall(call);
    const r = this.response;
    r.status = incomplete ? 'incomplete' : 'completed';
    r.incomplete_details = incomplete ? { reason: 'max_output_tokens' } : null;
    r.usage = {
      input_tokens: result.promptTokens,
      input_tokens_details: { cached_tokens: Math.max(0, result.promptTokens - result.promptTokensEvaluated) },
      output_tokens: result.evalTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: result.promptTokens + result.evalTokens,
    };
    return r;
  }

  /** response.completed (or response.incomplete), with the whole response and its usage. */
  complete(): void {
    const r = this.response;
    this.send({
      type: r.status === 'incomplete' ? 'response.incomplete' : 'response.completed',
      response: this.snapshot(),
    });
  }

  /**
   * An error after output began: OpenAI's `error` event. It also carries the
   * error object of OpenAI's error shape, which the SDKs raise as an APIError.
   */
  fail(error: { message: string; param: unknown; code: string }): void {
    this.response.status = 'failed';
    this.response.error = { code: error.code, message: error.message };
    this.send({ type: 'error', code: error.code, message: error.message, param: error.param ?? null, error });
  }

  private openMessage(): MessageOutput {
    if (this.message) return this.message;
    const message: MessageOutput = {
      type: 'message',
      id: itemId('msg'),
      status: 'in_progress',
      role: 'assistant',
      content: [],
    };
    this.message = message;
    this.response.output.push(message);
    const output_index = this.indexOf(message);
    this.send({ type: 'response.output_item.added', output_index, item: clone(message) });
    this.send({
      type: 'response.content_part.added',
      item_id: message.id,
      output_index,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    return message;
  }

  private closeMessage(status: 'completed' | 'incomplete'): void {
    const message = this.message!;
    const output_index = this.indexOf(message);
    const part = { type: 'output_text' as const, text: this._text, annotations: [], logprobs: [] };
    message.content = [part];
    message.status = status;
    const at = { item_id: message.id, output_index, content_index: 0 };
    this.send({ type: 'response.output_text.done', ...at, text: this._text, logprobs: [] });
    this.send({ type: 'response.content_part.done', ...at, part: clone(part) });
    this.send({ type: 'response.output_item.done', output_index, item: clone(message) });
  }

  private functionCall(call: ToolCall): void {
    const args = JSON.stringify(call.arguments);
    const item: FunctionCallOutput = {
      type: 'function_call',
      id: itemId('fc'),
      call_id: call.id,
      name: call.name,
      arguments: '',
      status: 'in_progress',
    };
    this.response.output.push(item);
    const output_index = this.indexOf(item);
    this.send({ type: 'response.output_item.added', output_index, item: clone(item) });
    // The engine parses a call whole; its arguments arrive as one delta.
    this.send({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index, delta: args });
    this.send({
      type: 'response.function_call_arguments.done',
      item_id: item.id,
      output_index,
      name: call.name,
      arguments: args,
    });
    item.arguments = args;
    item.status = 'completed';
    this.send({ type: 'response.output_item.done', output_index, item: clone(item) });
  }

  private indexOf(item: OutputItem): number {
    return this.response.output.indexOf(item);
  }

  private snapshot(): ResponseObject {
    return clone(this.response);
  }

  private send(event: ResponseEvent): void {
    this.emit?.(event);
  }
}

function clone<T>(value: T): T {
  return structuredClone(value);
}
