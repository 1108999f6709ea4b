// The admin screens' side of /api/ui/admin (docs/ui.md): typed calls through the app's one request helper.
import { request } from '../api';

export type PullState = 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface Pull {
  id: string;
  source: string;
  model: string | null;
  state: PullState;
  status: string;
  completed: number;
  total: number | null;
  bytesPerSecond: number | null;
  error: string | null;
  node: string;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface AdminModel {
  name: string;
  digest: string;
  size: number;
  format: string;
  family: string;
  parameterSize: string;
  quantization: string;
  contextLength: number | null;
  capabilities: string[];
  license: string;
  parentModel: string | null;
  modifiedAt: string;
}

export interface LoadedModel {
  name: string;
  digest: string;
  size: number;
  sizeVram: number;
  contextLength: number;
  expiresAt: string | null;
  activeSequences: number;
}

export interface ApiKey {
  id: string;
  name: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface Job {
  id: string;
  type: string;
  state: string;
  model: string;
  input: string;
  output: string;
  progress: {
    records_total: number | null;
    records_done: number;
    records_ok: number;
    records_failed: number;
    shards_total: number | null;
    shards_committed: number;
  };
  attempts: number;
  error: string | null;
  node: string | null;
  manifest: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface JobEvent {
  id: number;
  at: string;
  level: 'info' | 'warn' | 'error';
  node: string | null;
  message: string;
}

export interface Check {
  ok: boolean;
  detail: string;
}

export interface NodeState {
  node: { id: string; hostname: string; version: string };
  engine: {
    engine: string;
    backend: string;
    binary: string | null;
    gpuHealthy: boolean;
    setting: string;
    gpuSetting: string;
  };
  vram: { total: number; used: number } | null;
  cache: { dir: string; bytes: number; entries: number; maxBytes: number };
  loaded: Array<{ name: string; size: number; sizeVram: number; expiresAt: string | null }>;
  atlas: { database: Check; files: Check };
  exposure: { report: string[]; warnings: string[]; problems: string[] };
}

const A = '/api/ui/admin';
const id = encodeURIComponent;

export const admin = {
  models: () => request<{ models: AdminModel[]; loaded: LoadedModel[] }>('GET', `${A}/models`),
  deleteModel: (name: string) => request('DELETE', `${A}/models?name=${id(name)}`),
  copyModel: (source: string, destination: string) => request('POST', `${A}/models/copy`, { source, destination }),
  createModel: (body: { name: string; modelfile?: string; atlasPath?: string }) =>
    request('POST', `${A}/models/create`, body),
  unload: (name: string) => request('POST', `${A}/models/unload`, { name }),
  keepAlive: (name: string, keepAlive: string) => request('POST', `${A}/models/keep-alive`, { name, keepAlive }),
  pulls: () => request<{ pulls: Pull[] }>('GET', `${A}/pulls`).then((r) => r.pulls),
  pull: (source: string) => request<{ pull: Pull }>('POST', `${A}/pulls`, { source }).then((r) => r.pull),
  cancelPull: (pullId: string) => request('POST', `${A}/pulls/${id(pullId)}/cancel`, {}),
  keys: () => request<{ keys: ApiKey[] }>('GET', `${A}/keys`).then((r) => r.keys),
  createKey: (body: { name: string; scopes: string[]; expires?: string }) =>
    request<{ key: string; info: ApiKey }>('POST', `${A}/keys`, body),
  revokeKey: (name: string) => request('DELETE', `${A}/keys/${id(name)}`),
  jobs: () => request<{ jobs: Job[] }>('GET', `${A}/jobs?limit=50`).then((r) => r.jobs),
  job: (jobId: string) => request<{ job: Job }>('GET', `${A}/jobs/${id(jobId)}`).then((r) => r.job),
  jobLogs: (jobId: string, after: number) =>
    request<{ events: JobEvent[] }>('GET', `${A}/jobs/${id(jobId)}/logs?after=${after}`).then((r) => r.events),
  cancelJob: (jobId: string) => request('POST', `${A}/jobs/${id(jobId)}/cancel`, {}),
  retryJob: (jobId: string) => request('POST', `${A}/jobs/${id(jobId)}/retry`, {}),
  jobResults: (jobId: string) =>
    request<{ output: string; manifest: Record<string, unknown>; preview: string[]; previewFile: string }>(
      'GET',
      `${A}/jobs/${id(jobId)}/results`,
    ),
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
