// The admin screens' side of /api/ui/admin (docs/ui.md): typed calls through the app's one request helper.
import type {
  AdminModels,
  CreatedKey,
  CreateModelBody,
  JobAnswer,
  JobResults,
  JobsAnswer,
  KeyBody,
  KeysAnswer,
  LogsAnswer,
  NodeState,
  PullAnswer,
  PullsAnswer,
} from '@contract/ui';
import { request } from '../api';

// The types come from the server's contract (src/http/ui/contract.ts), as types only.
export type {
  AdminModel,
  ApiKey,
  Check,
  Job,
  JobEvent,
  KeyScope,
  LoadedModel,
  NodeState,
  Pull,
  PullState,
} from '@contract/ui';

const A = '/api/ui/admin';
const id = encodeURIComponent;

export const admin = {
  models: () => request<AdminModels>('GET', `${A}/models`),
  deleteModel: (name: string) => request('DELETE', `${A}/models?name=${id(name)}`),
  copyModel: (source: string, destination: string) => request('POST', `${A}/models/copy`, { source, destination }),
  createModel: (body: CreateModelBody) => request('POST', `${A}/models/create`, body),
  unload: (name: string) => request('POST', `${A}/models/unload`, { name }),
  keepAlive: (name: string, keepAlive: string) => request('POST', `${A}/models/keep-alive`, { name, keepAlive }),
  pulls: () => request<PullsAnswer>('GET', `${A}/pulls`).then((r) => r.pulls),
  pull: (source: string) => request<PullAnswer>('POST', `${A}/pulls`, { source }).then((r) => r.pull),
  cancelPull: (pullId: string) => request('POST', `${A}/pulls/${id(pullId)}/cancel`, {}),
  keys: () => request<KeysAnswer>('GET', `${A}/keys`).then((r) => r.keys),
  createKey: (body: KeyBody) => request<CreatedKey>('POST', `${A}/keys`, body),
  revokeKey: (name: string) => request('DELETE', `${A}/keys/${id(name)}`),
  jobs: () => request<JobsAnswer>('GET', `${A}/jobs?limit=50`).then((r) => r.jobs),
  job: (jobId: string) => request<JobAnswer>('GET', `${A}/jobs/${id(jobId)}`).then((r) => r.job),
  jobLogs: (jobId: string, after: number) =>
    request<LogsAnswer>('GET', `${A}/jobs/${id(jobId)}/logs?after=${after}`).then((r) => r.events),
  cancelJob: (jobId: string) => request('POST', `${A}/jobs/${id(jobId)}/cancel`, {}),
  retryJob: (jobId: string) => request('POST', `${A}/jobs/${id(jobId)}/retry`, {}),
  jobResults: (jobId: string) => request<JobResults>('GET', `${A}/jobs/${id(jobId)}/results`),
  node: () => request<NodeState>('GET', `${A}/node`),
};

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB" (powers of 1024, as `ollama list` shows sizes). */
export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${UNITS[u]}`;
}

/** Seconds → "1 h 4 min", "3 min 20 s", "12 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

/** "in 4 min" / "forever" for a keep-alive expiry. */
export function expiry(at: string | null): string {
  if (at === null) return 'kept loaded forever';
  const left = (new Date(at).getTime() - Date.now()) / 1000;
  return left <= 0 ? 'unloading' : `unloads in ${duration(left)}`;
}

export const when = (at: string | null) => (at ? new Date(at).toLocaleString() : 'never');
