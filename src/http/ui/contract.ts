/**
 * The UI API's contract (/api/ui, docs/ui.md "One contract"): the zod schemas the routes validate
 * requests with, and the shapes of the answers the web app reads. The routes check their answers
 * against these at compile time (`answer()` in ../validate.ts: an answer's type is the schema's
 * input, where a Date may stand for its ISO text); web/ imports the types only (`import type` from
 * `@contract/ui`), so zod never enters the browser's bundle.
 *
 * Node-free: zod and vocabulary leaves only, because web/'s type check reads this file.
 */
import * as z from 'zod';
import { chatSource } from '../../chat/sources.js';
import {
  type BYTE_ATTACHMENTS,
  MAX_ATTACHMENT_BYTES,
  MESSAGE_ROLES,
  MESSAGE_STATUSES,
  THEMES,
  type UNREAD_ATTACHMENTS,
  USER_ROLES,
} from '../../chat/vocabulary.js';
import { JOB_STATES } from '../../jobs/spec.js';
import { KNOWLEDGE_FIELD_MAX } from '../../knowledge/vocabulary.js';
import { KEY_SCOPES } from '../../net/keys/scopes.js';
import { imageSchema } from '../openai/images-schema.js';

export type {
  AddAnswer,
  AddedFile,
  BasesAnswer,
  CreateBaseBody,
  DocumentsAnswer,
  KnowledgeBase,
  KnowledgeDocument,
} from '../knowledge/contract.js';

/** A moment: the server may hand a Date (JSON turns it into ISO text); the page reads the text. */
const timestamp = z.union([z.string(), z.date().transform((d) => d.toISOString())]);
const paramsField = z.record(z.string(), z.union([z.number(), z.boolean(), z.array(z.string())]));
const nullableText = (max: number) => z.string().max(max).nullable();
/** knowledge bases (names) a conversation or preset answers from (docs/knowledge.md) */
const knowledgeField = z.array(z.string().min(1).max(64)).max(KNOWLEDGE_FIELD_MAX);

// ---- requests: accounts

export const credentials = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
export const mePatch = z.object({
  defaultModel: nullableText(200).optional(),
  theme: z.enum(THEMES).optional(),
  currentPassword: z.string().optional(),
  newPassword: z.string().optional(),
});
export const newUser = credentials.extend({ role: z.enum(USER_ROLES).default('user') });
export const userPatch = z.object({ role: z.enum(USER_ROLES).optional(), password: z.string().optional() });

// ---- requests: conversations and presets

export const conversationInit = z.object({
  title: z.string().max(200).optional(),
  model: nullableText(200).optional(),
  systemPrompt: nullableText(100_000).optional(),
  params: paramsField.optional(),
  knowledge: knowledgeField.optional(),
});
export const conversationPatch = conversationInit.extend({
  pinned: z.boolean().optional(),
  currentLeafId: z.string().min(1).optional(),
});
export const replyBody = z.object({
  parentId: z.string().min(1).nullable(),
  content: z.string().max(1_000_000).optional(),
  // Text files as text; PDFs and images as their bytes, base64 (src/chat/attachments.ts).
  attachments: z
    .array(
      z.union([
        z.object({ name: z.string().min(1).max(255), text: z.string() }),
        z.object({ name: z.string().min(1).max(255), data: z.string().max(Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4) }),
      ]),
    )
    .max(20)
    .optional(),
  model: z.string().min(1).max(200).optional(),
});
export const presetBody = z.object({
  name: z.string().min(1).max(80),
  model: nullableText(200).optional(),
  systemPrompt: nullableText(100_000).optional(),
  params: paramsField.optional(),
  knowledge: knowledgeField.optional(),
  shared: z.boolean().optional(),
});
export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  after: z.string().min(1).optional(),
});
export const searchQuery = z.object({
  q: z.string().max(500).default(''),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
/** "Create image": the OpenAI images route's fields and bounds (one image), under a message of the chat. */
export const createImageBody = imageSchema
  .pick({ model: true, prompt: true, size: true, steps: true, seed: true })
  .extend({ parentId: z.string().min(1).nullable() });
export const followQuery = z.object({ from: z.coerce.number().int().min(0).max(100_000_000).default(0) });
export const exportQuery = z.object({ format: z.enum(['json', 'md']).default('json') });

// ---- answers: accounts

export const user = z.object({
  id: z.string(),
  username: z.string(),
  role: z.enum(USER_ROLES),
  defaultModel: z.string().nullable(),
  theme: z.enum(THEMES),
  createdAt: timestamp,
  /** the latest use of one of the account's sessions (the Users list, for admins) */
  lastSeenAt: timestamp.nullable().optional(),
});
export const sessionAnswer = z.object({
  user: user.nullable(),
  csrfToken: z.string().nullable(),
  setupRequired: z.boolean(),
});
/** setup and sign-in: the account and the new session's CSRF token */
export const signedInAnswer = z.object({ user, csrfToken: z.string() });
export const userAnswer = z.object({ user });
export const usersAnswer = z.object({ users: z.array(user) });
export const okAnswer = z.object({ ok: z.literal(true) });

// ---- answers: models

const chatParams = paramsField;
export const modelInfo = z.object({
  name: z.string(),
  size: z.number(),
  family: z.string(),
  parameterSize: z.string(),
  quantization: z.string(),
  contextLength: z.number().nullable(),
  defaultNumCtx: z.number(),
  /** the Modelfile's parameters (Ollama option names) */
  parameters: chatParams.optional(),
  /** what the model can do (`completion`, `vision`, `thinking`, ...) */
  capabilities: z.array(z.string()),
});
/** An image model of the library (for "Create image"). */
export const imageModelInfo = z.object({ name: z.string(), size: z.number(), family: z.string() });
/** The chat models, and the image models apart. */
export const modelsAnswer = z.object({ models: z.array(modelInfo), imageModels: z.array(imageModelInfo) });

// ---- answers: conversations

export const attachment = z.object({
  name: z.string(),
  size: z.number(),
  text: z.string(),
  truncated: z.boolean(),
  /** an image: its name under GET /api/ui/images/ */
  image: z.string().optional(),
});
/** A retrieved passage a reply cites as [n]. */
export const source = chatSource;
export const messageStats = z.object({
  promptTokens: z.number().optional(),
  evalTokens: z.number().optional(),
  tokensPerSecond: z.number().optional(),
  timeToFirstTokenMs: z.number().optional(),
  totalMs: z.number().optional(),
  doneReason: z.string().optional(),
  /** how long the reply's `<think>` reasoning took, from its first token */
  reasoningMs: z.number().optional(),
  /** knowledge-base passages the reply was given (`#name` in the message), numbered as cited */
  sources: z.array(source).optional(),
});
export const message = z.object({
  id: z.string(),
  parentId: z.string().nullable(),
  role: z.enum(MESSAGE_ROLES),
  content: z.string(),
  attachments: z.array(attachment),
  model: z.string().nullable(),
  status: z.enum(MESSAGE_STATUSES),
  error: z.string().nullable(),
  stats: messageStats.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const conversation = z.object({
  id: z.string(),
  title: z.string(),
  titleSource: z.string(),
  model: z.string().nullable(),
  systemPrompt: z.string().nullable(),
  params: chatParams,
  /** knowledge bases every reply answers from (applied from a preset) */
  knowledge: z.array(z.string()),
  currentLeafId: z.string().nullable(),
  pinned: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const conversationSummary = z.object({
  id: z.string(),
  title: z.string(),
  pinned: z.boolean(),
  model: z.string().nullable(),
  updatedAt: timestamp,
  /** a reply is being written in this chat */
  streaming: z.boolean(),
});
export const searchHit = conversationSummary.extend({ snippet: z.string() });

export const conversationsAnswer = z.object({
  conversations: z.array(conversationSummary),
  next: z.string().nullable(),
});
export const conversationAnswer = z.object({ conversation });
/** A picture being drawn in the chat ("Create image") on the node that answers; see docs/ui.md. */
export const drawing = z.object({
  prompt: z.string(),
  model: z.string(),
  step: z.number(),
  total: z.number(),
  startedAt: timestamp,
});
export const conversationWithMessages = z.object({
  conversation,
  messages: z.array(message),
  /** absent or null: no picture is being drawn in it */
  drawing: drawing.nullable().optional(),
});
/** Stopping "Create image": true when the draw stopped and stored nothing; false when none was being drawn (or it was being stored already). */
export const stopImageAnswer = z.object({ stopped: z.boolean() });
/** Stop: the stopped message, or (another node writes it) a request it will see within about a second. */
export const stopAnswer = z.union([z.object({ message }), z.object({ requested: z.literal(true) })]);
export const searchAnswer = z.object({ results: z.array(searchHit) });
export const importAnswer = z.object({
  format: z.string(),
  imported: z.number(),
  conversations: z.array(z.object({ id: z.string(), title: z.string() })),
});
/** Events of a reply being written (NDJSON lines of POST .../replies, .../continue and GET .../stream). */
export const replyEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message'), message }),
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('notice'), text: z.string() }),
  z.object({ type: z.literal('done'), message }),
]);
/** Events of POST .../images (NDJSON): a sampling step, then the two stored messages and `done`. */
export const imageEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('progress'), step: z.number(), total: z.number() }),
  ...replyEvent.options,
  /** the draw was stopped: nothing of it is stored */
  z.object({ type: z.literal('stopped') }),
]);

// ---- answers: presets

export const preset = z.object({
  id: z.string(),
  name: z.string(),
  model: z.string().nullable(),
  systemPrompt: z.string().nullable(),
  params: chatParams,
  /** knowledge bases a chat started from it answers from */
  knowledge: z.array(z.string()),
  shared: z.boolean(),
  /** the user may change or delete it */
  editable: z.boolean(),
  createdAt: timestamp,
});
export const presetsAnswer = z.object({ presets: z.array(preset) });
export const presetAnswer = z.object({ preset });

// ---- admin (/api/ui/admin): requests

const modelName = z.string().trim().min(1).max(200);
export const nameQuery = z.strictObject({ name: modelName });
export const pullBody = z.strictObject({
  source: z.string().trim().min(1).max(2000),
  insecure: z.boolean().optional(),
});
export const copyBody = z.strictObject({ source: modelName, destination: modelName });
export const keepAliveBody = z.strictObject({ name: modelName, keepAlive: z.union([z.string().max(40), z.number()]) });
export const createModelBody = z
  .strictObject({
    name: modelName,
    /** a Modelfile's text (FROM an existing model or `atlas:<key>`, PARAMETER, SYSTEM, ...) */
    modelfile: z.string().max(1_000_000).optional(),
    /** a GGUF (or image model folder) already in the Atlas file store, registered where it is */
    atlasPath: z.string().trim().min(1).max(1000).optional(),
  })
  .refine((b) => (b.modelfile === undefined) !== (b.atlasPath === undefined), {
    message: 'give either modelfile or atlasPath',
  });
export const keyBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  scopes: z.array(z.enum(KEY_SCOPES)).min(1),
  expires: z.string().trim().min(1).max(40).optional(),
});
export const jobsQuery = z.strictObject({
  state: z.enum(JOB_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.string().min(1).optional(),
});
export const logsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(2000).default(500),
});

// ---- admin: answers

export const adminModel = z.object({
  name: z.string(),
  digest: z.string(),
  size: z.number(),
  format: z.string(),
  family: z.string(),
  parameterSize: z.string(),
  quantization: z.string(),
  contextLength: z.number().nullable(),
  capabilities: z.array(z.string()),
  license: z.string(),
  parentModel: z.string().nullable(),
  modifiedAt: z.string(),
});
export const loadedModel = z.object({
  name: z.string(),
  digest: z.string(),
  size: z.number(),
  sizeVram: z.number(),
  contextLength: z.number(),
  expiresAt: z.string().nullable(),
  activeSequences: z.number(),
});
export const adminModelsAnswer = z.object({ models: z.array(adminModel), loaded: z.array(loadedModel) });
export const pull = z.object({
  id: z.string(),
  /** what was asked for: a registry name, `hf:owner/repo/file.gguf` or a URL */
  source: z.string(),
  model: z.string().nullable(),
  state: z.enum(['running', 'done', 'failed', 'cancelled', 'interrupted']),
  status: z.string(),
  completed: z.number(),
  total: z.number().nullable(),
  bytesPerSecond: z.number().nullable(),
  error: z.string().nullable(),
  node: z.string(),
  createdBy: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export const pullsAnswer = z.object({ pulls: z.array(pull) });
export const pullAnswer = z.object({ pull });
export const apiKey = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export const keysAnswer = z.object({ keys: z.array(apiKey) });
/** A new key: its text is shown this once. */
export const createdKeyAnswer = z.object({ key: z.string(), info: apiKey });
export const job = z.object({
  id: z.string(),
  type: z.string(),
  state: z.enum(JOB_STATES),
  model: z.string(),
  input: z.string(),
  output: z.string(),
  progress: z.object({
    records_total: z.number().nullable(),
    records_done: z.number(),
    records_ok: z.number(),
    records_failed: z.number(),
    shards_total: z.number().nullable(),
    shards_committed: z.number(),
  }),
  attempts: z.number(),
  error: z.string().nullable(),
  node: z.string().nullable(),
  manifest: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});
export const jobsAnswer = z.object({ jobs: z.array(job), next: z.string().nullable() });
export const jobAnswer = z.object({ job });
export const jobEvent = z.object({
  id: z.number(),
  at: z.string(),
  level: z.enum(['info', 'warn', 'error']),
  node: z.string().nullable(),
  message: z.string(),
});
export const logsAnswer = z.object({ events: z.array(jobEvent) });
export const jobResultsAnswer = z.object({
  output: z.string(),
  manifest: z.record(z.string(), z.unknown()),
  preview: z.array(z.string()),
  previewFile: z.string(),
});
export const check = z.object({ ok: z.boolean(), detail: z.string() });
export const nodeAnswer = z.object({
  node: z.object({ id: z.string(), hostname: z.string(), version: z.string() }),
  engine: z.object({
    engine: z.string(),
    backend: z.string(),
    binary: z.string().nullable(),
    gpuHealthy: z.boolean(),
    setting: z.string(),
    gpuSetting: z.string(),
  }),
  vram: z.object({ total: z.number(), used: z.number() }).nullable(),
  cache: z.object({ dir: z.string(), bytes: z.number(), entries: z.number(), maxBytes: z.number() }),
  loaded: z.array(
    z.object({ name: z.string(), size: z.number(), sizeVram: z.number(), expiresAt: z.string().nullable() }),
  ),
  atlas: z.object({ database: check, files: check }),
  exposure: z.object({ report: z.array(z.string()), warnings: z.array(z.string()), problems: z.array(z.string()) }),
});

// ---- the workflow editor (/api/ui/workflows): answers, ComfyUI's shapes with hearth's additions

/** A prompt in ComfyUI's API format: node id → its class and inputs. */
export const apiPrompt = z.record(
  z.string(),
  z.object({ class_type: z.string(), inputs: z.record(z.string(), z.unknown()), _meta: z.unknown().optional() }),
);
/** A file a node wrote: under GET /api/ui/workflows/view. */
export const fileRef = z.object({ filename: z.string(), subfolder: z.string(), type: z.string() });
/** What an output node showed: ComfyUI's `executed.output` (`images`, `text`, `files`, ...). */
export const nodeOutput = z.record(z.string(), z.array(z.unknown()));
/** Why a prompt was refused, per node and input (ComfyUI's `node_errors`). */
export const nodeErrors = z.record(
  z.string(),
  z.object({
    errors: z.array(
      z.object({
        type: z.string(),
        message: z.string(),
        details: z.string().optional(),
        extra_info: z.object({ input_name: z.string().optional() }).optional(),
      }),
    ),
    class_type: z.string().optional(),
  }),
);
/** A queued prompt: [number, id, prompt, extra data (the editor's workflow), output node ids]. */
export const queueItem = z.tuple([
  z.number(),
  z.string(),
  apiPrompt,
  z.looseObject({ extra_pnginfo: z.looseObject({ workflow: z.unknown().optional() }).optional() }),
  z.array(z.string()),
]);
export const historyEntry = z.object({
  prompt: queueItem,
  outputs: z.record(z.string(), nodeOutput),
  status: z.object({
    status_str: z.enum(['success', 'error']),
    completed: z.boolean(),
    messages: z.array(z.tuple([z.string(), z.record(z.string(), z.unknown())])),
    node: z.string().nullable(),
  }),
});
export const promptAnswer = z.object({ prompt_id: z.string(), number: z.number() });
/** The 400 of a refused prompt: hearth's error, with ComfyUI's node_errors to place on nodes. */
export const promptRefusedAnswer = z.object({
  error: z.string(),
  type: z.string(),
  details: z.unknown(),
  /** `[]` when the prompt as a whole was refused (ComfyUI's shape) */
  node_errors: z.union([nodeErrors, z.tuple([])]),
});
export const queueAnswer = z.object({ queue_running: z.array(queueItem), queue_pending: z.array(queueItem) });
export const interruptAnswer = z.object({ interrupted: z.number() });
export const clearQueueAnswer = z.object({ removed: z.number() });
export const historyAnswer = z.record(z.string(), historyEntry);
/** One prompt: its history entry, or where it stands when it has not finished. */
export const promptHistoryAnswer = z.record(
  z.string(),
  z.union([historyEntry, z.object({ pending: z.boolean(), running: z.boolean() })]),
);
export const savedWorkflowsAnswer = z.object({
  workflows: z.array(z.object({ name: z.string(), updatedAt: timestamp })),
});
export const savedWorkflowAnswer = z.object({ name: z.string(), workflow: z.unknown(), updatedAt: timestamp });
export const savedPutAnswer = z.object({ name: z.string(), updatedAt: timestamp });
export const renamedAnswer = z.object({ name: z.string() });
export const galleryItem = fileRef.extend({
  type: z.literal('output'),
  kind: z.enum(['image', 'text', 'json']),
  promptId: z.string(),
  node: z.string(),
  classType: z.string().nullable(),
  createdAt: z.string().nullable(),
  prompt: apiPrompt,
  workflow: z.unknown(),
});
export const galleryAnswer = z.object({ items: z.array(galleryItem), more: z.boolean() });

// ---- the types web/ uses: what it sends (a schema's input) and what it reads (an answer's output)

type In<S extends z.ZodType> = z.input<S>;
type Out<S extends z.ZodType> = z.output<S>;

export type Role = Out<typeof user>['role'];
export type Theme = Out<typeof user>['theme'];
export type ChatParams = Out<typeof paramsField>;
export type User = Out<typeof user>;
export type SessionInfo = Out<typeof sessionAnswer>;
export type SignedIn = Out<typeof signedInAnswer>;
export type UserAnswer = Out<typeof userAnswer>;
export type UsersAnswer = Out<typeof usersAnswer>;
export type ModelsAnswer = Out<typeof modelsAnswer>;
export type ModelInfo = Out<typeof modelInfo>;
export type Attachment = Out<typeof attachment>;
/** Extensions of files a message carries as their bytes (src/chat/vocabulary.ts): the composer sends these so. */
export type ByteAttachment = (typeof BYTE_ATTACHMENTS)[number];
/** Extensions of files hearth does not read: the composer refuses them at once. */
export type UnreadAttachment = (typeof UNREAD_ATTACHMENTS)[number];
export type Source = Out<typeof source>;
export type MessageStats = Out<typeof messageStats>;
export type MessageRole = Out<typeof message>['role'];
export type MessageStatus = Out<typeof message>['status'];
export type Message = Out<typeof message>;
export type Conversation = Out<typeof conversation>;
export type ConversationSummary = Out<typeof conversationSummary>;
export type SearchHit = Out<typeof searchHit>;
export type ConversationPage = Out<typeof conversationsAnswer>;
export type ConversationAnswer = Out<typeof conversationAnswer>;
export type SearchAnswer = Out<typeof searchAnswer>;
export type ConversationWithMessages = Out<typeof conversationWithMessages>;
export type StopAnswer = Out<typeof stopAnswer>;
export type StopImageAnswer = Out<typeof stopImageAnswer>;
export type Drawing = Out<typeof drawing>;
export type ImportAnswer = Out<typeof importAnswer>;
export type ReplyEvent = Out<typeof replyEvent>;
export type ImageModelInfo = Out<typeof imageModelInfo>;
export type ImageEvent = Out<typeof imageEvent>;
export type Preset = Out<typeof preset>;
export type PresetsAnswer = Out<typeof presetsAnswer>;
export type PresetAnswer = Out<typeof presetAnswer>;

export type Credentials = In<typeof credentials>;
export type MePatch = In<typeof mePatch>;
export type NewUser = In<typeof newUser>;
export type UserPatch = In<typeof userPatch>;
export type ConversationInit = In<typeof conversationInit>;
export type ConversationPatch = In<typeof conversationPatch>;
export type ReplyBody = In<typeof replyBody>;
export type PresetBody = In<typeof presetBody>;
/** What "Create image" sends: the schema's output (its numbers are coerced, so its input type is `unknown`). */
export type ImageRequest = Out<typeof createImageBody>;

export type PullState = Out<typeof pull>['state'];
export type Pull = Out<typeof pull>;
export type AdminModel = Out<typeof adminModel>;
export type LoadedModel = Out<typeof loadedModel>;
export type AdminModels = Out<typeof adminModelsAnswer>;
export type PullsAnswer = Out<typeof pullsAnswer>;
export type PullAnswer = Out<typeof pullAnswer>;
export type KeysAnswer = Out<typeof keysAnswer>;
export type JobsAnswer = Out<typeof jobsAnswer>;
export type JobAnswer = Out<typeof jobAnswer>;
export type LogsAnswer = Out<typeof logsAnswer>;
export type ApiKey = Out<typeof apiKey>;
export type CreatedKey = Out<typeof createdKeyAnswer>;
export type Job = Out<typeof job>;
export type JobEvent = Out<typeof jobEvent>;
export type JobResults = Out<typeof jobResultsAnswer>;
export type Check = Out<typeof check>;
export type NodeState = Out<typeof nodeAnswer>;
export type CreateModelBody = In<typeof createModelBody>;
export type KeyBody = In<typeof keyBody>;
export type KeyScope = KeyBody['scopes'][number];

export type ApiPromptShape = Out<typeof apiPrompt>;
export type FileRef = Out<typeof fileRef>;
export type NodeOutput = Out<typeof nodeOutput>;
export type NodeErrors = Out<typeof nodeErrors>;
export type NodeError = NodeErrors[string]['errors'][number];
export type QueueItem = Out<typeof queueItem>;
export type HistoryEntry = Out<typeof historyEntry>;
export type PromptAnswer = Out<typeof promptAnswer>;
export type PromptRefusedAnswer = Out<typeof promptRefusedAnswer>;
export type QueueAnswer = Out<typeof queueAnswer>;
export type InterruptAnswer = Out<typeof interruptAnswer>;
export type ClearQueueAnswer = Out<typeof clearQueueAnswer>;
export type PromptHistoryAnswer = Out<typeof promptHistoryAnswer>;
export type SavedWorkflowsAnswer = Out<typeof savedWorkflowsAnswer>;
export type SavedWorkflowAnswer = Out<typeof savedWorkflowAnswer>;
export type SavedPutAnswer = Out<typeof savedPutAnswer>;
export type RenamedAnswer = Out<typeof renamedAnswer>;
export type OkAnswer = Out<typeof okAnswer>;
export type GalleryItem = Out<typeof galleryItem>;
export type GalleryAnswer = Out<typeof galleryAnswer>;
