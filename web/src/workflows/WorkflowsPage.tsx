// The Workflows page: a node editor for ComfyUI-format workflows (React Flow), loaded only when the
// page is opened (App.tsx imports it lazily). docs/ui.md describes it.
import '@xyflow/react/dist/style.css';
import './editor.css';
import {
  addEdge,
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  type Connection,
  Controls,
  type Edge,
  type EdgeChange,
  MiniMap,
  type Node,
  type NodeChange,
  ReactFlow,
  ReactFlowProvider,
  useNodesInitialized,
  useReactFlow,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { User } from '../api';
import { Dialog } from '../components/Dialog';
import { type Toast, Toasts } from '../components/Toasts';
import {
  ComfyNode,
  type ComfyNodeData,
  type EditorApi,
  EditorContext,
  type GroupData,
  GroupNode,
  IDLE,
  type RunState,
  typeColor,
} from './ComfyNode';
import {
  workflows as api,
  fileUrl,
  type GalleryItem,
  type HistoryEntry,
  PromptRefused,
  type QueueItem,
} from './client';
import {
  type ApiPrompt,
  afterQueue,
  apiToGraph,
  type Graph,
  graphToApi,
  graphToUi,
  isUiWorkflow,
  newNode,
  type ObjectInfo,
  shapeOf,
  typesMatch,
  uiToGraph,
} from './format';
import { workflowFromPng } from './png';

type FlowNode = Node<ComfyNodeData, 'comfy'> | Node<GroupData, 'comfyGroup'>;
const nodeTypes = { comfy: ComfyNode, comfyGroup: GroupNode };
const LAST_PROMPT = 'hearth.workflows.lastPrompt';
const TAB = 'hearth.workflows.tab';

/** This browser's id for live frames: kept, so a reopened page hears the run it queued. */
function tabId(): string {
  let id = localStorage.getItem(TAB);
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem(TAB, id);
  }
  return id;
}

// ---- graph <-> React Flow

function toFlow(graph: Graph): { nodes: FlowNode[]; edges: Edge[] } {
  const groups: FlowNode[] = graph.groups.map((g, i) => ({
    id: `g${i + 1}`,
    type: 'comfyGroup',
    position: { x: g.bounding[0], y: g.bounding[1] },
    style: { width: g.bounding[2], height: g.bounding[3] },
    zIndex: -1,
    data: { title: g.title, ...(g.color ? { color: g.color } : {}), ...(g.fontSize ? { fontSize: g.fontSize } : {}) },
  }));
  const nodes: FlowNode[] = graph.nodes.map((n) => ({
    id: String(n.id),
    type: 'comfy',
    position: { x: n.pos[0], y: n.pos[1] },
    style: { width: n.size?.[0] ?? 280 },
    data: {
      type: n.type,
      widgets: n.widgets,
      control: n.control,
      ...(n.title ? { title: n.title } : {}),
      ...(n.collapsed ? { collapsed: true } : {}),
      ...(n.mode ? { mode: n.mode } : {}),
      ...(n.unknownValues !== undefined ? { unknownValues: n.unknownValues } : {}),
    },
  }));
  const edges: Edge[] = graph.links.map((l) =>
    edgeOf(String(l.id), String(l.from), l.fromSlot, String(l.to), l.input, l.type),
  );
  return { nodes: [...groups, ...nodes], edges };
}

function edgeOf(id: string, source: string, slot: number, target: string, input: string, type: string): Edge {
  return {
    id,
    source,
    sourceHandle: `o${slot}`,
    target,
    targetHandle: `i:${input}`,
    data: { type },
    style: { stroke: typeColor(type), strokeWidth: 2 },
  };
}

function fromFlow(nodes: FlowNode[], edges: Edge[]): Graph {
  const graph: Graph = { nodes: [], links: [], groups: [] };
  for (const n of nodes) {
    const width = Number(n.measured?.width ?? n.width ?? (n.style?.width as number | undefined) ?? 320);
    const height = Number(n.measured?.height ?? n.height ?? (n.style?.height as number | undefined) ?? 100);
    if (n.type === 'comfyGroup') {
      const d = n.data as GroupData;
      graph.groups.push({
        title: d.title,
        bounding: [n.position.x, n.position.y, width, height],
        ...(d.color ? { color: d.color } : {}),
        ...(d.fontSize ? { fontSize: d.fontSize } : {}),
      });
      continue;
    }
    const d = n.data as ComfyNodeData;
    graph.nodes.push({
      id: Number(n.id),
      type: d.type,
      pos: [Math.round(n.position.x), Math.round(n.position.y)],
      size: [Math.round(width), Math.round(height)],
      widgets: d.widgets,
      control: d.control,
      ...(d.title ? { title: d.title } : {}),
      ...(d.collapsed ? { collapsed: true } : {}),
      ...(d.mode ? { mode: d.mode } : {}),
      ...(d.unknownValues !== undefined ? { unknownValues: d.unknownValues } : {}),
    });
  }
  for (const e of edges) {
    graph.links.push({
      id: Number(e.id),
      from: Number(e.source),
      fromSlot: Number((e.sourceHandle ?? 'o0').slice(1)),
      to: Number(e.target),
      input: (e.targetHandle ?? 'i:').slice(2),
      type: String((e.data as { type?: string } | undefined)?.type ?? '*'),
    });
  }
  return graph;
}

const nextId = (items: Array<{ id: string }>, fallback = 0) =>
  Math.max(fallback, ...items.map((i) => Number(i.id)).filter(Number.isFinite)) + 1;

/** A run's state from Atlas history (a page reopened after its run). */
function stateFromHistory(promptId: string, entry: HistoryEntry): RunState {
  const run: RunState = { ...IDLE, promptId, outputs: entry.outputs, executed: Object.keys(entry.outputs) };
  run.status = entry.status.status_str === 'success' ? 'success' : 'error';
  for (const [type, data] of entry.status.messages) {
    if (type === 'execution_cached') run.cached = (data['nodes'] as string[]) ?? [];
    if (type === 'execution_interrupted') run.status = 'interrupted';
    if (type === 'execution_error' && typeof data['node_id'] === 'string') {
      run.errors = {
        [data['node_id']]: {
          message: `${data['exception_type'] ?? 'Error'}: ${data['exception_message']}`,
          inputs: {},
        },
      };
    }
  }
  return run;
}

export default function WorkflowsPage(props: { user: User }) {
  return (
    <ReactFlowProvider>
      <Editor user={props.user} />
    </ReactFlowProvider>
  );
}

type Panel = 'search' | 'saved' | 'gallery' | null;

function Editor(props: { user: User }) {
  const flow = useReactFlow<FlowNode, Edge>();
  const [infos, setInfos] = useState<ObjectInfo | null>(null);
  const [nodes, setNodes] = useState<FlowNode[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [run, setRun] = useState<RunState>(IDLE);
  const [queueRemaining, setQueueRemaining] = useState(0);
  const [name, setName] = useState('Untitled');
  // /ui/workflows#gallery (the admin screens' Workflows link) opens on the gallery.
  const [panel, setPanel] = useState<Panel>(() => (window.location.hash === '#gallery' ? 'gallery' : null));
  const [searchAt, setSearchAt] = useState<{ x: number; y: number } | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [renderMs, setRenderMs] = useState<number | null>(null);
  const loadStarted = useRef<number | null>(null);
  const nodesInitialized = useNodesInitialized();
  // A loaded graph is drawn once React Flow has measured every node: then it is fitted to the screen
  // and the time from reading the file to that point is shown (the e2e reports it for 200 nodes).
  useEffect(() => {
    if (!nodesInitialized || loadStarted.current === null) return;
    // Still the previous graph's flag: wait for React Flow to measure the new nodes.
    if (!flow.getNodes().every((n) => n.measured?.width)) return;
    setRenderMs(Math.round(performance.now() - loadStarted.current));
    loadStarted.current = null;
    void flow.fitView({ maxZoom: 1 });
  }, [nodesInitialized, flow]);
  const undo = useRef<Array<{ nodes: FlowNode[]; edges: Edge[] }>>([]);
  const redo = useRef<Array<{ nodes: FlowNode[]; edges: Edge[] }>>([]);
  const clipboard = useRef<{ nodes: FlowNode[]; edges: Edge[] } | null>(null);
  const state = useRef({ nodes, edges });
  state.current = { nodes, edges };
  const tab = useMemo(tabId, []);
  const fileInput = useRef<HTMLInputElement>(null);
  const canvas = useRef<HTMLDivElement>(null);

  // Double-click on the empty canvas: ComfyUI's node search, the new node placed there. (A native
  // listener in the capture phase: the canvas's pan and zoom handlers keep the event from React.)
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    const onDoubleClick = (e: MouseEvent) => {
      const target = e.target as HTMLElement;
      if (target.closest('.react-flow__node, .react-flow__edge, .react-flow__controls, .react-flow__minimap')) return;
      setSearchAt(flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
      setPanel('search');
    };
    el.addEventListener('dblclick', onDoubleClick, true);
    return () => el.removeEventListener('dblclick', onDoubleClick, true);
  });

  const toast = useCallback((t: Omit<Toast, 'id'>) => {
    const id = Math.random().toString(36).slice(2);
    setToasts((all) => [...all, { ...t, id }]);
    window.setTimeout(() => setToasts((all) => all.filter((x) => x.id !== id)), 6000);
  }, []);
  const fail = useCallback((err: unknown) => toast({ text: (err as Error).message, kind: 'error' }), [toast]);

  /** Remembers the graph before a change, for Ctrl+Z. */
  const snapshot = useCallback(() => {
    undo.current.push(state.current);
    if (undo.current.length > 100) undo.current.shift();
    redo.current = [];
  }, []);

  const load = useCallback(
    (graph: Graph, warnings: string[] = []) => {
      snapshot();
      setRenderMs(null);
      loadStarted.current = performance.now();
      const flowGraph = toFlow(graph);
      setNodes(flowGraph.nodes);
      setEdges(flowGraph.edges);
      setRun(IDLE);
      for (const w of warnings.slice(0, 3)) toast({ text: w, kind: 'error' });
    },
    [snapshot, toast],
  );

  /** Opens a document: UI-format workflow, API prompt, or a PNG's chunk. */
  const openDocument = useCallback(
    (doc: unknown) => {
      if (!infos) return;
      if (isUiWorkflow(doc)) {
        const { graph, warnings } = uiToGraph(doc, infos);
        load(graph, warnings);
      } else if (doc && typeof doc === 'object') {
        const { graph, warnings } = apiToGraph(doc as ApiPrompt, infos);
        load(graph, warnings);
      } else throw new Error('this is neither a ComfyUI workflow nor an API prompt');
    },
    [infos, load],
  );

  const openFile = useCallback(
    async (file: File) => {
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        if (file.type === 'image/png' || /\.png$/i.test(file.name)) {
          const found = await workflowFromPng(bytes);
          if (!found) throw new Error(`${file.name} carries no workflow`);
          openDocument(found.kind === 'ui' ? found.workflow : found.prompt);
        } else {
          openDocument(JSON.parse(new TextDecoder().decode(bytes)));
        }
        setName(file.name.replace(/\.(json|png)$/i, ''));
        toast({ text: `Opened ${file.name}.` });
      } catch (err) {
        fail(err);
      }
    },
    [openDocument, toast, fail],
  );

  // Node types, then the last run (from Atlas history) if there is one.
  useEffect(() => {
    api.objectInfo().then(setInfos).catch(fail);
  }, [fail]);

  useEffect(() => {
    if (!infos) return;
    const last = localStorage.getItem(LAST_PROMPT);
    if (!last) return;
    (async () => {
      const found = (await api.history(last))[last];
      let workflow: unknown;
      if (found && 'status' in found) {
        workflow = found.prompt[3]?.extra_pnginfo?.workflow;
        if (workflow) openDocument(workflow);
        setRun(stateFromHistory(last, found));
      } else if (found) {
        const queue = await api.queue();
        const item = [...queue.queue_running, ...queue.queue_pending].find((q: QueueItem) => q[1] === last);
        workflow = item?.[3]?.extra_pnginfo?.workflow;
        if (workflow) openDocument(workflow);
        setRun({ ...IDLE, promptId: last, status: found.running ? 'running' : 'queued' });
      }
    })().catch(() => localStorage.removeItem(LAST_PROMPT));
  }, [infos, openDocument]);

  // Live frames of this browser's runs (server-sent events).
  useEffect(() => {
    const source = api.events(tab);
    source.onmessage = (message) => {
      const frame = JSON.parse(message.data) as { type: string; data: Record<string, unknown> };
      const d = frame.data;
      if (frame.type === 'status') {
        const remaining = (d['status'] as { exec_info?: { queue_remaining?: number } })?.exec_info?.queue_remaining;
        if (typeof remaining === 'number') setQueueRemaining(remaining);
        return;
      }
      const promptId = d['prompt_id'] as string | undefined;
      setRun((r) => {
        if (promptId && r.promptId && promptId !== r.promptId && frame.type !== 'execution_start') return r;
        switch (frame.type) {
          case 'execution_start':
            return { ...IDLE, promptId: promptId ?? r.promptId, status: 'running' };
          case 'execution_cached':
            return { ...r, cached: (d['nodes'] as string[]) ?? [] };
          case 'executing': {
            const node = d['node'] as string | null;
            if (node === null) return { ...r, running: null, status: r.status === 'running' ? 'success' : r.status };
            return { ...r, running: node, executed: [...r.executed, node] };
          }
          case 'progress':
            return {
              ...r,
              progress: { ...r.progress, [String(d['node'])]: { value: Number(d['value']), max: Number(d['max']) } },
            };
          case 'executed':
            return { ...r, outputs: { ...r.outputs, [String(d['node'])]: d['output'] as Record<string, unknown[]> } };
          case 'execution_success':
            return { ...r, status: 'success', running: null };
          case 'execution_interrupted':
            return { ...r, status: 'interrupted', running: null };
          case 'execution_error':
            return {
              ...r,
              status: 'error',
              running: null,
              errors: {
                [String(d['node_id'])]: {
                  message: `${d['exception_type'] ?? 'Error'}: ${d['exception_message']}`,
                  inputs: {},
                },
              },
            };
          default:
            return r;
        }
      });
    };
    return () => source.close();
  }, [tab]);

  const graph = useCallback(() => fromFlow(state.current.nodes, state.current.edges), []);

  const queue = useCallback(async () => {
    if (!infos) return;
    const g = graph();
    try {
      const res = await api.queuePrompt(graphToApi(g, infos), graphToUi(g, infos), tab);
      localStorage.setItem(LAST_PROMPT, res.prompt_id);
      setRun({ ...IDLE, promptId: res.prompt_id, status: 'queued' });
      // control_after_generate: seeds move on for the next run, as in ComfyUI.
      const next = afterQueue(g, infos);
      setNodes((all) =>
        all.map((n) => {
          const updated = next.nodes.find((x) => String(x.id) === n.id);
          return updated && n.type === 'comfy' ? { ...n, data: { ...n.data, widgets: updated.widgets } } : n;
        }),
      );
    } catch (err) {
      if (err instanceof PromptRefused) {
        const errors: RunState['errors'] = {};
        for (const [id, e] of Object.entries(err.nodeErrors)) {
          const inputs: Record<string, string> = {};
          for (const x of e.errors) if (x.extra_info?.input_name) inputs[x.extra_info.input_name] = x.message;
          errors[id] = {
            message: e.errors.map((x) => `${x.message}${x.details ? `: ${x.details}` : ''}`).join('; '),
            inputs,
          };
        }
        setRun({ ...IDLE, status: 'error', errors });
        toast({ text: `Not queued: ${err.message}`, kind: 'error' });
      } else fail(err);
    }
  }, [infos, graph, tab, toast, fail]);

  const addNode = useCallback(
    (type: string, at?: { x: number; y: number }) => {
      if (!infos) return;
      snapshot();
      const id = nextId(state.current.nodes.filter((n) => n.type === 'comfy'));
      const pos = at ?? flow.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
      const n = newNode(id, type, infos[type], [Math.round(pos.x), Math.round(pos.y)]);
      const { nodes: added } = toFlow({ nodes: [n], links: [], groups: [] });
      setNodes((all) => [...all.map((x) => ({ ...x, selected: false })), { ...added[0]!, selected: true }]);
    },
    [infos, flow, snapshot],
  );

  const groupSelection = useCallback(() => {
    const selected = state.current.nodes.filter((n) => n.selected && n.type === 'comfy');
    if (selected.length === 0) {
      toast({ text: 'Select the nodes to group first (Shift+drag or Ctrl+click).' });
      return;
    }
    snapshot();
    const xs = selected.map((n) => n.position.x);
    const ys = selected.map((n) => n.position.y);
    const x2 = selected.map((n) => n.position.x + (n.measured?.width ?? 320));
    const y2 = selected.map((n) => n.position.y + (n.measured?.height ?? 120));
    const x = Math.min(...xs) - 20;
    const y = Math.min(...ys) - 50;
    const group: FlowNode = {
      id: `g${Date.now()}`,
      type: 'comfyGroup',
      position: { x, y },
      style: { width: Math.max(...x2) + 20 - x, height: Math.max(...y2) + 20 - y },
      zIndex: -1,
      data: { title: 'Group' },
    };
    setNodes((all) => [group, ...all]);
  }, [snapshot, toast]);

  const copy = useCallback(() => {
    const picked = state.current.nodes.filter((n) => n.selected);
    const ids = new Set(picked.map((n) => n.id));
    clipboard.current = {
      nodes: picked,
      edges: state.current.edges.filter((e) => ids.has(e.source) && ids.has(e.target)),
    };
  }, []);

  const paste = useCallback(() => {
    const clip = clipboard.current;
    if (!clip || clip.nodes.length === 0) return;
    snapshot();
    let id = nextId(state.current.nodes.filter((n) => n.type === 'comfy'));
    let linkId = nextId(state.current.edges);
    const map = new Map<string, string>();
    const added: FlowNode[] = clip.nodes.map((n) => {
      const newId = n.type === 'comfy' ? String(id++) : `g${Date.now()}${id++}`;
      map.set(n.id, newId);
      return {
        ...n,
        id: newId,
        position: { x: n.position.x + 40, y: n.position.y + 40 },
        selected: true,
        data: structuredClone(n.data),
      } as FlowNode;
    });
    const addedEdges = clip.edges.map((e) => ({
      ...e,
      id: String(linkId++),
      source: map.get(e.source)!,
      target: map.get(e.target)!,
    }));
    setNodes((all) => [...all.map((n) => ({ ...n, selected: false })), ...added]);
    setEdges((all) => [...all, ...addedEdges]);
  }, [snapshot]);

  const undoOnce = useCallback(() => {
    const prev = undo.current.pop();
    if (!prev) return;
    redo.current.push(state.current);
    setNodes(prev.nodes);
    setEdges(prev.edges);
  }, []);
  const redoOnce = useCallback(() => {
    const next = redo.current.pop();
    if (!next) return;
    undo.current.push(state.current);
    setNodes(next.nodes);
    setEdges(next.edges);
  }, []);

  // ComfyUI's shortcuts.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const target = e.target as HTMLElement | null;
      const typing = target?.closest('input, textarea, select, [contenteditable]') !== null;
      if (mod && e.key === 'Enter') {
        e.preventDefault();
        void queue();
      } else if (typing || panel) {
        return;
      } else if (mod && !e.shiftKey && e.key.toLowerCase() === 'z') {
        e.preventDefault();
        undoOnce();
      } else if (mod && (e.key.toLowerCase() === 'y' || (e.shiftKey && e.key.toLowerCase() === 'z'))) {
        e.preventDefault();
        redoOnce();
      } else if (mod && e.key.toLowerCase() === 'c') {
        copy();
      } else if (mod && e.key.toLowerCase() === 'v') {
        e.preventDefault();
        paste();
      } else if (mod && e.key.toLowerCase() === 'g') {
        e.preventDefault();
        groupSelection();
      } else if (mod && e.key.toLowerCase() === 's') {
        e.preventDefault();
        document.querySelector<HTMLButtonElement>('#workflow-save')?.click();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [queue, undoOnce, redoOnce, copy, paste, groupSelection, panel]);

  const linked = useMemo(() => {
    const out: Record<string, string[]> = {};
    for (const e of edges) out[e.target] = [...(out[e.target] ?? []), (e.targetHandle ?? 'i:').slice(2)];
    return out;
  }, [edges]);

  const widgetTimer = useRef<number | undefined>(undefined);
  const editorApi: EditorApi | null = useMemo(
    () =>
      infos && {
        infos,
        run,
        linked,
        setWidget(id, name, value) {
          // One undo step per burst of typing.
          if (widgetTimer.current === undefined) snapshot();
          window.clearTimeout(widgetTimer.current);
          widgetTimer.current = window.setTimeout(() => {
            widgetTimer.current = undefined;
          }, 800);
          setNodes((all) =>
            all.map((n) =>
              n.id === id && n.type === 'comfy'
                ? { ...n, data: { ...n.data, widgets: { ...n.data.widgets, [name]: value } } }
                : n,
            ),
          );
        },
        setControl(id, name, value) {
          snapshot();
          setNodes((all) =>
            all.map((n) =>
              n.id === id && n.type === 'comfy'
                ? { ...n, data: { ...n.data, control: { ...n.data.control, [name]: value } } }
                : n,
            ),
          );
        },
        toggleCollapsed(id) {
          snapshot();
          setNodes((all) =>
            all.map((n) =>
              n.id === id && n.type === 'comfy' ? { ...n, data: { ...n.data, collapsed: !n.data.collapsed } } : n,
            ),
          );
        },
        renameGroup(id, title) {
          setNodes((all) =>
            all.map((n) => (n.id === id && n.type === 'comfyGroup' ? { ...n, data: { ...n.data, title } } : n)),
          );
        },
      },
    [infos, run, linked, snapshot],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => {
      // One undo step per drag: remembered when the drag starts. (Deleting is remembered in onBeforeDelete.)
      const starting = changes.some(
        (c) => c.type === 'position' && c.dragging && !state.current.nodes.find((n) => n.id === c.id)?.dragging,
      );
      if (starting) snapshot();
      setNodes((all) => applyNodeChanges(changes, all));
    },
    [snapshot],
  );
  const onEdgesChange = useCallback((changes: EdgeChange[]) => setEdges((all) => applyEdgeChanges(changes, all)), []);

  const socketTypes = useCallback(
    (c: Connection | Edge) => {
      const source = state.current.nodes.find((n) => n.id === c.source);
      const target = state.current.nodes.find((n) => n.id === c.target);
      if (!infos || source?.type !== 'comfy' || target?.type !== 'comfy') return null;
      const from = infos[(source.data as ComfyNodeData).type];
      const to = infos[(target.data as ComfyNodeData).type];
      if (!from || !to) return null;
      const out = shapeOf(from).outputs[Number((c.sourceHandle ?? 'o0').slice(1))];
      const input = shapeOf(to).inputs.find((i) => i.name === (c.targetHandle ?? 'i:').slice(2));
      return out && input ? { from: out.type, to: input.type } : null;
    },
    [infos],
  );
  const isValidConnection = useCallback(
    (c: Connection | Edge) => {
      if (c.source === c.target) return false;
      const t = socketTypes(c);
      return t !== null && typesMatch(t.from, t.to);
    },
    [socketTypes],
  );
  const onConnect = useCallback(
    (c: Connection) => {
      const t = socketTypes(c);
      if (!t) return;
      snapshot();
      setEdges((all) => {
        // An input takes one link: a new one replaces the old.
        const kept = all.filter((e) => !(e.target === c.target && e.targetHandle === c.targetHandle));
        const edge = edgeOf(
          String(nextId(all)),
          c.source,
          Number((c.sourceHandle ?? 'o0').slice(1)),
          c.target,
          (c.targetHandle ?? 'i:').slice(2),
          t.from,
        );
        return addEdge(edge, kept);
      });
    },
    [socketTypes, snapshot],
  );

  const save = useCallback(async () => {
    if (!infos) return;
    const trimmed = name.trim();
    if (!trimmed) return toast({ text: 'Give the workflow a name first.', kind: 'error' });
    try {
      await api.save(trimmed, graphToUi(graph(), infos));
      toast({ text: `Saved ${trimmed}.` });
    } catch (err) {
      fail(err);
    }
  }, [infos, name, graph, toast, fail]);

  const download = useCallback(
    (format: 'ui' | 'api') => {
      if (!infos) return;
      const g = graph();
      const doc = format === 'ui' ? graphToUi(g, infos) : graphToApi(g, infos);
      const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `${name.trim() || 'workflow'}${format === 'api' ? '.api' : ''}.json`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    },
    [infos, graph, name],
  );

  if (!infos || !editorApi) {
    return (
      <main className="wf-page" aria-busy="true">
        <p className="wf-loading">Loading node types…</p>
      </main>
    );
  }

  const running = run.status === 'running' || run.status === 'queued';
  return (
    <EditorContext.Provider value={editorApi}>
      <main className="wf-page">
        <header className="wf-bar">
          <a className="button" href="/ui/">
            ← Chats
          </a>
          <h1 className="wf-heading">Workflows</h1>
          <input
            className="wf-name"
            aria-label="Workflow name"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
          <div className="wf-actions">
            <button type="button" className="primary" onClick={() => void queue()} title="Ctrl+Enter">
              Queue
            </button>
            <button
              type="button"
              onClick={() => api.interrupt(run.promptId ?? undefined).catch(fail)}
              disabled={!running}
            >
              Interrupt
            </button>
            <button
              type="button"
              onClick={() =>
                api
                  .clearQueue()
                  .then((r) => toast({ text: `Removed ${r.removed} queued prompt${r.removed === 1 ? '' : 's'}.` }))
                  .catch(fail)
              }
            >
              Clear queue
            </button>
            <span className="wf-sep" />
            <button
              type="button"
              className="wf-edit"
              onClick={() => {
                setSearchAt(null);
                setPanel('search');
              }}
            >
              Add node
            </button>
            <button type="button" className="wf-edit" onClick={groupSelection} title="Ctrl+G">
              Group
            </button>
            <button type="button" className="wf-edit" onClick={undoOnce} title="Ctrl+Z">
              Undo
            </button>
            <button type="button" className="wf-edit" onClick={redoOnce} title="Ctrl+Y">
              Redo
            </button>
            <span className="wf-sep" />
            <button type="button" id="workflow-save" onClick={() => void save()} title="Ctrl+S">
              Save
            </button>
            <button type="button" onClick={() => setPanel('saved')}>
              Open…
            </button>
            <button type="button" onClick={() => fileInput.current?.click()}>
              Open file
            </button>
            <input
              ref={fileInput}
              type="file"
              hidden
              accept="application/json,.json,image/png"
              aria-label="Open a workflow file (ComfyUI JSON or a PNG with a workflow)"
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = '';
                if (file) void openFile(file);
              }}
            />
            <button type="button" onClick={() => download('ui')}>
              Export
            </button>
            <button type="button" onClick={() => download('api')}>
              Export API
            </button>
            <button type="button" onClick={() => setPanel('gallery')}>
              Gallery
            </button>
          </div>
        </header>
        <p className="wf-status" role="status" aria-live="polite">
          <span className={`run-${run.status}`}>
            {run.status === 'idle'
              ? 'Ready'
              : run.status === 'queued'
                ? 'Queued'
                : run.status === 'running'
                  ? 'Running'
                  : run.status === 'success'
                    ? 'Done'
                    : run.status === 'interrupted'
                      ? 'Interrupted'
                      : 'Failed'}
          </span>
          {' · '}
          {queueRemaining} in the queue · {nodes.filter((n) => n.type === 'comfy').length} nodes
          {renderMs !== null && (
            <span className="wf-render" data-ms={renderMs}>
              {' '}
              · drawn in {renderMs} ms
            </span>
          )}
        </p>
        <p className="wf-mobile-note">
          Editing is made for a desktop screen: on a phone you can open, view and queue workflows.
        </p>
        {/* biome-ignore lint/a11y/noStaticElementInteractions: files dropped on the canvas open; the Open file button does the same by keyboard */}
        <div
          ref={canvas}
          className="wf-canvas"
          onDragOver={(e) => e.preventDefault()}
          onDrop={(e) => {
            e.preventDefault();
            const file = e.dataTransfer.files[0];
            if (file) void openFile(file);
          }}
        >
          <ReactFlow<FlowNode, Edge>
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            onBeforeDelete={async () => {
              snapshot();
              return true;
            }}
            isValidConnection={isValidConnection}
            zoomOnDoubleClick={false}
            deleteKeyCode={['Delete', 'Backspace']}
            multiSelectionKeyCode={['Control', 'Meta', 'Shift']}
            selectionKeyCode="Shift"
            minZoom={0.1}
            maxZoom={2}
            defaultViewport={{ x: 0, y: 0, zoom: 1 }}
            proOptions={{ hideAttribution: true }}
            aria-label="Workflow canvas"
          >
            <Background />
            <Controls />
            <MiniMap pannable zoomable ariaLabel="Overview of the workflow" />
          </ReactFlow>
        </div>
        {panel === 'search' && (
          <NodeSearch
            infos={infos}
            onClose={() => setPanel(null)}
            onPick={(type) => {
              setPanel(null);
              addNode(type, searchAt ?? undefined);
            }}
          />
        )}
        {panel === 'saved' && (
          <SavedDialog
            onClose={() => setPanel(null)}
            onOpen={async (n) => {
              try {
                const doc = await api.open(n);
                openDocument(doc.workflow);
                setName(n);
                setPanel(null);
              } catch (err) {
                fail(err);
              }
            }}
            onError={fail}
          />
        )}
        {panel === 'gallery' && (
          <Gallery
            user={props.user}
            onClose={() => setPanel(null)}
            onOpen={(item) => {
              setPanel(null);
              openDocument(item.workflow ?? item.prompt);
            }}
            onError={fail}
          />
        )}
        <Toasts toasts={toasts} onDismiss={(id) => setToasts((all) => all.filter((t) => t.id !== id))} />
      </main>
    </EditorContext.Provider>
  );
}

function NodeSearch(props: { infos: ObjectInfo; onClose: () => void; onPick: (type: string) => void }) {
  const [q, setQ] = useState('');
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  const all = Object.values(props.infos);
  const hits = all.filter((i) =>
    words.every((w) => `${i.name} ${i.display_name ?? ''} ${i.category ?? ''}`.toLowerCase().includes(w)),
  );
  const byCategory = new Map<string, typeof hits>();
  for (const h of hits) byCategory.set(h.category ?? 'other', [...(byCategory.get(h.category ?? 'other') ?? []), h]);
  return (
    <Dialog title="Add a node" onClose={props.onClose}>
      <input
        type="search"
        className="wf-search"
        aria-label="Search node types"
        placeholder="Search: name or category"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && hits[0]) props.onPick(hits[0].name);
        }}
      />
      <div className="wf-search-results">
        {[...byCategory.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([category, items]) => (
            <section key={category}>
              <h3>{category}</h3>
              <ul>
                {items.map((i) => (
                  <li key={i.name}>
                    <button type="button" onClick={() => props.onPick(i.name)} title={i.description}>
                      {i.display_name ?? i.name}
                      <small>{i.name}</small>
                    </button>
                  </li>
                ))}
              </ul>
            </section>
          ))}
        {hits.length === 0 && <p>No node type matches.</p>}
      </div>
    </Dialog>
  );
}

function SavedDialog(props: { onClose: () => void; onOpen: (name: string) => void; onError: (err: unknown) => void }) {
  const [list, setList] = useState<Array<{ name: string; updatedAt: string }> | null>(null);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [to, setTo] = useState('');
  const { onError } = props;
  const refresh = useCallback(() => api.saved().then(setList).catch(onError), [onError]);
  useEffect(() => void refresh(), [refresh]);
  return (
    <Dialog title="Saved workflows" onClose={props.onClose} wide>
      {list === null ? (
        <p aria-busy="true">Loading…</p>
      ) : list.length === 0 ? (
        <p>No saved workflows yet: build one and press Save.</p>
      ) : (
        <ul className="wf-saved">
          {list.map((w) => (
            <li key={w.name}>
              {renaming === w.name ? (
                <form
                  onSubmit={(e) => {
                    e.preventDefault();
                    api
                      .rename(w.name, to)
                      .then(() => {
                        setRenaming(null);
                        return refresh();
                      })
                      .catch(onError);
                  }}
                >
                  <input aria-label={`New name for ${w.name}`} value={to} onChange={(e) => setTo(e.target.value)} />
                  <button type="submit">Rename</button>
                </form>
              ) : (
                <>
                  <button type="button" className="wf-saved-name" onClick={() => props.onOpen(w.name)}>
                    {w.name}
                  </button>
                  <small>{new Date(w.updatedAt).toLocaleString()}</small>
                  <button
                    type="button"
                    aria-label={`Rename ${w.name}`}
                    onClick={() => {
                      setRenaming(w.name);
                      setTo(w.name);
                    }}
                  >
                    Rename
                  </button>
                  <button
                    type="button"
                    aria-label={`Delete ${w.name}`}
                    onClick={() => api.remove(w.name).then(refresh).catch(onError)}
                  >
                    Delete
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}

function Gallery(props: {
  user: User;
  onClose: () => void;
  onOpen: (item: GalleryItem) => void;
  onError: (err: unknown) => void;
}) {
  const [items, setItems] = useState<GalleryItem[] | null>(null);
  const [more, setMore] = useState(false);
  const [viewing, setViewing] = useState<GalleryItem | null>(null);
  const [text, setText] = useState('');
  const { onError } = props;
  useEffect(() => {
    api
      .gallery()
      .then((r) => {
        setItems(r.items);
        setMore(r.more);
      })
      .catch(onError);
  }, [onError]);
  useEffect(() => {
    if (!viewing || viewing.kind === 'image') return;
    fetch(fileUrl(viewing))
      .then((r) => r.text())
      .then(setText)
      .catch(onError);
  }, [viewing, onError]);
  const params = (item: GalleryItem) =>
    Object.entries(item.prompt).flatMap(([id, n]) =>
      Object.entries(n.inputs)
        .filter(([, v]) => !Array.isArray(v))
        .map(([k, v]) => `${n.class_type}#${id}.${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`),
    );
  if (viewing) {
    return (
      <Dialog title={viewing.filename} onClose={() => setViewing(null)} wide>
        <div className="wf-viewer">
          {viewing.kind === 'image' ? (
            <img src={fileUrl(viewing)} alt={`${viewing.filename}, full size`} />
          ) : (
            // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling text must be reachable by keyboard (axe)
            <pre tabIndex={0}>{text}</pre>
          )}
          <div className="wf-viewer-actions">
            <button type="button" onClick={() => props.onOpen(viewing)}>
              Open workflow
            </button>
            <a className="button" href={fileUrl(viewing, true)} download={viewing.filename}>
              Download
            </a>
            {props.user.role === 'admin' && (
              <button
                type="button"
                onClick={() =>
                  api
                    .deleteOutput(viewing)
                    .then(() => {
                      setItems((all) => all?.filter((i) => i !== viewing) ?? null);
                      setViewing(null);
                    })
                    .catch(onError)
                }
              >
                Delete
              </button>
            )}
          </div>
          <details>
            <summary>Prompt and parameters</summary>
            <ul className="wf-params">
              {params(viewing).map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </details>
        </div>
      </Dialog>
    );
  }
  return (
    <Dialog title="Gallery" onClose={props.onClose} wide>
      {items === null ? (
        <p aria-busy="true">Loading…</p>
      ) : items.length === 0 ? (
        <p>No outputs yet: queue a workflow with a Save node.</p>
      ) : (
        <ul className="wf-gallery">
          {items.map((item) => (
            <li key={`${item.subfolder}/${item.filename}`}>
              <button type="button" onClick={() => setViewing(item)} aria-label={`View ${item.filename}`}>
                {item.kind === 'image' ? (
                  <img src={fileUrl(item)} alt="" loading="lazy" />
                ) : (
                  <span className="wf-gallery-text">{item.kind}</span>
                )}
                <span>{item.filename}</span>
                <small>{item.createdAt ? new Date(item.createdAt).toLocaleString() : ''}</small>
              </button>
            </li>
          ))}
        </ul>
      )}
      {more && <p>Older outputs are not shown here.</p>}
    </Dialog>
  );
}
