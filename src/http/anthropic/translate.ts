import type { ChatMessage, ChatRequest, ToolCall, ToolDefinition } from '../../engine/types.js';
import { HearthError } from '../../errors.js';
import { type ModelOptions, parseOptions } from '../../models/options.js';
import { parseRequest } from '../validate.js';
import {
  type Block,
  type CountTokensBody,
  customToolSchema,
  imageBlockSchema,
  type MessageCreateBody,
  toolResultBlockSchema,
  toolUseBlockSchema,
} from './schemas.js';

/** A 400 naming the field, as Anthropic's invalid_request_error messages do. */
export function invalidField(field: string, message: string): HearthError {
  return new HearthError('BAD_REQUEST', `${field}: ${message}`, { details: { param: field } });
}

/** `system` as one system prompt: a string, or its text blocks joined. */
export function systemPrompt(body: CountTokensBody): string | undefined {
  if (body.system === undefined) return undefined;
  if (typeof body.system === 'string') return body.system;
  return body.system.map((b) => b.text).join('\n');
}

function imageData(raw: Block, at: string): string {
  const image = parseRequest(imageBlockSchema, raw, at);
  const source = image.source as { type: string; data?: string; media_type?: string };
  if (source.type !== 'base64' || typeof source.data !== 'string') {
    throw invalidField(
      `${at}.source`,
      `images of source type "${source.type}" are not supported: send the image as base64 (source.type "base64"); hearth does not fetch URLs`,
    );
  }
  return source.data;
}

function toolResultText(content: unknown, at: string): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return (content as Block[])
    .map((b, k) => {
      if (b.type === 'text' && typeof b['text'] === 'string') return b['text'];
      throw invalidField(
        `${at}.content.${k}.type`,
        `tool_result content of type "${b.type}" is not supported: send the result as text`,
      );
    })
    .join('\n');
}

/** Block types that carry nothing hearth can give the model (earlier thinking is not replayed). */
const SKIPPED = new Set(['thinking', 'redacted_thinking']);

/**
 * Messages → the engine's chat messages (the same ones /v1/chat/completions
 * produces). An assistant's tool_use blocks become its tool calls; a user's
 * tool_result blocks become `tool` messages named after the function their
 * `tool_use_id` answers; the rest of a user turn (text, images) follows them.
 */
export function toEngineMessages(body: CountTokensBody): ChatMessage[] {
  const out: ChatMessage[] = [];
  const callNames = new Map<string, string>();
  body.messages.forEach((m, i) => {
    const at = `messages.${i}.content`;
    if (typeof m.content === 'string') {
      out.push({ role: m.role, content: m.content });
      return;
    }
    const texts: string[] = [];
    const images: string[] = [];
    const calls: ToolCall[] = [];
    m.content.forEach((raw, j) => {
      const where = `${at}.${j}`;
      if (SKIPPED.has(raw.type)) return;
      switch (raw.type) {
        case 'text':
          if (typeof raw['text'] !== 'string') throw invalidField(`${where}.text`, 'a text block needs its text');
          texts.push(raw['text']);
          return;
        case 'image':
          if (m.role !== 'user') throw invalidField(where, 'images are only taken in user messages');
          images.push(imageData(raw, where));
          return;
        case 'tool_use': {
          if (m.role !== 'assistant') throw invalidField(where, 'tool_use blocks belong in assistant messages');
          const use = parseRequest(toolUseBlockSchema, raw, where);
          calls.push({ id: use.id, name: use.name, arguments: use.input });
          callNames.set(use.id, use.name);
          return;
        }
        case 'tool_result': {
          if (m.role !== 'user') throw invalidField(where, 'tool_result blocks belong in user messages');
          const result = parseRequest(toolResultBlockSchema, raw, where);
          const name = callNames.get(result.tool_use_id);
          if (!name) {
            throw invalidField(
              `${where}.tool_use_id`,
              `tool_use_id "${result.tool_use_id}" answers no tool_use block of an earlier assistant message`,
            );
          }
          const text = toolResultText(result.content, where);
          out.push({ role: 'tool', content: result.is_error ? `Error: ${text}` : text, toolName: name });
          return;
        }
        default:
          throw invalidField(
            `${where}.type`,
            `content blocks of type "${raw.type}" are not supported: send text, image, tool_use or tool_result blocks`,
          );
      }
    });
    if (m.role === 'assistant') {
      out.push({ role: 'assistant', content: texts.join(''), ...(calls.length ? { toolCalls: calls } : {}) });
    } else if (texts.length || images.length) {
      out.push({ role: 'user', content: texts.join('\n'), ...(images.length ? { images } : {}) });
    }
  });
  return out;
}

/** Client tools → engine tools; Anthropic's server tools (web search, bash, text editor, …) are refused by name. */
export function toEngineTools(body: CountTokensBody): ToolDefinition[] | undefined {
  if (!body.tools?.length) return undefined;
  return body.tools.map((raw, i) => {
    if (raw.type !== undefined && raw.type !== 'custom') {
      throw invalidField(
        `tools.${i}.type`,
        `server tools of type "${raw.type}" are not supported by hearth: define the tool yourself (name, description, input_schema)`,
      );
    }
    const t = parseRequest(customToolSchema, raw, `tools.${i}`);
    return { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema };
  });
}

export function toEngineToolChoice(
  body: CountTokensBody,
  tools: ToolDefinition[] | undefined,
): ChatRequest['toolChoice'] {
  const choice = body.tool_choice;
  if (!choice) return undefined;
  switch (choice.type) {
    case 'auto':
    case 'none':
      return choice.type;
    case 'any':
      if (!tools) throw invalidField('tool_choice', 'tool_choice "any" needs tools');
      return 'required';
    case 'tool': {
      const name = choice.name;
      if (!name) throw invalidField('tool_choice.name', 'tool_choice "tool" needs the tool\'s name');
      if (!tools?.some((t) => t.name === name)) {
        throw invalidField('tool_choice.name', `tool_choice names tool "${name}", which is not in tools`);
      }
      return { name };
    }
  }
}

/** Anthropic's sampling fields under their Ollama option names, validated by the Ollama options parser. */
export function samplingOptions(body: MessageCreateBody): ModelOptions {
  const raw: Record<string, unknown> = { num_predict: body.max_tokens };
  if (body.temperature !== undefined) raw['temperature'] = body.temperature;
  if (body.top_p !== undefined) raw['top_p'] = body.top_p;
  if (body.top_k !== undefined) raw['top_k'] = body.top_k;
  if (body.stop_sequences?.length) raw['stop'] = body.stop_sequences;
  return parseOptions(raw, 'request');
}

/** Fields that ask for something hearth does not do: refused rather than ignored. */
export function refuseUnsupported(body: MessageCreateBody): void {
  if (body.container !== undefined && body.container !== null) {
    throw invalidField('container', 'containers (code execution) are not supported: leave container out');
  }
  if (body.mcp_servers?.length) {
    throw invalidField('mcp_servers', 'MCP servers are not supported: call the tools yourself and send them as tools');
  }
}
