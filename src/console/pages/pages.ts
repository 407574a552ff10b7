import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../http/console-server.ts';
import type { ConsoleRole } from '../types.ts';
import type { Lang } from './html.ts';
import { statusPage } from './status-page.ts';
import { alarmsPage } from './alarms-page.ts';
import { announcePage } from './announce-page.ts';
import { programmePage } from './programme-page.ts';
import { installerPage } from './installer-page.ts';

/** One page of the console: its path in the menu, who may see it, and the routes (page and API) it serves. */
export interface ConsolePage {
  path: string;
  /** `official` pages are open to installers too; `installer` pages only to them. */
  role: ConsoleRole;
  label(lang: Lang): string;
  register(app: FastifyInstance, ctx: RouteContext): void;
}

/** In menu order. */
export const consolePages: readonly ConsolePage[] = [statusPage, alarmsPage, announcePage, programmePage, installerPage];
