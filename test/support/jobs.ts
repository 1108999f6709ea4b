// Helpers for the batch-job tests: put a model and a dataset on a running hearth, submit, follow.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { call } from './http.js';

export { call, type Reply } from './http.js';

/** Uploads a GGUF and creates a model from it, as `ollama create` would. */
export async function createModel(base: string, name: string, ggufPath: string): Promise<string> {
  const bytes = await readFile(ggufPath);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${base}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  if (up.status !== 200 && up.status !== 201) throw new Error(`blob upload: ${up.status} ${await up.text()}`);
  const created = await call(base, '/api/create', { model: name, files: { 'model.gguf': digest }, stream: false });
  if (created.status !== 200) throw new Error(`create ${name}: ${created.status} ${created.text}`);
  return digest;
}

/** Stores a file in the Atlas file store through the files API. */
export async function putFile(base: string, key: string, content: string | Buffer): Promise<void> {
  const res = await fetch(`${base}/api/files/${key.split('/').map(encodeURIComponent).join('/')}`, {
    method: 'PUT',
    body: content,
  });
  if (res.status !== 201) throw new Error(`PUT ${key}: ${res.status} ${await res.text()}`);
}

/** `count` JSONL records {id, text}, ids `r0000`... */
export function jsonlDataset(
  count: number,
  make: (i: number) => Record<string, unknown> = (i) => ({ id: `r${String(i).padStart(4, '0')}`, text: `item ${i}` }),
): string {
  return Array.from({ length: count }, (_, i) => JSON.stringify(make(i))).join('\n') + '\n';
}

/** Polls the job until `until` says so (bounded by `timeoutMs`); returns the last view. */
export async function waitForJob(
  base: string,
  id: string,
  until: (job: any) => boolean,
  timeoutMs = 60_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let job: any;
  while (Date.now() < deadline) {
    const reply = await call(base, `/api/jobs/${id}`).catch(() => null);
    if (reply?.status === 200) {
      job = reply.json;
      if (until(job)) return job;
    }
    await sleep(200);
  }
  throw new Error(
    `job ${id} did not get there within ${timeoutMs} ms; last seen: ${JSON.stringify(job?.state)} ${JSON.stringify(job?.progress)} ${job?.error ?? ''}`,
  );
}

export const finished = (job: any) => ['succeeded', 'failed', 'cancelled'].includes(job.state);
