import { describe, expect, it } from 'vitest';
import { isHearthError } from '../errors.js';
import type { ChatRequest, ModelSpec } from './types.js';
import { checkImages } from './vision.js';

const file = async () => ({ path: '', release: () => {} });
const seeing: ModelSpec = {
  name: 'seeing:latest',
  digest: 'a',
  size: 1,
  resolveFile: file,
  projector: { digest: 'b', resolveFile: file },
};
const blind: ModelSpec = { name: 'blind:latest', digest: 'a', size: 1, resolveFile: file };

function chat(model: ModelSpec, images: string[]): ChatRequest {
  return {
    kind: 'chat',
    model,
    messages: [{ role: 'user', content: 'x', images }],
    load: { numCtx: 512, numBatch: 512, numGpu: 0, numThread: 1, useMmap: true, numParallel: 1 },
    keepAliveMs: 0,
    sampling: {} as ChatRequest['sampling'],
  };
}

function refusal(run: () => void): string {
  try {
    run();
  } catch (err) {
    if (isHearthError(err)) return `${err.code} ${err.status}: ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('checkImages', () => {
  it("refuses images for a model without a projector, in Ollama's words", () => {
    expect(refusal(() => checkImages(chat(blind, ['AAAA']), true))).toBe(
      'ENGINE_CAPABILITY 400: model "blind:latest" does not support images',
    );
  });

  it('refuses images on the in-process engine, naming the server engine', () => {
    expect(refusal(() => checkImages(chat(seeing, ['AAAA']), false))).toMatch(
      /^ENGINE_CAPABILITY 400: .*server engine \(llama-server\).*hearth engine build/,
    );
  });

  it('takes base64 on the server engine and refuses anything else', () => {
    expect(refusal(() => checkImages(chat(seeing, ['iVBORw0KGgo=']), true))).toBe('accepted');
    expect(refusal(() => checkImages(chat(seeing, ['iVBORw0KGgo=', 'no!']), true))).toMatch(
      /^BAD_REQUEST 400: images\[1\] is not base64/,
    );
    expect(refusal(() => checkImages(chat(blind, []), false))).toBe('accepted');
  });
});
