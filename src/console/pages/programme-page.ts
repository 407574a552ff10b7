import type { ConsolePage } from './pages.ts';
import { html, t } from './html.ts';

export const programmePage: ConsolePage = {
  path: '/programme',
  role: 'official',
  label: (lang) => t(lang, '节目', 'Programmes'),
  register(app, ctx) {
    app.get('/programme', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const lang = ctx.lang(request);
      const body = html`<p>${t(lang, '建设中', 'Coming')}</p>`;
      return reply
        .type('text/html; charset=utf-8')
        .send(ctx.page(request, reply, { title: programmePage.label(lang), body, path: '/programme' }).text);
    });
  },
};
