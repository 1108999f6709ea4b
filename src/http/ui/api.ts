/**
 * The JSON API the web app speaks, under /api/ui (service class `ui`).
 * Documented in docs/ui.md. Errors leave through the one HTTP error path, in
 * the `{"error": "..."}` shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type * as z from 'zod';
import type { ChatParams, ConversationMessage, ReplyEvents, User } from '../../chat/index.js';
import {
  conversationMarkdown,
  exportConversation,
  exportFile,
  IMAGE_NAME,
  imageKey,
  imageMediaType,
  MAX_ATTACHMENT_BYTES,
  parseImport,
} from '../../chat/index.js';
import { LOOPBACK_ZONE } from '../../config/index.js';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { generateImages } from '../../images/generate.js';
import { parseOptions } from '../../models/options.js';
import {
  FailedAuthLimiter,
  parseCidrBlock,
  type RequestClient,
  resolveClient,
  viaHttps,
  ZoneMap,
  ZonePolicy,
} from '../../net/index.js';
import { knowledgeRoutes } from '../knowledge/routes.js';
import { imageRequest } from '../openai/images.js';
import { NdjsonStream } from '../stream.js';
import { answer, parseRequest } from '../validate.js';
import { uiAdminRoutes } from './admin.js';
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie, UiAuth } from './auth.js';
import {
  conversationAnswer,
  conversationInit,
  conversationPatch,
  conversationsAnswer,
  conversationWithMessages,
  createImageBody,
  credentials,
  exportQuery,
  followQuery,
  imageEvent,
  importAnswer,
  listQuery,
  mePatch,
  modelsAnswer,
  newUser,
  okAnswer,
  presetAnswer,
  presetBody,
  presetsAnswer,
  replyBody,
  replyEvent,
  searchAnswer,
  searchQuery,
  sessionAnswer,
  signedInAnswer,
  stopAnswer,
  stopImageAnswer,
  userAnswer,
  userPatch,
  usersAnswer,
} from './contract.js';
import { uiWorkflowRoutes } from './workflows.js';

type IdParams = { id: string };
type MessageParams = { id: string; messageId: string };

/** Validated chat parameters: Ollama option names and values, through the one option parser. */
function checkParams(params: ChatParams | undefined): ChatParams | undefined {
  if (params === undefined) return undefined;
  parseOptions(params, 'params');
  return params;
}

function publicUser(user: User) {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    defaultModel: user.defaultModel,
    theme: user.preferences.theme ?? 'system',
    createdAt: user.createdAt,
  };
}

function attachmentFilename(title: string, ext: string): string {
  const base =
    title
      .replace(/[^\p{L}\p{N} ._-]+/gu, '')
      .trim()
      .slice(0, 60) || 'conversation';
  return `attachment; filename*=UTF-8''${encodeURIComponent(`${base}.${ext}`)}`;
}

/**
 * Administration from a browser (models, keys, users) is for clients in `adminZones` or on loopback,
 * as the admin service class is: the answer says why a client elsewhere is refused.
 */
function adminZoneCheck(ctx: AppContext, clientOf: (request: FastifyRequest) => RequestClient) {
  const zones = ZoneMap.fromConfig(ctx.config);
  const adminZones = [LOOPBACK_ZONE, ...ctx.config.adminZones];
  const policy = new ZonePolicy({ zones, allowed: adminZones, denied: ctx.config.deny });
  return (request: FastifyRequest): string | null => {
    const client = clientOf(request);
    if (policy.inAnyOf(client.address, adminZones)) return null;
    const where = zones.zonesOf(client.address);
    return (
      `administration (models, API keys, users, jobs) is open only to the admin zones (${adminZones.join(', ')}); ` +
      `this browser's address ${client.address.text} is in ${where.length ? `zone ${where.join(', ')}` : 'no admin zone'}: ` +
      'use a machine on the management network, or add its zone to adminZones'
    );
  };
}

/**
 * Streams a reply being written as NDJSON events: `message` (each stored message), `text`, `notice`,
 * then `done` with the final message. Writes after the client left are dropped; the reply goes on.
 */
async function streamReply(
  request: FastifyRequest,
  reply: FastifyReply,
  write: (events: ReplyEvents) => Promise<ConversationMessage>,
): Promise<FastifyReply> {
  const stream = new NdjsonStream(request, reply);
  const send = (event: z.input<typeof replyEvent>) => void stream.write(event);
  try {
    const final = await write({
      message: (message: ConversationMessage) => send({ type: 'message', message }),
      text: (text: string) => send({ type: 'text', text }),
      notice: (text: string) => send({ type: 'notice', text }),
    });
    send({ type: 'done', message: final });
    stream.end();
  } catch (err) {
    stream.fail(err);
  }
  return reply;
}

export async function uiApiRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  const chat = ctx.chat;
  // Sign-in guessing is limited per address, as API keys are.
  const failures = new FailedAuthLimiter();
  // Behind a trusted proxy, the client is the address it forwards (request.ip would be the proxy's,
  // and one client's failures would lock out everyone behind it); HTTPS is what it says it was.
  const proxies = ctx.config.trustedProxies.map(parseCidrBlock);
  const clientOf = (request: FastifyRequest) => resolveClient(request.raw, proxies);
  const auth = new UiAuth(chat.sessions, adminZoneCheck(ctx, clientOf));
  const secureCookie = (request: FastifyRequest) => viaHttps(request.raw, clientOf(request));

  // Conversations are private: never cached by the browser or a proxy. Set before the route runs, so
  // that streamed replies (which skip onSend) carry it too; a route that sets its own cache-control wins.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });
  app.addHook('onRequest', (request, reply) => auth.check(request, reply));
  // The workflow editor's API (/api/ui/workflows), under the same session and CSRF checks.
  await app.register(uiWorkflowRoutes, { ctx, auth });
  // The admin screens (models, pulls, keys, jobs, node), for admins in the admin zones.
  await app.register(uiAdminRoutes, { ctx, auth });

  const refuseWhileLimited = (reply: FastifyReply, source: string, what: string) => {
    const waitMs = failures.retryAfterMs(source);
    if (waitMs <= 0) return;
    reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
    throw new HearthError('AUTH_RATE_LIMITED', `${what}: try again in ${Math.ceil(waitMs / 1000)} s`);
  };
  // Knowledge bases, for the signed-in user (their own and the shared ones).
  await knowledgeRoutes(app, {
    ctx,
    prefix: '/api/ui/knowledge',
    viewer: (request) => {
      const { user } = auth.session(request);
      return { userId: user.id, admin: user.role === 'admin' };
    },
  });

  const startSession = async (request: FastifyRequest, reply: FastifyReply, user: User) => {
    const { token, session } = await chat.sessions.create(user);
    reply.header('set-cookie', sessionCookie(token, chat.sessions.ttlMs, secureCookie(request)));
    return answer(signedInAnswer, { user: publicUser(user), csrfToken: session.csrfToken });
  };

  // ---- accounts and sessions

  app.get('/api/ui/session', { config: { uiAccess: 'public' } }, async (request, reply) => {
    const session = auth.sessionOf(request);
    if (session) {
      // The page asks this on every load: the cookie's lifetime slides with the session's.
      const token = readCookie(request.headers.cookie, SESSION_COOKIE);
      if (token) reply.header('set-cookie', sessionCookie(token, chat.sessions.ttlMs, secureCookie(request)));
      return answer(sessionAnswer, {
        user: publicUser(session.user),
        csrfToken: session.csrfToken,
        setupRequired: false,
      });
    }
    return answer(sessionAnswer, { user: null, csrfToken: null, setupRequired: (await chat.users.count()) === 0 });
  });

  app.post('/api/ui/setup', { config: { uiAccess: 'public' } }, async (request, reply) => {
    const body = parseRequest(credentials, request.body);
    const user = await chat.users.createFirstAdmin(body);
    ctx.log.info({ user: user.username }, 'chat: first admin account created');
    return reply.code(201).send(await startSession(request, reply, user));
  });

  app.post('/api/ui/login', { config: { uiAccess: 'public' } }, async (request, reply) => {
    const body = parseRequest(credentials, request.body);
    const source = clientOf(request).address.text;
    refuseWhileLimited(reply, source, `too many failed sign-ins from ${source}`);
    const user = await chat.users.authenticate(body.username, body.password);
    if (!user) {
      failures.recordFailure(source);
      throw new HearthError('UI_LOGIN_FAILED', 'wrong user name or password');
    }
    return startSession(request, reply, user);
  });

  app.post('/api/ui/logout', async (request, reply) => {
    await chat.sessions.revoke(auth.session(request).id);
    reply.header('set-cookie', clearedSessionCookie());
    return answer(okAnswer, { ok: true });
  });

  app.patch('/api/ui/me', async (request, reply) => {
    const session = auth.session(request);
    const body = parseRequest(mePatch, request.body);
    let user = session.user;
    if (body.newPassword !== undefined) {
      // Guessing the current password with a borrowed session is limited like sign-in, per account.
      const source = `user:${user.id}`;
      refuseWhileLimited(reply, source, 'too many wrong current passwords');
      const checked = await chat.users.authenticate(user.username, body.currentPassword ?? '');
      if (!checked) {
        failures.recordFailure(source);
        throw new HearthError('UI_LOGIN_FAILED', 'the current password is wrong', { status: 403 });
      }
      await chat.users.setPassword(user.id, body.newPassword);
      await chat.sessions.revokeUser(user.id, session.id);
    }
    if (body.defaultModel !== undefined) {
      if (body.defaultModel !== null) await ctx.models.get(body.defaultModel);
      user = await chat.users.setDefaultModel(user.id, body.defaultModel);
    }
    if (body.theme !== undefined) user = await chat.users.setPreferences(user.id, { theme: body.theme });
    return answer(userAnswer, { user: publicUser(user) });
  });

  // ---- users (admins)

  app.get('/api/ui/users', { config: { uiAccess: 'admin' } }, async () => {
    const seen = await chat.sessions.lastSeen();
    return answer(usersAnswer, {
      users: (await chat.users.list()).map((u) => ({ ...publicUser(u), lastSeenAt: seen.get(u.id) ?? null })),
    });
  });

  app.post('/api/ui/users', { config: { uiAccess: 'admin' } }, async (request, reply) => {
    const body = parseRequest(newUser, request.body);
    const user = await chat.users.create(body);
    return reply.code(201).send(answer(userAnswer, { user: publicUser(user) }));
  });

  app.patch<{ Params: IdParams }>('/api/ui/users/:id', { config: { uiAccess: 'admin' } }, async (request) => {
    const body = parseRequest(userPatch, request.body);
    let user = await chat.users.get(request.params.id);
    if (body.role !== undefined && body.role !== user.role) {
      user = await chat.users.setRole(user.id, body.role);
      await chat.sessions.revokeUser(user.id);
    }
    if (body.password !== undefined) {
      await chat.users.setPassword(user.id, body.password);
      await chat.sessions.revokeUser(user.id);
    }
    return answer(userAnswer, { user: publicUser(user) });
  });

  app.delete<{ Params: IdParams }>('/api/ui/users/:id', { config: { uiAccess: 'admin' } }, async (request) => {
    if (request.params.id === auth.session(request).user.id) {
      throw new HearthError('USER_INVALID', 'you cannot delete your own account while signed in with it');
    }
    const user = await chat.users.delete(request.params.id);
    return answer(userAnswer, { user: publicUser(user) });
  });

  // ---- models

  app.get('/api/ui/models', async () => {
    const entries = await ctx.models.list();
    const models: z.input<typeof modelsAnswer>['models'] = [];
    // Image models cannot chat: listed apart, for "Create image".
    const imageModels: z.input<typeof modelsAnswer>['imageModels'] = [];
    for (const entry of entries) {
      if (ctx.models.imageFiles(entry)) {
        imageModels.push({ name: entry.name, size: entry.size, family: entry.details.family });
        continue;
      }
      // Embedding models cannot chat; a model whose metadata cannot be read is still listed.
      const caps = await ctx.inference.capabilities(entry).catch(() => null);
      if (caps && !caps.includes('completion')) continue;
      const arch = entry.modelInfo['general.architecture'];
      const contextLength = typeof arch === 'string' ? entry.modelInfo[`${arch}.context_length`] : undefined;
      models.push({
        name: entry.name,
        size: entry.size,
        family: entry.details.family,
        parameterSize: entry.details.parameter_size,
        quantization: entry.details.quantization_level,
        contextLength: typeof contextLength === 'number' ? contextLength : null,
        defaultNumCtx: ctx.config.inference.numCtx,
        parameters: entry.parameters,
        capabilities: caps ?? [],
      });
    }
    return answer(modelsAnswer, { models, imageModels });
  });

  // ---- conversations

  app.get('/api/ui/conversations', async (request) => {
    const query = parseRequest(listQuery, request.query, 'query');
    const page = await chat.conversations.list(auth.session(request).user.id, {
      limit: query.limit,
      ...(query.after ? { after: query.after } : {}),
    });
    return answer(conversationsAnswer, { conversations: page.items, next: page.next });
  });

  /** Attached knowledge bases must be ones the user sees (KNOWLEDGE_NOT_FOUND names the first that is not). */
  const checkKnowledge = async (user: User, names: readonly string[] | undefined) => {
    for (const name of names ?? []) await ctx.knowledge.get({ userId: user.id, admin: user.role === 'admin' }, name);
  };

  app.post('/api/ui/conversations', async (request, reply) => {
    const body = parseRequest(conversationInit, request.body ?? {});
    await checkKnowledge(auth.session(request).user, body.knowledge);
    const conversation = await chat.conversations.create(auth.session(request).user.id, {
      ...body,
      params: checkParams(body.params) ?? {},
    });
    return reply.code(201).send(answer(conversationAnswer, { conversation }));
  });

  app.get<{ Params: IdParams }>('/api/ui/conversations/:id', async (request) => {
    const userId = auth.session(request).user.id;
    const conversation = await chat.conversations.get(userId, request.params.id);
    const messages = await chat.conversations.messages(userId, conversation.id);
    const drawing = chat.images.drawing(userId, conversation.id);
    return answer(conversationWithMessages, { conversation, messages, drawing });
  });

  app.patch<{ Params: IdParams }>('/api/ui/conversations/:id', async (request) => {
    const body = parseRequest(conversationPatch, request.body);
    const params = checkParams(body.params);
    await checkKnowledge(auth.session(request).user, body.knowledge);
    const conversation = await chat.conversations.update(auth.session(request).user.id, request.params.id, {
      ...body,
      ...(params ? { params } : {}),
    });
    return answer(conversationAnswer, { conversation });
  });

  app.delete<{ Params: IdParams }>('/api/ui/conversations/:id', async (request) => {
    await chat.conversations.delete(auth.session(request).user.id, request.params.id);
    return answer(okAnswer, { ok: true });
  });

  app.post<{ Params: IdParams }>('/api/ui/conversations/:id/restore', async (request) => {
    const conversation = await chat.conversations.restore(auth.session(request).user.id, request.params.id);
    return answer(conversationAnswer, { conversation });
  });

  /**
   * Writes a reply, streamed as NDJSON events: `message` (each stored
   * message: the user's, then the assistant's), `text` (generated text),
   * `notice` (an attachment was cut), and `done` with the final message.
   * The reply goes on when the connection closes (follow it again with
   * .../messages/:messageId/stream); only a stop ends it early.
   */
  /** An image given to one of the user's messages, from Atlas files (another person's is 404). */
  app.get<{ Params: { name: string } }>('/api/ui/images/:name', async (request, reply) => {
    const { name } = request.params;
    const key = imageKey(auth.session(request).user.id, name);
    if (!IMAGE_NAME.test(name) || !(await ctx.atlas.files.stat(key))) {
      throw new HearthError('NOT_FOUND', `no image ${JSON.stringify(name)} in your chats`);
    }
    // Content-addressed: the same name is always the same bytes.
    reply.header('cache-control', 'private, max-age=31536000, immutable');
    return reply.type(imageMediaType(name)).send(await ctx.atlas.files.read(key));
  });

  // Files come base64 in the JSON body: up to 20 of 10 MiB each.
  const replyLimit = Math.max(ctx.config.server.bodyLimit, 20 * Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4 + 1_100_000);
  app.post<{ Params: IdParams }>(
    '/api/ui/conversations/:id/replies',
    { bodyLimit: replyLimit },
    async (request, reply) => {
      const body = parseRequest(replyBody, request.body);
      const session = auth.session(request);
      return streamReply(request, reply, (events) =>
        chat.replies.reply(
          session.user,
          {
            conversationId: request.params.id,
            parentId: body.parentId,
            ...(body.content !== undefined ? { content: body.content } : {}),
            ...(body.attachments ? { attachments: body.attachments } : {}),
            ...(body.model ? { model: body.model } : {}),
          },
          events,
        ),
      );
    },
  );

  /**
   * "Create image": an image model draws the prompt, through the same generation code as the
   * images APIs. Everything is checked before the work starts (the chat, the parent message, the
   * model, the size, no other picture being drawn in the chat): a bad request is a 4xx and nothing
   * is written. NDJSON while it draws: `progress` ({step, total}) per sampling step, then `message`
   * twice (the prompt as the user's message, the answer with the PNG attached, both stored on Atlas
   * at once) and `done`; or `stopped` when .../images/stop stopped it (nothing stored). The image is
   * kept even when the page leaves meanwhile (follow it again with GET .../images/stream).
   */
  app.post<{ Params: IdParams }>('/api/ui/conversations/:id/images', async (request, reply) => {
    const body = parseRequest(createImageBody, request.body);
    const user = auth.session(request).user;
    const conversation = await chat.conversations.get(user.id, request.params.id);
    if (body.parentId !== null) await chat.conversations.message(user.id, conversation.id, body.parentId);
    chat.images.checkCanStore();
    const req = await imageRequest(ctx, { ...body, n: 1 });
    // The answer names the model as the library does (`tiny-sd:latest`), like a reply's.
    const model = (await ctx.models.find(req.model))?.name ?? req.model;
    const stream = new NdjsonStream(request, reply);
    try {
      await chat.images.draw(
        user,
        conversation,
        { parentId: body.parentId, prompt: body.prompt, model, steps: req.steps },
        async (signal, onStep) => {
          const started = Date.now();
          const [png] = await generateImages(ctx.images, { ...req, signal, onStep });
          if (!png) throw new HearthError('IMAGE_RUNTIME_FAILED', ['the image pipeline', 'it returned no image']);
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          return { png, caption: `${req.width}×${req.height} · ${req.steps} steps · seed ${req.seed} · ${seconds} s` };
        },
        (event) => void stream.write(answer(imageEvent, event)),
      );
      stream.end();
    } catch (err) {
      stream.fail(err);
    }
    return reply;
  });

  /**
   * Follows the picture being drawn in this chat on this node (a page reloaded while it draws):
   * NDJSON as for POST .../images, from a `progress` with the current step. 204 when nothing is
   * being drawn here. Closing the connection ends the following, not the draw.
   */
  app.get<{ Params: IdParams }>('/api/ui/conversations/:id/images/stream', async (request, reply) => {
    const userId = auth.session(request).user.id;
    const conversation = await chat.conversations.get(userId, request.params.id);
    const stream = new NdjsonStream(request, reply);
    try {
      const followed = await chat.images.follow(
        userId,
        conversation.id,
        (event) => void stream.write(answer(imageEvent, event)),
        stream.signal,
      );
      if (!followed) return reply.code(204).send();
      stream.end();
    } catch (err) {
      stream.fail(err);
    }
    return reply;
  });

  /**
   * Stops the picture being drawn in this chat (ComfyUI's /interrupt for "Create image"): it ends
   * between two sampling steps, storing nothing, and its stream ends with `stopped`. Answers once it
   * has ended: `{stopped: true}`, or `{stopped: false}` when nothing was being drawn here.
   */
  app.post<{ Params: IdParams }>('/api/ui/conversations/:id/images/stop', async (request) => {
    const userId = auth.session(request).user.id;
    const conversation = await chat.conversations.get(userId, request.params.id);
    return answer(stopImageAnswer, { stopped: await chat.images.stop(userId, conversation.id) });
  });

  /**
   * Continues a reply that ended early (stopped, interrupted, failed, cut at its length): the new
   * text is appended to the saved one, in the same message. NDJSON as for .../replies: the reopened
   * message, `text` (the new text only), then `done`. Like a reply, it goes on when the connection closes.
   */
  app.post<{ Params: MessageParams }>(
    '/api/ui/conversations/:id/messages/:messageId/continue',
    async (request, reply) => {
      const session = auth.session(request);
      return streamReply(request, reply, (events) =>
        chat.replies.continueReply(session.user, request.params.id, request.params.messageId, events),
      );
    },
  );

  /**
   * Follows a reply from character `from` of its text (where the text the
   * page has ends), as NDJSON: `text` events, then `done` with the final
   * message. Any node answers: the one writing it from memory, others through
   * Atlas. Closing the connection ends the following, not the reply.
   */
  app.get<{ Params: MessageParams }>('/api/ui/conversations/:id/messages/:messageId/stream', async (request, reply) => {
    const query = parseRequest(followQuery, request.query, 'query');
    const stream = new NdjsonStream(request, reply);
    const gone = stream.signal;
    try {
      const final = await chat.replies.follow(
        auth.session(request).user.id,
        request.params.id,
        request.params.messageId,
        query.from,
        { text: (text: string) => void stream.write(answer(replyEvent, { type: 'text', text })) },
        gone,
      );
      if (final) void stream.write(answer(replyEvent, { type: 'done', message: final }));
      if (!stream.hasStarted) return reply.code(204).send();
      stream.end();
      return reply;
    } catch (err) {
      stream.fail(err);
      return reply;
    }
  });

  app.post<{ Params: MessageParams }>('/api/ui/conversations/:id/messages/:messageId/stop', async (request, reply) => {
    const message = await chat.replies.stop(auth.session(request).user.id, request.params.id, request.params.messageId);
    // null: another node writes the reply; it stops at its next write (within about a second).
    return message ? answer(stopAnswer, { message }) : reply.code(202).send(answer(stopAnswer, { requested: true }));
  });

  app.get<{ Params: IdParams }>('/api/ui/conversations/:id/export', async (request, reply) => {
    const query = parseRequest(exportQuery, request.query, 'query');
    const userId = auth.session(request).user.id;
    const conversation = await chat.conversations.get(userId, request.params.id);
    const messages = await chat.conversations.messages(userId, conversation.id);
    if (query.format === 'md') {
      return reply
        .type('text/markdown; charset=utf-8')
        .header('content-disposition', attachmentFilename(conversation.title, 'md'))
        .send(conversationMarkdown(conversation, messages));
    }
    return reply
      .header('content-disposition', attachmentFilename(conversation.title, 'json'))
      .send(exportFile([exportConversation(conversation, messages)]));
  });

  app.get('/api/ui/export', async (request, reply) => {
    const userId = auth.session(request).user.id;
    const out = [];
    for (const id of await chat.conversations.ids(userId)) {
      const conversation = await chat.conversations.get(userId, id);
      out.push(exportConversation(conversation, await chat.conversations.messages(userId, id)));
    }
    return reply
      .header(
        'content-disposition',
        attachmentFilename(`hearth-chats-${new Date().toISOString().slice(0, 10)}`, 'json'),
      )
      .send(exportFile(out));
  });

  app.post('/api/ui/import', async (request) => {
    const userId = auth.session(request).user.id;
    const { format, trees } = parseImport(request.body);
    const imported = [];
    for (const tree of trees) imported.push(await chat.conversations.insertTree(userId, tree));
    const conversations = imported.map((c) => ({ id: c.id, title: c.title }));
    return answer(importAnswer, { format, imported: imported.length, conversations });
  });

  app.get('/api/ui/search', async (request) => {
    const query = parseRequest(searchQuery, request.query, 'query');
    const results = await chat.conversations.search(auth.session(request).user.id, query.q, query.limit);
    return answer(searchAnswer, { results });
  });

  // ---- presets

  app.get('/api/ui/presets', async (request) =>
    answer(presetsAnswer, { presets: await chat.presets.list(auth.session(request).user) }),
  );

  app.post('/api/ui/presets', async (request, reply) => {
    const body = parseRequest(presetBody, request.body);
    await checkKnowledge(auth.session(request).user, body.knowledge);
    const preset = await chat.presets.create(auth.session(request).user, {
      ...body,
      params: checkParams(body.params) ?? {},
    });
    return reply.code(201).send(answer(presetAnswer, { preset }));
  });

  app.patch<{ Params: IdParams }>('/api/ui/presets/:id', async (request) => {
    const body = parseRequest(presetBody.partial(), request.body);
    const params = checkParams(body.params);
    await checkKnowledge(auth.session(request).user, body.knowledge);
    const preset = await chat.presets.update(auth.session(request).user, request.params.id, {
      ...body,
      ...(params ? { params } : {}),
    });
    return answer(presetAnswer, { preset });
  });

  app.delete<{ Params: IdParams }>('/api/ui/presets/:id', async (request) => {
    await chat.presets.delete(auth.session(request).user, request.params.id);
    return answer(okAnswer, { ok: true });
  });
}
