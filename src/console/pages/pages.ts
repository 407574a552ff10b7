import type { ConsolePage } from '../http/route-context.ts';
import { statusPage } from './status-page.ts';
import { alarmsPage } from './alarms-page.ts';
import { announcePage } from './announce-page.ts';
import { programmePage } from './programme-page.ts';
import { installerPage } from './installer-page.ts';

/** In menu order. */
export const consolePages: readonly ConsolePage[] = [statusPage, alarmsPage, announcePage, programmePage, installerPage];
