import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as z from 'zod';
import type { RouteContext } from '../http/route-context.ts';
import { safeBack } from '../http/route-context.ts';
import { AccountsFileError, verifyPassword } from '../auth/accounts.ts';
import { html, t, type Lang } from './html.ts';
import { layout } from './layout.ts';

const loginFormSchema = z.object({
  name: z.string().trim().min(1).max(64),
  password: z.string().min(1).max(256),
  next: z.string().max(512).optional(),
  _csrf: z.string().optional(),
});

/** Sign-in and sign-out. Every outcome is logged and reported to the county with the name given. */
export function registerLogin(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Querystring: { next?: string } }>('/login', async (request, reply) => {
    if (request.session.user !== undefined) return reply.redirect(safeBack(request.query.next), 303);
    return sendLogin(request, reply, { next: request.query.next });
  });

  app.post('/login', { preHandler: ctx.csrf }, async (request, reply) => {
    const lang = ctx.lang(request);
    const parsed = loginFormSchema.safeParse(request.body);
    if (!parsed.success) return sendLogin(request, reply, { status: 400, message: t(lang, '请填写用户名和密码。', 'Enter your name and password.') });
    const { name, password, next } = parsed.data;
    const address = request.ip;
    const accountKey = name.toLowerCase().slice(0, 64);
    // Locked while either the name or the address is.
    const lockedFor = () => Math.max(ctx.lockout.account.remainingMs(accountKey), ctx.lockout.address.remainingMs(address));
    const lockedMs = lockedFor();
    if (lockedMs > 0) {
      // Not reported one by one: the lock-out itself was, and a guesser must not be able to fill the outbox.
      ctx.logger.warn({ user: accountKey, address, lockedMs }, 'console login refused: locked out');
      const seconds = Math.ceil(lockedMs / 1000);
      return sendLogin(request, reply, {
        status: 429,
        next,
        name,
        message: t(lang, `尝试次数过多，请 ${seconds} 秒后再试。`, `Too many failed attempts: try again in ${seconds} s.`),
      });
    }
    const accounts = ctx.accounts.current();
    if (accounts instanceof AccountsFileError) {
      const reason = accounts.message;
      ctx.logger.error({ reason }, 'console accounts file unreadable');
      ctx.village.audit({ action: 'login-refused', user: accountKey, address, detail: `accounts file unreadable: ${reason}` });
      return sendLogin(request, reply, {
        status: 503,
        next,
        message: t(lang, '账户文件无法读取，请联系安装人员。', 'The accounts file cannot be read: call the installer.'),
      });
    }
    const account = await verifyPassword(accounts, name, password);
    if (account === undefined) {
      ctx.lockout.account.failed(accountKey);
      ctx.lockout.address.failed(address);
      const nowLocked = lockedFor();
      const detail = nowLocked > 0 ? `wrong name or password; locked out for ${Math.ceil(nowLocked / 1000)} s` : 'wrong name or password';
      ctx.logger.warn({ user: accountKey, address, lockedMs: nowLocked }, 'console login refused');
      ctx.village.audit({ action: 'login-refused', user: accountKey, address, detail });
      return sendLogin(request, reply, { status: 401, next, name, message: t(lang, '用户名或密码不对。', 'Wrong name or password.') });
    }
    ctx.lockout.account.succeeded(accountKey);
    ctx.lockout.address.succeeded(address);
    // A new session id at sign-in: one planted before it (session fixation) is worth nothing after.
    await request.session.regenerate();
    request.session.user = { name: account.name, role: account.role };
    ctx.logger.info({ user: account.name, role: account.role, address }, 'console login');
    ctx.village.audit({ action: 'login', user: account.name, role: account.role, address });
    return reply.redirect(safeBack(next), 303);
  });

  app.post('/logout', { preHandler: ctx.csrf }, async (request, reply) => {
    const user = request.session.user;
    if (user !== undefined) {
      ctx.logger.info({ user: user.name, address: request.ip }, 'console logout');
      ctx.village.audit({ action: 'logout', user: user.name, role: user.role, address: request.ip });
    }
    await request.session.destroy();
    return reply.redirect('/login', 303);
  });

  function sendLogin(
    request: FastifyRequest,
    reply: FastifyReply,
    options: { status?: number; message?: string; next?: string | undefined; name?: string },
  ) {
    const lang: Lang = ctx.lang(request);
    const token = ctx.csrfToken(reply);
    const accounts = ctx.accounts.current();
    const noAccounts = !(accounts instanceof AccountsFileError) && accounts.users.length === 0;
    const body = html`${
      noAccounts
        ? html`<p class="warn" role="status">${t(
            lang,
            '还没有账户。请安装人员在树莓派上运行：village-edge user add 用户名 --role official',
            'There are no accounts yet. The installer makes one on the Pi: village-edge user add NAME --role official',
          )}</p>`
        : ''
    }<form method="post" action="/login" class="card login">
  <input type="hidden" name="_csrf" value="${token}">
  ${options.next === undefined ? '' : html`<input type="hidden" name="next" value="${safeBack(options.next)}">`}
  ${options.message === undefined ? '' : html`<p class="error" role="alert">${options.message}</p>`}
  <label for="name">${t(lang, '用户名', 'Name')}</label>
  <input id="name" name="name" autocomplete="username" autocapitalize="none" required value="${options.name ?? ''}">
  <label for="password">${t(lang, '密码', 'Password')}</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" class="primary">${t(lang, '登录', 'Sign in')}</button>
</form>`;
    return reply
      .code(options.status ?? 200)
      .type('text/html; charset=utf-8')
      .send(
        layout({
          lang,
          villageName: ctx.village.villageName,
          title: t(lang, '登录', 'Sign in'),
          body,
          scripts: [],
          // The language switch comes back here with `next` kept.
          path: options.next === undefined ? '/login' : `/login?next=${encodeURIComponent(safeBack(options.next))}`,
          nav: [],
          user: undefined,
          csrfToken: token,
        }).text,
      );
  }
}
