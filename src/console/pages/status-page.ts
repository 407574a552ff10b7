import { t } from './html.ts';
import { livePageOf } from './live-region.ts';
import { statusRegion } from './status-view.ts';

/**
 * The village's state, every two seconds: a press relayed or a device lost should show while the official is
 * looking. API `{ updatedAt, status: StatusDocument, html }`: the document as the status socket gives it, and the region.
 */
export const statusPage = livePageOf({
  path: '/status',
  api: '/api/status',
  everyMs: 2000,
  label: (lang) => t(lang, '状态', 'Status'),
  regionLabel: (lang) => t(lang, '村里设备的当前状态', "The village's state now"),
  key: 'status',
  load: (ctx) => ctx.village.status(),
  region: (doc, lang, ctx) => statusRegion(doc, lang, ctx.now, ctx.village.zones),
});
