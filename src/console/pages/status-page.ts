import type { FastifyRequest } from 'fastify';
import { isoWithOffset } from '../../platform/time.ts';
import type { ConsolePage } from '../http/route-context.ts';
import { t } from './html.ts';
import { livePage, liveRegion, sendLive, sendPage } from './live-region.ts';
import { statusRegion } from './status-view.ts';

/** Every two seconds: a press relayed or a device lost should show while the official is looking. */
const refreshMs = 2000;

export const statusPage: ConsolePage = {
  path: '/status',
  role: 'official',
  label: (lang) => t(lang, '状态', 'Status'),
  register(app, ctx) {
    const render = async (request: FastifyRequest) => {
      const lang = ctx.lang(request);
      const doc = await ctx.village.status();
      const updatedAt = isoWithOffset(ctx.now());
      const source = { api: '/api/status', everyMs: refreshMs, label: t(lang, '村里设备的当前状态', "The village's state now") };
      return { lang, doc, updatedAt, region: liveRegion(source, updatedAt, statusRegion(doc, lang, ctx.now, ctx.village.zones)) };
    };

    app.get('/status', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const { lang, updatedAt, region } = await render(request);
      const body = livePage(lang, updatedAt, region);
      return sendPage(reply, ctx.page(request, reply, { title: statusPage.label(lang), body, scripts: ['live.js'], path: '/status' }));
    });

    // { updatedAt, status: StatusDocument, html }: the document as the status socket gives it, and the region.
    app.get('/api/status', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const { doc, updatedAt, region } = await render(request);
      return sendLive(reply, updatedAt, { status: doc }, region);
    });
  },
};
