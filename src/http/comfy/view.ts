import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { basename, extname, join, sep } from 'node:path';
import type { FastifyReply } from 'fastify';
import * as z from 'zod';
import type { AppContext } from '../../context.js';
import { HearthError, isHearthError } from '../../errors.js';
import { OUTPUT_FOLDER } from '../../workflows/nodes/index.js';
import { parseRequest } from '../validate.js';

export const INPUT_FOLDER = 'inputs';
const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
};

/** `/view`'s query (ComfyUI's names), one value per parameter: a repeated one is an array, refused with 400. */
const viewQuery = z.object({
  filename: z.string().min(1, 'filename is required'),
  subfolder: z.string().optional(),
  type: z.string().optional(),
});
export type ViewQuery = z.infer<typeof viewQuery>;

/** A name or subfolder from a client: relative, no `..`, no backslashes; 400 otherwise. */
export function safeRelative(value: string, what: string): string {
  const parts = value.split('/').filter((p) => p !== '' && p !== '.');
  if (
    value.startsWith('/') ||
    value.includes('\\') ||
    /^[A-Za-z]:/.test(value) ||
    parts.includes('..') ||
    value.includes('\0')
  ) {
    throw new HearthError(
      'BAD_REQUEST',
      `${what} ${JSON.stringify(value)} is not allowed: use a relative name without ..`,
    );
  }
  return parts.join('/');
}

/** The Atlas key of a saved output or an upload (`type` output or input), checked like /view's names. */
export function workflowFileKey(query: unknown): { key: string; rel: string; type: 'output' | 'input' | 'temp' } {
  const q = parseRequest(viewQuery, query ?? {}, 'query');
  const filename = safeRelative(q.filename, 'filename');
  const subfolder = safeRelative(q.subfolder ?? '', 'subfolder');
  const type = q.type ?? 'output';
  if (type !== 'output' && type !== 'input' && type !== 'temp')
    throw new HearthError('BAD_REQUEST', `type ${JSON.stringify(type)}: use output, input or temp`);
  const rel = [subfolder, filename].filter(Boolean).join('/');
  return { key: `${type === 'input' ? INPUT_FOLDER : OUTPUT_FOLDER}/${rel}`, rel, type };
}

/**
 * ComfyUI's `/view`: a saved output, an upload or a preview. Served to ComfyUI clients (API keys)
 * and to the web app's gallery (the session) alike.
 */
export async function sendWorkflowFile(ctx: AppContext, query: unknown, reply: FastifyReply): Promise<FastifyReply> {
  const { key, rel, type } = workflowFileKey(query);
  // Served as the named type only: a browser must not sniff stored bytes into HTML or script.
  reply.type(MIME[extname(rel).toLowerCase()] ?? 'application/octet-stream');
  reply.header('x-content-type-options', 'nosniff');
  // (A caller that asked for a download has set `attachment` already.)
  if (!reply.hasHeader('content-disposition'))
    reply.header('content-disposition', `inline; filename*=UTF-8''${encodeURIComponent(basename(rel))}`);
  if (type === 'temp') return sendTemp(reply, ctx.workflows.tempDir, rel);
  try {
    ctx.atlas.files.localPath(key); // refuses a symlink that leads outside Atlas
    return reply.send(await ctx.atlas.files.read(key));
  } catch (err) {
    // Messages name the file as the client did, never where Atlas keeps it.
    if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND'))
      throw new HearthError('NOT_FOUND', `no ${type} file ${rel}: /history lists what prompts saved`);
    if (isHearthError(err, 'ATLAS_FILES_BAD_KEY') || isHearthError(err, 'ATLAS_FILES_UNREADABLE')) {
      throw new HearthError('BAD_REQUEST', `${rel} is not a file hearth serves`);
    }
    throw err;
  }
}

async function sendTemp(reply: FastifyReply, tempDir: string, rel: string) {
  let real: string;
  let root: string;
  try {
    root = await realpath(tempDir);
    real = await realpath(join(tempDir, rel));
  } catch {
    throw new HearthError('NOT_FOUND', `no preview ${rel}: previews are disposable; run the prompt again`);
  }
  // A symlink in the temp area must not lead anywhere else on the node.
  if (!real.startsWith(root + sep)) throw new HearthError('BAD_REQUEST', `${rel} leads outside the preview area`);
  return reply.send(createReadStream(real));
}
