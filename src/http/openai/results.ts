import { randomBytes } from 'node:crypto';
import type { GenerateResult } from '../../engine/types.js';

/** `chatcmpl-…`, `cmpl-…`: unique per response, as OpenAI's ids are. */
export function responseId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${randomBytes(12).toString('base64url')}`;
}

/**
 * `resp_…`, `msg_…`, `fc_…`, `toolu_…`: the underscore ids of the Responses and
 * Messages APIs (hex, so they are safe in URLs and SQL text).
 */
export function itemId(prefix: 'resp' | 'msg' | 'fc' | 'rs' | 'toolu'): string {
  return `${prefix}_${randomBytes(16).toString('hex')}`;
}

export function unixSeconds(date = new Date()): number {
  return Math.floor(date.getTime() / 1000);
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export function finishReason(result: GenerateResult, toolCalls: number): FinishReason {
  if (toolCalls > 0) return 'tool_calls';
  return result.doneReason === 'length' ? 'length' : 'stop';
}

/** Token counts over the choices of one response: a prompt is counted once however many choices it has. */
export class UsageCounter {
  private promptTokens = 0;
  private completionTokens = 0;

  add(result: GenerateResult, countPrompt: boolean): void {
    if (countPrompt) this.promptTokens += result.promptTokens;
    this.completionTokens += result.evalTokens;
  }

  toJSON(): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
    };
  }
}
