import type { ConsolePage } from './pages.ts';
import { html, t } from './html.ts';

export const statusPage: ConsolePage = {
  path: '/status',
  role: 'official',
  label: (lang) => t(lang, '状态', 'Status'),
  register(app, ctx) {
    app.get('/status', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const lang = ctx.lang(request);
      const body = html`<p>${t(lang, '建设中', 'Coming')}</p>`;
      return reply.type('text/html; charset=utf-8').send(ctx.page(request, reply, { title: statusPage.label(lang), body, path: '/status' }).text);
    });
  },
};
