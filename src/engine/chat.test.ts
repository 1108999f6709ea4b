import { describe, expect, it } from 'vitest';
import { newToolCallId, toChatHistory } from './chat.js';

describe('chat history', () => {
  it('maps roles, and attaches tool results to the calls they answer', () => {
    const history = toChatHistory([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather and time in Paris?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } },
          { id: 'call_2', name: 'get_time', arguments: {} },
        ],
      },
      { role: 'tool', toolName: 'get_time', content: '12:00' },
      { role: 'tool', toolName: 'get_weather', content: '{"temperature": 21}' },
      { role: 'assistant', content: 'Sunny, 21 degrees, at noon.' },
    ]);
    expect(history).toEqual([
      { type: 'system', text: 'Be brief.' },
      { type: 'user', text: 'Weather and time in Paris?' },
      {
        type: 'model',
        response: [
          { type: 'functionCall', name: 'get_weather', params: { city: 'Paris' }, result: { temperature: 21 } },
          { type: 'functionCall', name: 'get_time', params: {}, result: '12:00' },
        ],
      },
      { type: 'model', response: ['Sunny, 21 degrees, at noon.'] },
    ]);
  });

  it('keeps a tool result with no call to answer as text the model can read', () => {
    const history = toChatHistory([
      { role: 'user', content: 'hi' },
      { role: 'tool', toolName: 'lookup', content: 'found it' },
    ]);
    expect(history[1]).toEqual({ type: 'user', text: 'Result of tool lookup:\nfound it' });
  });

  it('gives an unanswered call a null result', () => {
    const history = toChatHistory([
      { role: 'assistant', content: '', toolCalls: [{ id: 'x', name: 'f', arguments: {} }] },
    ]);
    expect(history[0]).toEqual({
      type: 'model',
      response: [{ type: 'functionCall', name: 'f', params: {}, result: null }],
    });
  });

  it('makes OpenAI-style call ids', () => {
    const ids = new Set([newToolCallId(), newToolCallId(), newToolCallId()]);
    expect(ids.size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^call_[A-Za-z0-9_-]{24}$/);
  });
});
