import type { ConsolePage } from './pages.ts';
import { html, t } from './html.ts';

export const installerPage: ConsolePage = {
  path: '/installer',
  role: 'installer',
  label: (lang) => t(lang, '安装调试', 'Installer'),
  register(app, ctx) {
    app.get('/installer', { preHandler: ctx.guard('installer') }, async (request, reply) => {
      const lang = ctx.lang(request);
      const body = html`<p>${t(lang, '建设中', 'Coming')}</p>`;
      return reply
        .type('text/html; charset=utf-8')
        .send(ctx.page(request, reply, { title: installerPage.label(lang), body, path: '/installer' }).text);
    });
  },
};
