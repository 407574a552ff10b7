import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyMultipart from '@fastify/multipart';
import type { Logger } from 'pino';
import type { ConsoleConfig } from '../../config/schema.ts';
import type { Now } from '../../platform/time.ts';
import { errorText } from '../../platform/error-text.ts';
import type { ConsoleRole, ConsoleUser, ConsoleVillage } from '../types.ts';
import { Lockout } from '../auth/lockout.ts';
import { AccountsCache, AccountsFileError } from '../auth/accounts.ts';
import { ExpiringSessionStore } from './session-store.ts';
import { langs, t, type Lang } from '../pages/html.ts';
import { layout, messagePage } from '../pages/layout.ts';
import { registerLogin } from '../pages/login.ts';
import { loadAssets, type Assets } from './assets.ts';
import { consolePages } from '../pages/pages.ts';
import { safeBack, type RouteContext } from './route-context.ts';

export interface ConsoleServerOptions {
  config: ConsoleConfig;
  village: ConsoleVillage;
  /** Folder of the page's stylesheet and scripts, served from memory. */
  assetsDir: string;
  logger: Logger;
  now?: Now;
}

const sessionCookie = 've_session';
const langCookie = 've_lang';

/**
 * The village office console: a Fastify server in the service's own process, off unless enabled. It only reads
 * the village and asks it to act through the ConsoleVillage port; nothing it does can block the alarm path
 * for long (no synchronous work beyond rendering, scrypt off the main thread).
 */
export class ConsoleServer {
  private app: FastifyInstance | undefined;
  private listening: string | undefined;

  constructor(private readonly options: ConsoleServerOptions) {}

  /** The URL it serves on, once started. */
  get url(): string | undefined {
    return this.listening;
  }

  async start(): Promise<void> {
    const { config, logger } = this.options;
    const assets = loadAssets(this.options.assetsDir);
    const app = this.build(assets);
    await app.listen({ host: config.host, port: config.port });
    this.app = app;
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    this.listening = `${config.tls === undefined ? 'http' : 'https'}://${host}:${port}`;
    logger.info({ url: this.listening }, 'console listening');
  }

  async stop(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    this.listening = undefined;
    await app?.close();
  }

  private build(assets: Assets): FastifyInstance {
    const { config, village } = this.options;
    const logger = this.options.logger.child({ component: 'console' });
    const now = this.options.now ?? Date.now;
    const secure = config.tls !== undefined;
    const common = {
      loggerInstance: logger,
      // Each refused request is logged by the error handler below, with its reason; the rest would be noise.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 64 * 1024,
      // A slow or stuck client holds a socket for seconds, not for ever.
      requestTimeout: 30_000,
      connectionTimeout: 30_000,
    };
    // The two constructions differ only in their server type; the routes use none of it.
    const app = (config.tls === undefined
      ? Fastify(common)
      : Fastify({ ...common, https: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } })) as unknown as FastifyInstance;

    const cookieSecret = randomBytes(32).toString('base64');
    const cookieBase = { path: '/', httpOnly: true, sameSite: 'strict' as const, secure };
    app.register(fastifyCookie, { secret: cookieSecret });
    // In memory, signed with a key made at start: a restart signs everyone out, which is the safe side.
    app.register(fastifySession, {
      secret: randomBytes(32).toString('base64'),
      cookieName: sessionCookie,
      saveUninitialized: false,
      rolling: false,
      store: new ExpiringSessionStore(now),
      cookie: { ...cookieBase, maxAge: Math.round(config.sessionMinutes * 60_000) },
    });
    // Kept in a signed cookie, not the session: the login form needs a token before there is a session to keep it in.
    app.register(fastifyCsrf, { sessionPlugin: '@fastify/cookie', cookieOpts: { ...cookieBase, signed: true } });
    app.register(fastifyFormbody, { bodyLimit: 64 * 1024 });
    app.register(fastifyMultipart, {
      // One field per zone ticked, besides the few others.
      limits: {
        files: 1,
        fields: 16 + village.zones.length,
        fieldSize: 8 * 1024,
        fileSize: config.maxRecordingSeconds * 48_000 * 2 + 4096,
        parts: 18 + village.zones.length,
      },
    });

    app.addHook('onSend', async (_request, reply) => {
      reply.header(
        'content-security-policy',
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
      );
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    });

    const langOf = (request: FastifyRequest): Lang => (request.cookies[langCookie] === 'en' ? 'en' : 'zh');
    const userOf = (request: FastifyRequest): ConsoleUser => {
      const user = request.session.user;
      if (user === undefined) throw new Error('route reached without a signed-in user: its guard is missing');
      return { ...user, address: request.ip };
    };
    const accounts = new AccountsCache(config.usersFile);
    /**
     * The session's user as the accounts file has it now: a user removed since signing in is signed out, a
     * changed role holds from the next request. A file that cannot be read lets nobody in.
     */
    const currentUser = async (request: FastifyRequest): Promise<{ name: string; role: ConsoleRole } | undefined> => {
      const user = request.session.user;
      if (user === undefined) return undefined;
      const file = accounts.current();
      const account = file instanceof AccountsFileError ? undefined : file.users.find((u) => u.name === user.name);
      if (account === undefined) {
        logger.warn(
          { user: user.name, reason: file instanceof AccountsFileError ? file.message : 'no longer in the accounts file' },
          'console session ended',
        );
        await request.session.destroy();
        return undefined;
      }
      if (account.role !== user.role) request.session.user = { name: account.name, role: account.role };
      return request.session.user;
    };
    const pages = consolePages;
    const tokens = new WeakMap<FastifyReply, string>();
    const ctx: RouteContext = {
      village,
      config,
      logger,
      now,
      accounts,
      lockout: {
        account: new Lockout(lockoutPolicy(config), now),
        address: new Lockout(lockoutPolicy(config), now),
      },
      lang: langOf,
      user: userOf,
      // Looked up at request time: the plugin's decorator exists only once the plugins have loaded.
      csrf: (request, reply, done) => app.csrfProtection(request, reply, done),
      // One token per response: the frame's meta tag and the page's forms must carry the same one.
      csrfToken: (reply) => {
        let token = tokens.get(reply);
        if (token === undefined) {
          token = reply.generateCsrf();
          tokens.set(reply, token);
        }
        return token;
      },
      guard: (role) => async (request, reply) => {
        const user = await currentUser(request);
        if (user === undefined) {
          if (request.url.startsWith('/api/')) return reply.code(401).send({ error: 'not signed in' });
          return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
        }
        if (role === 'installer' && user.role !== 'installer') {
          if (request.url.startsWith('/api/')) return reply.code(403).send({ error: 'for installers only' });
          const lang = langOf(request);
          return reply
            .code(403)
            .type('text/html; charset=utf-8')
            .send(
              messagePage(lang, t(lang, '无权访问', 'Not allowed'), t(lang, '这一页只供安装人员使用。', 'This page is for installers only.')).text,
            );
        }
        return undefined;
      },
      page: (request, reply, content) => {
        const lang = langOf(request);
        const user = request.session.user;
        return layout({
          lang,
          villageName: village.villageName,
          title: content.title,
          body: content.body,
          scripts: content.scripts ?? [],
          path: content.path,
          nav: pages
            .filter((p) => user !== undefined && (p.role === 'official' || user.role === 'installer'))
            .map((p) => ({ path: p.path, label: p.label(lang) })),
          user: user?.name,
          csrfToken: ctx.csrfToken(reply),
        });
      },
    };

    app.get('/', { preHandler: ctx.guard('official') }, async (_request, reply) => reply.redirect('/status', 303));
    app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
      const asset = assets.get(request.params.name);
      if (asset === undefined) return reply.code(404).send({ error: 'no such asset' });
      return reply.type(asset.type).header('cache-control', 'no-cache').header('etag', asset.etag).send(asset.body);
    });
    app.get<{ Params: { lang: string }; Querystring: { back?: string } }>('/lang/:lang', async (request, reply) => {
      const lang = (langs as readonly string[]).includes(request.params.lang) ? request.params.lang : 'zh';
      reply.setCookie(langCookie, lang, { ...cookieBase, httpOnly: false, maxAge: 365 * 86_400 });
      return reply.redirect(safeBack(request.query.back), 303);
    });
    registerLogin(app, ctx);
    for (const page of pages) page.register(app, ctx);

    app.setNotFoundHandler(async (request, reply) => {
      if (request.url.startsWith('/api/')) return reply.code(404).send({ error: 'no such API' });
      const lang = langOf(request);
      return reply
        .code(404)
        .type('text/html; charset=utf-8')
        .send(messagePage(lang, t(lang, '没有这一页', 'No such page'), t(lang, '请从菜单进入。', 'Please use the menu.')).text);
    });
    // A request the page did not expect (bad form, missing token, too large) gets its reason, never a stack.
    app.setErrorHandler(async (error: { statusCode?: number; code?: string; message: string }, request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status === 500) logger.error({ err: errorText(error), url: request.url }, 'console request failed');
      else logger.warn({ url: request.url, status, reason: error.message }, 'console request refused');
      const reason = status === 500 ? 'internal error (see the service log)' : error.message;
      if (request.url.startsWith('/api/') || request.headers.accept?.includes('application/json') === true)
        return reply.code(status).send({ error: reason });
      const lang = langOf(request);
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(messagePage(lang, t(lang, '请求未被接受', 'Request refused'), reason).text);
    });
    return app;
  }
}

function lockoutPolicy(config: ConsoleConfig) {
  return { maxFailures: config.lockout.maxFailures, baseMs: config.lockout.baseSeconds * 1000, maxMs: config.lockout.maxSeconds * 1000 };
}
