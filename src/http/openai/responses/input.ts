import type { ChatMessage, ChatRequest, OutputFormat, ToolDefinition } from '../../../engine/types.js';
import { parseRequest } from '../../validate.js';
import { DATA_URL, parseArguments } from '../messages.js';
import { invalidParam } from '../options.js';
import {
  type ContentPart,
  type FunctionCallItem,
  type FunctionCallOutputItem,
  functionCallItemSchema,
  functionCallOutputItemSchema,
  functionToolSchema,
  type InputItem,
  type MessageItem,
  messageItemSchema,
  type ResponseCreateBody,
} from './schemas.js';

/** An input item checked against its own type's schema: a message, a function call or a call's output. */
export type ConversationItem =
  | ({ type: 'message' } & MessageItem)
  | FunctionCallItem
  | FunctionCallOutputItem
  | { type: 'reasoning'; [k: string]: unknown };

/** `input` as a list of items; a string is one user message, as OpenAI reads it. */
export function inputItems(body: ResponseCreateBody): ConversationItem[] {
  if (typeof body.input === 'string') return [{ type: 'message', role: 'user', content: body.input }];
  return body.input.map((raw, i) => checkItem(raw, `input.${i}`));
}

function checkItem(raw: InputItem, at: string): ConversationItem {
  const type = raw.type ?? 'message';
  switch (type) {
    case 'message':
      return { ...parseRequest(messageItemSchema, raw, at), type: 'message' };
    case 'function_call':
      return parseRequest(functionCallItemSchema, raw, at);
    case 'function_call_output':
      return parseRequest(functionCallOutputItemSchema, raw, at);
    case 'reasoning':
      return { ...raw, type: 'reasoning' };
    case 'item_reference':
      throw invalidParam(at, `${at}: item_reference is not supported: send the item itself`);
    default:
      throw invalidParam(
        `${at}.type`,
        `${at}: items of type "${type}" are not supported: send message, function_call or function_call_output items`,
      );
  }
}

function partsText(parts: ContentPart[], at: string, images: string[] | null): string {
  const texts: string[] = [];
  parts.forEach((part, j) => {
    const where = `${at}.${j}`;
    switch (part.type) {
      case 'input_text':
      case 'output_text':
        texts.push(part.text);
        break;
      case 'refusal':
        texts.push(part.refusal);
        break;
      case 'input_image': {
        if (images === null) throw invalidParam(`${where}.type`, `${where}: images are only taken in user messages`);
        const match = part.image_url ? DATA_URL.exec(part.image_url) : null;
        if (!match) {
          throw invalidParam(
            `${where}.image_url`,
            `${where}: hearth takes images inline as a data URL (data:image/png;base64,...); it does not fetch URLs or files`,
          );
        }
        images.push(match[1]!);
        break;
      }
      default:
        throw invalidParam(
          `${where}.type`,
          `${where}: content parts of type "${part.type}" are not supported: send input_text or input_image parts`,
        );
    }
  });
  return texts.join('\n');
}

/**
 * Responses items → the engine's chat messages (the same ones /v1/chat/completions
 * produces). Function calls join the assistant turn before them; a call's output
 * becomes a `tool` message named after the function its `call_id` answers.
 * Reasoning items are skipped: hearth keeps no hidden reasoning between turns.
 */
export function toEngineMessages(items: ConversationItem[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  const callNames = new Map<string, string>();
  items.forEach((item, i) => {
    const at = `input.${i}`;
    switch (item.type) {
      case 'message': {
        const m = item as MessageItem;
        const images: string[] = [];
        const text =
          typeof m.content === 'string'
            ? m.content
            : partsText(m.content, `${at}.content`, m.role === 'user' ? images : null);
        const role = m.role === 'developer' || m.role === 'system' ? 'system' : m.role;
        out.push({ role, content: text, ...(images.length ? { images } : {}) });
        break;
      }
      case 'function_call': {
        const c = item as FunctionCallItem;
        const call = { id: c.call_id, name: c.name, arguments: parseArguments(c.arguments, `${at}.arguments`) };
        callNames.set(c.call_id, c.name);
        const last = out.at(-1);
        if (last?.role === 'assistant') last.toolCalls = [...(last.toolCalls ?? []), call];
        else out.push({ role: 'assistant', content: '', toolCalls: [call] });
        break;
      }
      case 'function_call_output': {
        const o = item as FunctionCallOutputItem;
        const name = callNames.get(o.call_id);
        if (!name) {
          throw invalidParam(
            `${at}.call_id`,
            `${at}: call_id "${o.call_id}" answers no function_call before it: send the function_call item first, or use previous_response_id`,
          );
        }
        const content = typeof o.output === 'string' ? o.output : partsText(o.output, `${at}.output`, null);
        out.push({ role: 'tool', content, toolName: name });
        break;
      }
      default:
        break;
    }
  });
  return out;
}

/** Function tools → engine tools; hosted tools (web_search, file_search, mcp, ...) are refused by name. */
export function toEngineTools(body: ResponseCreateBody): ToolDefinition[] | undefined {
  if (!body.tools?.length) return undefined;
  return body.tools.map((raw, i) => {
    if (raw.type !== 'function') {
      throw invalidParam(
        `tools.${i}.type`,
        `tools[${i}]: hosted tools of type "${raw.type}" are not supported by hearth: send function tools`,
      );
    }
    const t = parseRequest(functionToolSchema, raw, `tools.${i}`);
    return {
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parameters ? { parameters: t.parameters } : {}),
    };
  });
}

export function toEngineToolChoice(
  body: ResponseCreateBody,
  tools: ToolDefinition[] | undefined,
): ChatRequest['toolChoice'] {
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'none' || choice === 'auto') return choice;
  if (!tools) {
    throw invalidParam('tool_choice', `tool_choice ${JSON.stringify(choice)} needs tools: send the functions in tools`);
  }
  if (choice === 'required') return 'required';
  if (choice.type !== 'function' || typeof choice['name'] !== 'string') {
    throw invalidParam(
      'tool_choice',
      `tool_choice of type "${choice.type}" is not supported: use none, auto, required or {type: "function", name}`,
    );
  }
  const name = choice['name'];
  if (!tools.some((t) => t.name === name)) {
    throw invalidParam('tool_choice', `tool_choice names function "${name}", which is not in tools`);
  }
  return { name };
}

/** Both JSON modes are grammar-constrained by the engine, so the output parses. */
export function toEngineFormat(body: ResponseCreateBody): OutputFormat | undefined {
  const format = body.text?.format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return 'json';
  return { schema: format.schema };
}

/** Fields OpenAI honours that would change the response; hearth refuses them rather than ignore them. */
export function refuseUnsupported(body: ResponseCreateBody): void {
  if (body.background === true) {
    throw invalidParam('background', 'background responses are not supported: leave background out or set it false');
  }
  if (body.conversation !== undefined && body.conversation !== null) {
    throw invalidParam('conversation', 'conversations are not supported: chain responses with previous_response_id');
  }
  if (body.prompt !== undefined && body.prompt !== null) {
    throw invalidParam('prompt', 'prompt templates are not supported: send instructions and input');
  }
  if (body.top_logprobs) throw invalidParam('top_logprobs', 'top_logprobs is not supported: leave it out');
}
