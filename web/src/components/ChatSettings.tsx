import { useEffect, useState } from 'react';
import { api, type ChatParams, type KnowledgeBase, type ModelInfo, type Preset, type User } from '../api';
import type { Toast } from './Toasts';

interface Settings {
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases every reply answers from */
  knowledge?: string[];
}

interface Field {
  key: string;
  label: string;
  min: number;
  max: number;
  step: number;
  /** Ollama's default, shown when neither the chat nor the model sets it */
  default: string;
  hint: string;
  integer?: boolean;
}

/**
 * Every sampling option Ollama has (by its option name, as the API takes them), with the bounds the
 * page checks before saving; the server checks them again with the one option parser.
 */
const FIELDS: readonly Field[] = [
  {
    key: 'temperature',
    label: 'Temperature',
    min: 0,
    max: 2,
    step: 0.05,
    default: '0.8',
    hint: 'higher is more varied',
  },
  {
    key: 'top_p',
    label: 'Top P',
    min: 0,
    max: 1,
    step: 0.01,
    default: '0.9',
    hint: 'keep the likeliest tokens up to this mass',
  },
  {
    key: 'top_k',
    label: 'Top K',
    min: 0,
    max: 1000,
    step: 1,
    default: '40',
    hint: 'keep this many tokens (0: all)',
    integer: true,
  },
  {
    key: 'min_p',
    label: 'Min P',
    min: 0,
    max: 1,
    step: 0.01,
    default: '0',
    hint: 'drop tokens under this share of the likeliest',
  },
  { key: 'typical_p', label: 'Typical P', min: 0, max: 1, step: 0.01, default: '1', hint: '1: off' },
  { key: 'repeat_penalty', label: 'Repeat penalty', min: 0, max: 2, step: 0.05, default: '1.1', hint: '1: off' },
  {
    key: 'repeat_last_n',
    label: 'Repeat window',
    min: -1,
    max: 1_048_576,
    step: 1,
    default: '64',
    hint: 'tokens looked back at (-1: the whole context)',
    integer: true,
  },
  { key: 'presence_penalty', label: 'Presence penalty', min: -2, max: 2, step: 0.1, default: '0', hint: '0: off' },
  { key: 'frequency_penalty', label: 'Frequency penalty', min: -2, max: 2, step: 0.1, default: '0', hint: '0: off' },
  {
    key: 'seed',
    label: 'Seed',
    min: -2_147_483_648,
    max: 2_147_483_647,
    step: 1,
    default: 'random',
    hint: 'the same seed gives the same reply',
    integer: true,
  },
  {
    key: 'num_predict',
    label: 'Max tokens',
    min: -2,
    max: 1_048_576,
    step: 1,
    default: '-1',
    hint: '-1: no limit, -2: fill the context',
    integer: true,
  },
  {
    key: 'num_ctx',
    label: 'Context length',
    min: 16,
    max: 1_048_576,
    step: 256,
    default: '',
    hint: 'tokens the model sees',
    integer: true,
  },
];

/** A field's bounds for this model: the context is at most what the model was trained on. */
function boundsOf(f: Field, info: ModelInfo | undefined): { min: number; max: number } {
  if (f.key === 'num_ctx' && info?.contextLength) return { min: f.min, max: info.contextLength };
  return { min: f.min, max: f.max };
}

/** What the model uses when the chat sets nothing: its Modelfile's value, or Ollama's default. */
function placeholderOf(f: Field, info: ModelInfo | undefined): string {
  const own = info?.parameters?.[f.key];
  if (typeof own === 'number') return String(own);
  if (f.key === 'num_ctx') {
    if (!info) return 'default';
    return String(info.contextLength ? Math.min(info.defaultNumCtx, info.contextLength) : info.defaultNumCtx);
  }
  return f.default;
}

/** Checks one typed value; the message says what is allowed. */
function problemOf(f: Field, raw: string, info: ModelInfo | undefined): string | null {
  if (raw === '') return null;
  const n = Number(raw);
  const { min, max } = boundsOf(f, info);
  if (!Number.isFinite(n) || (f.integer && !Number.isInteger(n))) {
    return `${f.label} must be ${f.integer ? 'a whole number' : 'a number'}.`;
  }
  if (n < min || n > max) {
    const why = f.key === 'num_ctx' && info?.contextLength ? ` (${info.name} was trained on ${max} tokens)` : '';
    return `${f.label} must be from ${min} to ${max}${why}.`;
  }
  return null;
}

/** Per-chat system prompt and parameters, and presets (named model + prompt + parameters). */
export function ChatSettings(props: {
  id: string;
  user: User;
  model: string | null;
  settings: Settings;
  presets: Preset[];
  models: ModelInfo[];
  onChange: (next: Partial<Settings>) => Promise<void>;
  onPresetsChanged: () => void;
  toast: (t: Omit<Toast, 'id'>) => void;
}) {
  const { settings } = props;
  const [system, setSystem] = useState(settings.systemPrompt ?? '');
  const [values, setValues] = useState<Record<string, string>>({});
  const [stop, setStop] = useState('');
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [presetName, setPresetName] = useState('');
  const [share, setShare] = useState(false);
  const [bases, setBases] = useState<KnowledgeBase[]>([]);
  const [presetBases, setPresetBases] = useState<string[]>([]);
  useEffect(() => {
    api
      .knowledgeBases()
      .then(setBases)
      .catch(() => setBases([]));
  }, []);
  useEffect(() => setPresetBases(settings.knowledge ?? []), [settings.knowledge]);
  const info = props.models.find((m) => m.name === props.model);

  useEffect(() => {
    setSystem(settings.systemPrompt ?? '');
    setValues(
      Object.fromEntries(
        FIELDS.map((f) => [f.key, settings.params[f.key] === undefined ? '' : String(settings.params[f.key])]),
      ),
    );
    const stops = settings.params['stop'];
    setStop(Array.isArray(stops) ? stops.join('\n') : '');
    setProblems({});
  }, [settings]);

  const save = async () => {
    const found: Record<string, string> = {};
    for (const f of FIELDS) {
      const problem = problemOf(f, values[f.key]?.trim() ?? '', info);
      if (problem) found[f.key] = problem;
    }
    setProblems(found);
    if (Object.keys(found).length > 0) {
      props.toast({ text: Object.values(found)[0] ?? '', kind: 'error' });
      return;
    }
    const params: ChatParams = { ...settings.params };
    const stops = stop
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    if (stops.length) params['stop'] = stops;
    else delete params['stop'];
    for (const f of FIELDS) {
      const raw = values[f.key]?.trim() ?? '';
      if (raw === '') delete params[f.key];
      else params[f.key] = Number(raw);
    }
    await props.onChange({ systemPrompt: system.trim() ? system : null, params });
    props.toast({ text: 'Chat settings saved.' });
  };

  const applyPreset = async (id: string) => {
    const preset = props.presets.find((p) => p.id === id);
    if (!preset) return;
    await props.onChange({
      ...(preset.model ? { model: preset.model } : {}),
      systemPrompt: preset.systemPrompt,
      params: preset.params,
      knowledge: preset.knowledge ?? [],
    });
    props.toast({ text: `Preset “${preset.name}” applied.` });
  };

  const savePreset = async () => {
    if (!presetName.trim()) return;
    try {
      await api.createPreset({
        name: presetName.trim(),
        model: props.model,
        systemPrompt: settings.systemPrompt,
        params: settings.params,
        knowledge: presetBases,
        shared: share,
      });
      setPresetName('');
      props.onPresetsChanged();
      props.toast({ text: 'Preset saved.' });
    } catch (err) {
      props.toast({ text: (err as Error).message, kind: 'error' });
    }
  };

  return (
    <section id={props.id} className="chat-settings" aria-label="Chat settings">
      <div className="settings-grid">
        <label className="wide">
          System prompt
          <textarea
            value={system}
            rows={3}
            onChange={(e) => setSystem(e.target.value)}
            placeholder="The model’s own, if empty"
          />
        </label>
        {FIELDS.map((f) => {
          const { min, max } = boundsOf(f, info);
          const problem = problems[f.key];
          return (
            <div key={f.key} className="field">
              <label htmlFor={`${props.id}-${f.key}`}>{f.label}</label>
              <input
                id={`${props.id}-${f.key}`}
                type="number"
                inputMode={f.integer ? 'numeric' : 'decimal'}
                min={min}
                max={max}
                step={f.step}
                placeholder={placeholderOf(f, info)}
                value={values[f.key] ?? ''}
                onChange={(e) => setValues((v) => ({ ...v, [f.key]: e.target.value }))}
                aria-invalid={problem ? true : undefined}
                aria-describedby={`${props.id}-${f.key}-hint`}
              />
              <small id={`${props.id}-${f.key}-hint`} className={problem ? 'error' : 'muted'}>
                {problem ?? (f.key === 'num_ctx' && info?.contextLength ? `${f.hint}, at most ${max}` : f.hint)}
              </small>
            </div>
          );
        })}
        <label className="wide">
          Stop sequences
          <textarea
            value={stop}
            rows={2}
            onChange={(e) => setStop(e.target.value)}
            placeholder="One per line; the reply ends where one appears"
          />
        </label>
      </div>
      <div className="settings-actions">
        <button type="button" className="primary" onClick={() => void save()}>
          Save settings
        </button>
        <label>
          <span className="visually-hidden">Apply a preset</span>
          <select value="" onChange={(e) => void applyPreset(e.target.value)} aria-label="Apply a preset">
            <option value="">Apply a preset…</option>
            {props.presets.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
                {p.shared ? ' (shared)' : ''}
              </option>
            ))}
          </select>
        </label>
        <input
          aria-label="New preset name"
          placeholder="Save as preset…"
          value={presetName}
          onChange={(e) => setPresetName(e.target.value)}
        />
        {bases.length > 0 && (
          <select
            multiple
            aria-label="Knowledge bases of the new preset"
            title="Knowledge bases a chat started from the preset answers from"
            value={presetBases}
            onChange={(e) => setPresetBases([...e.target.selectedOptions].map((o) => o.value))}
          >
            {bases.map((b) => (
              <option key={b.id} value={b.name}>
                #{b.name}
              </option>
            ))}
          </select>
        )}
        {props.user.role === 'admin' && (
          <label className="inline">
            <input type="checkbox" checked={share} onChange={(e) => setShare(e.target.checked)} /> share with everyone
          </label>
        )}
        <button type="button" onClick={() => void savePreset()} disabled={!presetName.trim()}>
          Save preset
        </button>
      </div>
      {props.presets.some((p) => p.editable) && (
        <ul className="preset-list" aria-label="Your presets">
          {props.presets
            .filter((p) => p.editable)
            .map((p) => (
              <li key={p.id}>
                {p.name}
                {p.shared && <span className="badge">shared</span>}
                <button
                  type="button"
                  className="icon"
                  aria-label={`Delete preset ${p.name}`}
                  onClick={() =>
                    void api
                      .deletePreset(p.id)
                      .then(props.onPresetsChanged)
                      .catch((err: Error) => props.toast({ text: err.message, kind: 'error' }))
                  }
                >
                  ×
                </button>
              </li>
            ))}
        </ul>
      )}
    </section>
  );
}
