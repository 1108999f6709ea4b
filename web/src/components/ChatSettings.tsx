import { useEffect, useState } from 'react';
import { api, type ChatParams, type KnowledgeBase, type ModelInfo, type Preset, request, type User } from '../api';
import type { Toast } from './Toasts';

interface Settings {
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases every reply answers from */
  knowledge?: string[];
}

/** The numbers people tune, by Ollama option name. */
const FIELDS = [
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 0.05, hint: 'higher is more varied' },
  { key: 'num_ctx', label: 'Context length', min: 256, max: 1_048_576, step: 256, hint: 'tokens the model sees' },
  { key: 'num_predict', label: 'Max tokens', min: -1, max: 1_048_576, step: 1, hint: '-1: no limit' },
] as const;

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
  const [presetName, setPresetName] = useState('');
  const [share, setShare] = useState(false);
  const [bases, setBases] = useState<KnowledgeBase[]>([]);
  const [presetBases, setPresetBases] = useState<string[]>([]);
  useEffect(() => {
    request<{ bases: KnowledgeBase[] }>('GET', '/api/ui/knowledge')
      .then((r) => setBases(r.bases))
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
  }, [settings]);

  const save = async () => {
    const params: ChatParams = { ...settings.params };
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
        {FIELDS.map((f) => (
          <label key={f.key}>
            {f.label}
            <input
              type="number"
              min={f.min}
              max={f.key === 'num_ctx' && info?.contextLength ? info.contextLength : f.max}
              step={f.step}
              placeholder={f.key === 'num_ctx' && info ? String(info.defaultNumCtx) : 'default'}
              value={values[f.key] ?? ''}
              onChange={(e) => setValues((v) => ({ ...v, [f.key]: e.target.value }))}
              aria-describedby={`${props.id}-${f.key}-hint`}
            />
            <small id={`${props.id}-${f.key}-hint`} className="muted">
              {f.hint}
            </small>
          </label>
        ))}
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
