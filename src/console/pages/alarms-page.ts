import type { ConsolePage } from './pages.ts';
import { html, t } from './html.ts';

export const alarmsPage: ConsolePage = {
  path: '/alarms',
  role: 'official',
  label: (lang) => t(lang, '报警', 'Alarms'),
  register(app, ctx) {
    app.get('/alarms', { preHandler: ctx.guard('official') }, async (request, reply) => {
      const lang = ctx.lang(request);
      const body = html`<p>${t(lang, '建设中', 'Coming')}</p>`;
      return reply.type('text/html; charset=utf-8').send(ctx.page(request, reply, { title: alarmsPage.label(lang), body, path: '/alarms' }).text);
    });
  },
};
