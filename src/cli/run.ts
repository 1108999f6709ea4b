import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { HearthClient } from './client.js';
import { action } from './shared.js';

interface ChatChunk {
  message?: { content?: string };
  done: boolean;
}

type Message = { role: 'user' | 'assistant'; content: string };

const HELP = `Available Commands:
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command

Use """ to begin a multi-line message.
`;

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a model: one prompt, piped stdin, or an interactive chat')
    .argument('<model>')
    .argument('[prompt...]')
    .option('--keepalive <duration>', 'how long the model stays loaded after this (e.g. 5m, 0, -1)')
    .action(
      action(async (model: string, words: string[], o: { keepalive?: string }) => {
        const client = new HearthClient();
        const keepAlive = o.keepalive !== undefined ? { keep_alive: o.keepalive } : {};
        let prompt = words.join(' ');
        if (!process.stdin.isTTY) {
          const chunks: Buffer[] = [];
          for await (const c of process.stdin) chunks.push(c as Buffer);
          const piped = Buffer.concat(chunks).toString('utf8').trim();
          prompt = [piped, prompt].filter(Boolean).join('\n\n');
        }
        // Load first, so an unknown model fails before the user types anything.
        await client.json('POST', '/api/chat', { model, messages: [], stream: false, ...keepAlive });
        if (prompt) {
          await reply(client, model, [{ role: 'user', content: prompt }], keepAlive);
          return;
        }
        await interactive(client, model, keepAlive);
      }),
    );
}

async function reply(
  client: HearthClient,
  model: string,
  messages: Message[],
  extra: object,
  signal?: AbortSignal,
): Promise<string> {
  let text = '';
  for await (const chunk of client.stream<ChatChunk>(
    '/api/chat',
    { model, messages, stream: true, ...extra },
    signal,
  )) {
    const piece = chunk.message?.content ?? '';
    text += piece;
    process.stdout.write(piece);
  }
  process.stdout.write('\n\n');
  return text;
}

async function interactive(client: HearthClient, model: string, extra: object): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '>>> ' });
  const history: Message[] = [];
  let generating: AbortController | null = null;
  let multiline: string[] | null = null;
  rl.on('SIGINT', () => {
    if (generating) generating.abort();
    else {
      process.stdout.write('\nUse Ctrl + d or /bye to exit.\n');
      rl.prompt();
    }
  });
  rl.prompt();
  for await (const line of rl) {
    if (multiline) {
      const end = line.indexOf('"""');
      if (end < 0) {
        multiline.push(line);
        continue;
      }
      multiline.push(line.slice(0, end));
    }
    const input: string = multiline ? multiline.join('\n') : line.trim();
    if (!multiline && input.startsWith('"""')) {
      const rest: string = input.slice(3);
      if (!rest.includes('"""')) {
        multiline = [rest];
        continue;
      }
    }
    multiline = null;
    if (input === '/bye' || input === '/exit') break;
    if (input === '/?' || input === '/help') {
      process.stdout.write(HELP);
    } else if (input === '/clear') {
      history.length = 0;
      process.stdout.write('Cleared session context\n');
    } else if (input.startsWith('/')) {
      process.stdout.write(`Unknown command '${input.split(' ')[0]}'. Type /? for help\n`);
    } else if (input) {
      history.push({ role: 'user', content: input });
      generating = new AbortController();
      try {
        history.push({ role: 'assistant', content: await reply(client, model, history, extra, generating.signal) });
      } catch (err) {
        history.pop();
        if (!generating.signal.aborted) throw err;
        process.stdout.write('\n');
      } finally {
        generating = null;
      }
    }
    rl.prompt();
  }
  rl.close();
}
