import { describe, expect, it } from 'vitest';
import { isHearthError } from '../../errors.js';
import { messageCreateSchema } from './schemas.js';
import { systemPrompt, toEngineMessages, toEngineToolChoice, toEngineTools } from './translate.js';

const body = (fields: Record<string, unknown>) =>
  messageCreateSchema.parse({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...fields });

const badRequest = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (isHearthError(err, 'BAD_REQUEST')) return { message: err.message, param: err.details?.['param'] };
    throw err;
  }
  throw new Error('expected a BAD_REQUEST');
};

describe('Anthropic messages → engine messages', () => {
  it('turns tool_use into tool calls and tool_result into tool messages named after the function', () => {
    const b = body({
      system: [
        { type: 'text', text: 'Be brief.' },
        { type: 'text', text: 'Be kind.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'hmm', signature: 'x' },
            { type: 'text', text: 'Let me check.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '3 degrees' }] },
            { type: 'text', text: 'And tomorrow?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'aGVsbG8=' } },
          ],
        },
      ],
    });
    expect(systemPrompt(b)).toBe('Be brief.\nBe kind.');
    expect(toEngineMessages(b)).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: 'Let me check.',
        toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Oslo' } }],
      },
      { role: 'tool', content: '3 degrees', toolName: 'get_weather' },
      { role: 'user', content: 'And tomorrow?', images: ['aGVsbG8='] },
    ]);
  });

  it('refuses what it cannot honour, naming the field', () => {
    const orphan = badRequest(() =>
      toEngineMessages(
        body({
          messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'x' }] }],
        }),
      ),
    );
    expect(orphan.param).toBe('messages.0.content.0.tool_use_id');
    const url = badRequest(() =>
      toEngineMessages(
        body({
          messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] }],
        }),
      ),
    );
    expect(url.message).toMatch(/base64.*does not fetch/);
    const doc = badRequest(() =>
      toEngineMessages(body({ messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] })),
    );
    expect(doc).toMatchObject({ param: 'messages.0.content.0.type', message: expect.stringMatching(/document/) });
    const server = badRequest(() => toEngineTools(body({ tools: [{ type: 'bash_20250124', name: 'bash' }] })));
    expect(server.param).toBe('tools.0.type');
  });

  it('maps tool_choice onto the engine: any → required, tool → its name', () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object' } }];
    const choice = (tool_choice: unknown) => {
      const b = body({ tools, tool_choice });
      return toEngineToolChoice(b, toEngineTools(b));
    };
    expect(choice({ type: 'any' })).toBe('required');
    expect(choice({ type: 'none' })).toBe('none');
    expect(choice({ type: 'tool', name: 'get_weather' })).toEqual({ name: 'get_weather' });
    expect(badRequest(() => choice({ type: 'tool', name: 'other' })).param).toBe('tool_choice.name');
  });
});
