import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler, preHandlerHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { ConsoleConfig } from '../../config/schema.ts';
import type { Now } from '../../platform/time.ts';
import type { ConsoleRole, ConsoleUser, ConsoleVillage } from '../types.ts';
import type { AccountsCache } from '../auth/accounts.ts';
import type { Lockout } from '../auth/lockout.ts';
import type { Html, Lang } from '../pages/html.ts';

/** The signed-in user kept in the session; each request checks it against the accounts file. */
declare module 'fastify' {
  interface Session {
    user?: { name: string; role: ConsoleRole };
  }
}

/** What every page module gets to build its routes with. */
export interface RouteContext {
  village: ConsoleVillage;
  config: ConsoleConfig;
  logger: Logger;
  now: Now;
  /** The signed-in user with at least `role`, or a login redirect (pages) / 401 (`/api/`) / 403. */
  guard(role: ConsoleRole): preHandlerAsyncHookHandler;
  /** Checks the form's or the header's CSRF token; a request without a good one gets 403. */
  csrf: preHandlerHookHandler;
  user(request: FastifyRequest): ConsoleUser;
  lang(request: FastifyRequest): Lang;
  /** A new CSRF token for a form or a page's scripts. */
  csrfToken(reply: FastifyReply): string;
  /** The page inside the common frame (header, navigation, language switch, sign-out). */
  page(request: FastifyRequest, reply: FastifyReply, content: { title: string; body: Html; scripts?: readonly string[]; path: string }): Html;
  /** The accounts file as it is now (re-read when it changes). */
  accounts: AccountsCache;
  lockout: { account: Lockout; address: Lockout };
}

/** Only a path of this site: an absolute URL or `//host` in `back` or `next` would send the user elsewhere. */
export function safeBack(back: string | undefined): string {
  return back !== undefined && /^\/(?![/\\])/.test(back) ? back : '/status';
}

/** One page of the console: its path in the menu, who may see it, and the routes (page and API) it serves. */
export interface ConsolePage {
  path: string;
  /** `official` pages are open to installers too; `installer` pages only to them. */
  role: ConsoleRole;
  label(lang: Lang): string;
  register(app: FastifyInstance, ctx: RouteContext): void;
}
