// One node on the canvas: typed sockets (handles), widgets from /object_info, and what the last
// run did to it (running, progress, cached, error, outputs).
import { Handle, type Node, type NodeProps, NodeResizer, Position } from '@xyflow/react';
import { createContext, memo, useContext } from 'react';
import { type FileRef, fileUrl, type NodeOutput } from './client';
import { CONTROL_VALUES, type ControlValue, type InputShape, type NodeShape, type ObjectInfo, shapeOf } from './format';

export interface ComfyNodeData extends Record<string, unknown> {
  type: string;
  title?: string;
  collapsed?: boolean;
  mode?: number;
  widgets: Record<string, unknown>;
  control: Record<string, ControlValue>;
  unknownValues?: unknown;
}
export type ComfyFlowNode = Node<ComfyNodeData, 'comfy'>;
export interface GroupData extends Record<string, unknown> {
  title: string;
  color?: string;
  fontSize?: number;
}
export type GroupFlowNode = Node<GroupData, 'comfyGroup'>;

/** The last run, as the page follows it. */
export interface RunState {
  promptId: string | null;
  status: 'idle' | 'queued' | 'running' | 'success' | 'error' | 'interrupted';
  running: string | null;
  progress: Record<string, { value: number; max: number }>;
  cached: string[];
  executed: string[];
  errors: Record<string, { message: string; inputs: Record<string, string> }>;
  outputs: Record<string, NodeOutput>;
}
export const IDLE: RunState = {
  promptId: null,
  status: 'idle',
  running: null,
  progress: {},
  cached: [],
  executed: [],
  errors: {},
  outputs: {},
};

export interface EditorApi {
  infos: ObjectInfo;
  run: RunState;
  /** inputs fed by a link, by node id */
  linked: Record<string, string[]>;
  setWidget(id: string, name: string, value: unknown): void;
  setControl(id: string, name: string, value: ControlValue): void;
  toggleCollapsed(id: string): void;
  renameGroup(id: string, title: string): void;
}
export const EditorContext = createContext<EditorApi | null>(null);

const shapes = new WeakMap<object, NodeShape>();
function cachedShape(info: ObjectInfo[string]): NodeShape {
  const known = shapes.get(info);
  if (known) return known;
  const shape = shapeOf(info);
  shapes.set(info, shape);
  return shape;
}

/** A socket's colour by type, as ComfyUI users know them roughly. */
export function typeColor(type: string): string {
  const colors: Record<string, string> = {
    STRING: '#77bb66',
    INT: '#6fa8dc',
    FLOAT: '#a8c8e8',
    BOOLEAN: '#c090e0',
    JSON: '#e0a040',
    IMAGE: '#64b5f6',
    EMBEDDING: '#d07070',
    LATENT: '#ff9cf9',
    MODEL: '#b39ddb',
    CLIP: '#ffd500',
    VAE: '#ff6e6e',
    CONDITIONING: '#ffa931',
  };
  return colors[type] ?? '#999999';
}

function Widget(props: { nodeId: string; input: InputShape; value: unknown; error?: string; linked: boolean }) {
  const editor = useContext(EditorContext)!;
  const { input, nodeId, value } = props;
  const label = `${input.name}`;
  const set = (v: unknown) => editor.setWidget(nodeId, input.name, v);
  const common = { 'aria-label': label, className: 'nodrag', 'aria-invalid': props.error ? true : undefined };
  if (props.linked) return <span className="widget-linked">linked</span>;
  if (input.choices) {
    return (
      <select {...common} value={String(value ?? '')} onChange={(e) => set(e.target.value)}>
        {input.choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  }
  if (input.type === 'BOOLEAN') {
    return <input {...common} type="checkbox" checked={value === true} onChange={(e) => set(e.target.checked)} />;
  }
  if (input.type === 'INT' || input.type === 'FLOAT') {
    const o = input.options;
    return (
      <input
        {...common}
        type="number"
        value={typeof value === 'number' ? value : Number(value ?? 0)}
        min={typeof o['min'] === 'number' ? o['min'] : undefined}
        max={typeof o['max'] === 'number' && o['max'] <= Number.MAX_SAFE_INTEGER ? o['max'] : undefined}
        step={typeof o['step'] === 'number' ? o['step'] : input.type === 'INT' ? 1 : 'any'}
        onChange={(e) => set(input.type === 'INT' ? Math.trunc(Number(e.target.value)) : Number(e.target.value))}
      />
    );
  }
  if (input.options['multiline']) {
    return (
      <textarea
        {...common}
        className="nodrag nowheel"
        rows={3}
        value={String(value ?? '')}
        onChange={(e) => set(e.target.value)}
      />
    );
  }
  return <input {...common} type="text" value={String(value ?? '')} onChange={(e) => set(e.target.value)} />;
}

function Outputs(props: { output: NodeOutput }) {
  const images = (props.output['images'] ?? []) as FileRef[];
  const texts = [...(props.output['text'] ?? []), ...(props.output['json'] ?? [])];
  return (
    <div className="node-outputs">
      {images.map((img) => (
        <a
          key={`${img.subfolder}/${img.filename}`}
          href={fileUrl(img)}
          target="_blank"
          rel="noreferrer"
          className="nodrag"
        >
          <img src={fileUrl(img)} alt={`output ${img.filename}`} loading="lazy" />
        </a>
      ))}
      {texts.map((t, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: outputs have no identity beyond their place
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling output must be reachable by keyboard (axe)
        <pre key={i} className="node-text nodrag nowheel" tabIndex={0}>
          {typeof t === 'string' ? t : JSON.stringify(t, null, 2)}
        </pre>
      ))}
    </div>
  );
}

export const ComfyNode = memo(function ComfyNode(props: NodeProps<ComfyFlowNode>) {
  const editor = useContext(EditorContext)!;
  const { id, data, selected } = props;
  const info = editor.infos[data.type];
  const shape = info ? cachedShape(info) : { inputs: [], outputs: [] };
  const run = editor.run;
  const error = run.errors[id];
  const progress = run.progress[id];
  const state =
    run.running === id
      ? 'running'
      : error
        ? 'failed'
        : run.cached.includes(id)
          ? 'cached'
          : run.executed.includes(id)
            ? 'done'
            : '';
  const title = data.title ?? info?.display_name ?? data.type;
  const linkedInputs = editor.linked[id] ?? [];
  const classes = ['comfy-node', state, selected ? 'selected' : '', data.mode === 2 || data.mode === 4 ? 'muted' : '']
    .filter(Boolean)
    .join(' ');
  return (
    <section className={classes} data-node-id={id} data-node-type={data.type} aria-label={`${title} node ${id}`}>
      {!data.collapsed && <NodeResizer isVisible={selected} minWidth={200} minHeight={40} />}
      <div className="node-head">
        <button
          type="button"
          className="icon node-collapse nodrag"
          aria-label={data.collapsed ? `Expand ${title}` : `Collapse ${title}`}
          aria-expanded={!data.collapsed}
          onClick={() => editor.toggleCollapsed(id)}
        >
          {data.collapsed ? '▸' : '▾'}
        </button>
        <span className="node-title">{title}</span>
        {state && <span className={`node-state ${state}`}>{state}</span>}
        <span className="node-id">#{id}</span>
      </div>
      {progress && progress.max > 0 && (
        <progress
          className="node-progress"
          value={progress.value}
          max={progress.max}
          aria-label={`${title} progress`}
        />
      )}
      {!info && <p className="node-error">Unknown node type {data.type} on this server.</p>}
      {error && (
        <p className="node-error" role="alert">
          {error.message}
        </p>
      )}
      {/* Collapsed nodes keep their sockets (hidden) so links stay attached. */}
      <div className={data.collapsed ? 'node-body collapsed' : 'node-body'}>
        {shape.outputs.map((o, slot) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: an output is its slot number
          <div className="socket-row out" key={slot}>
            <span className="socket-label">{o.name}</span>
            <Handle
              type="source"
              position={Position.Right}
              id={`o${slot}`}
              className="socket"
              style={{ background: typeColor(o.type) }}
              title={o.type}
            />
          </div>
        ))}
        {shape.inputs.map((input) => {
          const inputError = error?.inputs[input.name];
          return (
            <div className={inputError ? 'socket-row in has-error' : 'socket-row in'} key={input.name}>
              <Handle
                type="target"
                position={Position.Left}
                id={`i:${input.name}`}
                className={input.widget ? 'socket widget-socket' : 'socket'}
                style={{ background: typeColor(input.type) }}
                title={input.type}
              />
              <div className="socket-label">
                <span>
                  {input.name}
                  {!input.widget && <small> {input.type}</small>}
                </span>
                {input.widget && !data.collapsed && (
                  <Widget
                    nodeId={id}
                    input={input}
                    value={data.widgets[input.name]}
                    linked={linkedInputs.includes(input.name)}
                    {...(inputError ? { error: inputError } : {})}
                  />
                )}
              </div>
              {input.control && !data.collapsed && !linkedInputs.includes(input.name) && (
                <select
                  className="nodrag control"
                  aria-label={`${input.name} control after generate`}
                  value={data.control[input.name] ?? 'fixed'}
                  onChange={(e) => editor.setControl(id, input.name, e.target.value as ControlValue)}
                >
                  {CONTROL_VALUES.map((c) => (
                    <option key={c}>{c}</option>
                  ))}
                </select>
              )}
              {inputError && <span className="input-error">{inputError}</span>}
            </div>
          );
        })}
      </div>
      {run.outputs[id] && !data.collapsed && <Outputs output={run.outputs[id]} />}
    </section>
  );
});

export const GroupNode = memo(function GroupNode(props: NodeProps<GroupFlowNode>) {
  const editor = useContext(EditorContext)!;
  return (
    <div className="comfy-group" style={{ borderColor: props.data.color ?? '#3f789e' }}>
      <NodeResizer isVisible={props.selected} minWidth={120} minHeight={60} />
      <input
        className="group-title nodrag"
        aria-label="Group title"
        value={props.data.title}
        onChange={(e) => editor.renameGroup(props.id, e.target.value)}
        style={{ background: props.data.color ?? '#3f789e' }}
      />
    </div>
  );
});
