import type { ChatMessage, ChatRequest, OutputFormat, ToolCall, ToolDefinition } from '../../engine/types.js';
import { invalidParam } from './options.js';
import type { ChatCompletionBody, ChatMessageBody } from './schemas.js';

/** An inline image: `data:image/png;base64,<data>`; the data is what the engine takes. */
export const DATA_URL = /^data:image\/[\w.+-]+;base64,(.*)$/s;

function contentOf(m: ChatMessageBody, i: number): { text: string; images: string[] } {
  if (m.content === undefined || m.content === null) {
    if (m.role === 'assistant') return { text: '', images: [] };
    throw invalidParam(`messages.${i}.content`, `messages[${i}]: a "${m.role}" message needs content`);
  }
  if (typeof m.content === 'string') return { text: m.content, images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  m.content.forEach((part, j) => {
    const at = `messages.${i}.content.${j}`;
    switch (part.type) {
      case 'text':
        texts.push(part.text);
        break;
      case 'refusal':
        texts.push(part.refusal);
        break;
      case 'image_url': {
        const match = DATA_URL.exec(part.image_url.url);
        if (!match) {
          throw invalidParam(
            `${at}.image_url.url`,
            /^https?:/i.test(part.image_url.url)
              ? `messages[${i}].content[${j}]: hearth does not fetch image URLs (inference.fetchImageUrls is off): send the image inline as a data URL (data:image/png;base64,...)`
              : `messages[${i}].content[${j}]: image_url.url must be a data URL (data:image/png;base64,...) or, with inference.fetchImageUrls on, an http(s) URL`,
          );
        }
        images.push(match[1]!);
        break;
      }
      default:
        throw invalidParam(
          `${at}.type`,
          `messages[${i}].content[${j}]: content parts of type "${part.type}" are not supported: send text or image_url parts`,
        );
    }
  });
  return { text: texts.join('\n'), images };
}

/** A tool call's `arguments` string → the object the engine takes; a 400 naming `param` otherwise. */
export function parseArguments(raw: string, param: string): Record<string, unknown> {
  if (raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidParam(
      param,
      `${param}: tool call arguments must be a JSON object string, got ${JSON.stringify(raw.slice(0, 80))}`,
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidParam(param, `${param}: tool call arguments must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * OpenAI messages → engine messages. `developer` is a system prompt; a `tool`
 * message answers a `tool_call_id`, which the engine (and the chat template)
 * knows by the function's name, so it is looked up in the earlier assistant turns.
 */
export function toEngineMessages(messages: ChatMessageBody[]): ChatMessage[] {
  const callNames = new Map<string, string>();
  return messages.map((m, i) => {
    const { text, images } = contentOf(m, i);
    const out: ChatMessage = { role: 'user', content: text };
    if (images.length) out.images = images;
    switch (m.role) {
      case 'system':
      case 'developer':
        out.role = 'system';
        break;
      case 'user':
        break;
      case 'assistant': {
        out.role = 'assistant';
        if (m.tool_calls?.length) {
          out.toolCalls = m.tool_calls.map(
            (c, k): ToolCall => ({
              id: c.id,
              name: c.function.name,
              arguments: parseArguments(c.function.arguments, `messages.${i}.tool_calls.${k}.function.arguments`),
            }),
          );
          for (const c of m.tool_calls) callNames.set(c.id, c.function.name);
        }
        break;
      }
      case 'tool': {
        out.role = 'tool';
        const id = m.tool_call_id;
        if (!id)
          throw invalidParam(
            `messages.${i}.tool_call_id`,
            `messages[${i}]: a "tool" message needs the tool_call_id it answers`,
          );
        const name = callNames.get(id);
        if (!name) {
          throw invalidParam(
            `messages.${i}.tool_call_id`,
            `messages[${i}]: tool_call_id "${id}" answers no tool call of an earlier assistant message`,
          );
        }
        out.toolName = name;
        break;
      }
      case 'function': {
        // The deprecated predecessor of "tool": the function's name comes with the message.
        out.role = 'tool';
        if (!m.name)
          throw invalidParam(`messages.${i}.name`, `messages[${i}]: a "function" message needs the function's name`);
        out.toolName = m.name;
        break;
      }
    }
    return out;
  });
}

export function toEngineTools(body: ChatCompletionBody): ToolDefinition[] | undefined {
  if (!body.tools?.length) return undefined;
  return body.tools.map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    ...(t.function.parameters ? { parameters: t.function.parameters } : {}),
  }));
}

export function toEngineToolChoice(
  body: ChatCompletionBody,
  tools: ToolDefinition[] | undefined,
): ChatRequest['toolChoice'] {
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'none' || choice === 'auto') return choice;
  if (!tools)
    throw invalidParam('tool_choice', `tool_choice ${JSON.stringify(choice)} needs tools: send the functions in tools`);
  if (choice === 'required') return 'required';
  const name = choice.function.name;
  if (!tools.some((t) => t.name === name)) {
    throw invalidParam('tool_choice', `tool_choice names function "${name}", which is not in tools`);
  }
  return { name };
}

/** Both JSON modes are grammar-constrained by the engine, so the output parses. */
export function toEngineFormat(format: ChatCompletionBody['response_format']): OutputFormat | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return 'json';
  return format.json_schema.schema ? { schema: format.json_schema.schema } : 'json';
}
