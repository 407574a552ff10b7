import type { ConsolePage } from './pages.ts';
import { html, t } from './html.ts';

export const announcePage: ConsolePage = {
  path: '/announce',
  role: 'official',
  label: (lang) => t(lang, '广播', 'Announce'),
  register(app, ctx) {
    app.get('/announce', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const lang = ctx.lang(request);
      const body = html`<p>${t(lang, '建设中', 'Coming')}</p>`;
      return reply.type('text/html; charset=utf-8').send(ctx.page(request, reply, { title: announcePage.label(lang), body, path: '/announce' }).text);
    });
  },
};
