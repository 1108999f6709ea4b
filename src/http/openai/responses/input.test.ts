import { describe, expect, it } from 'vitest';
import { isHearthError } from '../../../errors.js';
import { inputItems, toEngineMessages, toEngineTools } from './input.js';
import { responseCreateSchema } from './schemas.js';

const body = (fields: Record<string, unknown>) => responseCreateSchema.parse({ model: 'm', ...fields });

const badRequest = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (isHearthError(err, 'BAD_REQUEST')) return { message: err.message, param: err.details?.['param'] };
    throw err;
  }
  throw new Error('expected a BAD_REQUEST');
};

describe('Responses input → engine messages', () => {
  it('reads a string as one user message', () => {
    expect(toEngineMessages(inputItems(body({ input: 'hi' })))).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('joins function calls to the assistant turn and names outputs after their function', () => {
    const items = inputItems(
      body({
        input: [
          { role: 'developer', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'What is this?' },
              { type: 'input_image', image_url: 'data:image/png;base64,aGVsbG8=' },
            ],
          },
          { type: 'reasoning', id: 'rs_1', summary: [] },
          {
            type: 'message',
            role: 'assistant',
            content: [{ type: 'output_text', text: 'Checking.', annotations: [] }],
          },
          { type: 'function_call', call_id: 'call_1', name: 'look', arguments: '{"at":"it"}' },
          { type: 'function_call', call_id: 'call_2', name: 'zoom', arguments: '' },
          { type: 'function_call_output', call_id: 'call_1', output: 'a cat' },
        ],
      }),
    );
    expect(toEngineMessages(items)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is this?', images: ['aGVsbG8='] },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [
          { id: 'call_1', name: 'look', arguments: { at: 'it' } },
          { id: 'call_2', name: 'zoom', arguments: {} },
        ],
      },
      { role: 'tool', content: 'a cat', toolName: 'look' },
    ]);
  });

  it('refuses what it cannot honour, naming the field', () => {
    expect(badRequest(() => inputItems(body({ input: [{ type: 'item_reference', id: 'msg_1' }] }))).param).toBe(
      'input.0',
    );
    expect(badRequest(() => inputItems(body({ input: [{ type: 'web_search_call' }] }))).param).toBe('input.0.type');
    const url = badRequest(() =>
      toEngineMessages(
        inputItems(
          body({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] }),
        ),
      ),
    );
    expect(url).toMatchObject({ param: 'input.0.content.0.image_url', message: expect.stringMatching(/data URL/) });
    const args = badRequest(() =>
      toEngineMessages(
        inputItems(body({ input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '[' }] })),
      ),
    );
    expect(args.param).toBe('input.0.arguments');
    expect(badRequest(() => toEngineTools(body({ input: 'hi', tools: [{ type: 'file_search' }] }))).param).toBe(
      'tools.0.type',
    );
  });
});
