import { describe, expect, it } from 'vitest';
import { isHearthError } from '../../errors.js';
import { toEngineFormat, toEngineMessages } from './messages.js';
import { chatMessageSchema } from './schemas.js';

const parse = (messages: unknown[]) => messages.map((m) => chatMessageSchema.parse(m));

describe('toEngineMessages', () => {
  it('maps developer to system, joins text parts and keeps inline images', () => {
    const out = toEngineMessages(
      parse([
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } },
            { type: 'text', text: 'this?' },
          ],
        },
      ]),
    );
    expect(out).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is\nthis?', images: ['aGVsbG8='] },
    ]);
  });

  it('names a tool result after the call it answers and parses call arguments', () => {
    const out = toEngineMessages(
      parse([
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
            { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_b', content: '12:00' },
        { role: 'tool', tool_call_id: 'call_a', content: '{"temp":3}' },
      ]),
    );
    expect(out[1]).toEqual({
      role: 'assistant',
      content: '',
      toolCalls: [
        { id: 'call_a', name: 'get_weather', arguments: { city: 'Oslo' } },
        { id: 'call_b', name: 'get_time', arguments: {} },
      ],
    });
    expect(out.slice(2)).toEqual([
      { role: 'tool', content: '12:00', toolName: 'get_time' },
      { role: 'tool', content: '{"temp":3}', toolName: 'get_weather' },
    ]);
  });

  it('refuses arguments that are not a JSON object, naming the field', () => {
    const call = () =>
      toEngineMessages(
        parse([
          { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1]' } }] },
        ]),
      );
    let caught: unknown;
    try {
      call();
    } catch (err) {
      caught = err;
    }
    expect(isHearthError(caught, 'BAD_REQUEST')).toBe(true);
    expect(caught).toMatchObject({ details: { param: 'messages.0.tool_calls.0.function.arguments' } });
    expect((caught as Error).message).toMatch(/must be a JSON object/);
  });
});

describe('toEngineFormat', () => {
  it('maps json_object and json_schema to grammar formats, text to none', () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } } };
    expect(toEngineFormat({ type: 'text' })).toBeUndefined();
    expect(toEngineFormat({ type: 'json_object' })).toBe('json');
    expect(toEngineFormat({ type: 'json_schema', json_schema: { name: 'x', schema } })).toEqual({ schema });
    expect(toEngineFormat({ type: 'json_schema', json_schema: { name: 'x' } })).toBe('json');
  });
});
