import type { FastifyReply, FastifyRequest } from 'fastify';
import * as z from 'zod';
import type { RouteContext } from '../http/route-context.ts';
import type { ActionResult, DeviceDiagnostics } from '../types.ts';
import type { ConsolePage } from '../http/route-context.ts';
import { html, t, type Html, type Lang } from './html.ts';

/** Ids as the config and the county contract allow them: nothing that could be markup or a path. */
const idSchema = z
  .string()
  .trim()
  .min(1, 'required')
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, "_", ".", ":" and "-" only');
// `_csrf` rides along when the form is posted without the page's script.
const testAlarmBodySchema = z.object({ terminal: idSchema, _csrf: z.string().optional() }).strict();
const speakerTestBodySchema = z.object({ zone: idSchema, _csrf: z.string().optional() }).strict();

/** How a device row reads, in the page's language: rendered here and sent with the API's data, so the script only fills text in. */
interface ShownDevice {
  online: string;
  errors: string;
  raw: string;
  at: string;
}

function shown(lang: Lang, d: DeviceDiagnostics): ShownDevice {
  const errors = Object.entries(d.errors).filter(([, n]) => n > 0);
  const raw = d.lastRaw;
  return {
    online: d.online ? t(lang, '在线', 'online') : t(lang, '离线', 'offline'),
    errors: errors.length === 0 ? t(lang, '无', 'none') : errors.map(([kind, n]) => `${kind} ${n}`).join(', '),
    raw:
      raw === null
        ? t(lang, '尚无应答', 'no reply yet')
        : raw.registers !== undefined
          ? Object.entries(raw.registers)
              .map(([address, value]) => `${address}=${value}`)
              .join('  ')
          : (raw.line ?? ''),
    // Already in the Pi's own offset (device-diagnostics.ts): its wall time, as every other time on the pages.
    at: raw === null ? '' : raw.at.slice(0, 19).replace('T', ' '),
  };
}

function deviceRow(lang: Lang, d: DeviceDiagnostics): Html {
  const s = shown(lang, d);
  return html`<li class="card installer-device" data-device="${d.id}" data-online="${String(d.online)}">
  <h3>${d.label} <span class="installer-model">${d.model} · ${d.id}</span></h3>
  <dl>
    <dt>${t(lang, '状态', 'State')}</dt><dd data-field="online">${s.online}</dd>
    <dt>${t(lang, '通信错误', 'Protocol errors')}</dt><dd data-field="errors">${s.errors}</dd>
    <dt>${t(lang, '最后原始应答', 'Last raw reply')}</dt><dd><code data-field="raw">${s.raw}</code></dd>
    <dt>${t(lang, '应答时间', 'Replied at')}</dt><dd><time data-field="at" datetime="${s.at}">${s.at}</time></dd>
  </dl>
</li>`;
}

/** One button per target, inside a form so it still posts (and gets JSON back) without the script. */
function actionButton(kind: 'test-alarm' | 'speaker-test', target: { id: string; label: string }, token: string, label: string): Html {
  const field = kind === 'test-alarm' ? 'terminal' : 'zone';
  return html`<li><form method="post" action="/api/${kind}" class="installer-form">
  <input type="hidden" name="_csrf" value="${token}">
  <input type="hidden" name="${field}" value="${target.id}">
  <button type="submit" class="installer-action" ${kind === 'test-alarm' ? html`data-test-alarm="${target.id}"` : html`data-speaker-test="${target.id}"`} aria-label="${label}: ${target.label}">${target.label}</button>
</form></li>`;
}

/** A body that failed its schema: 400, naming the field. */
function badBody(reply: FastifyReply, error: z.ZodError) {
  const issue = error.issues[0];
  const field = issue === undefined || issue.path.length === 0 ? 'body' : issue.path.join('.');
  return reply.code(400).send({ error: `${field}: ${issue?.message ?? 'invalid'}`, field });
}

function answer(reply: FastifyReply, lang: Lang, result: ActionResult, done: string) {
  if (result.ok) return reply.send({ ok: true, id: result.id, message: done });
  return reply.code(409).send({ ok: false, reason: result.reason, message: `${t(lang, '未执行', 'Refused')}: ${result.reason}` });
}

/**
 * The installer's page: each device's last raw reply and error counts (refreshed by installer.js from
 * `/api/diagnostics`), a test alarm per column and a loudspeaker test per zone. Every action is done, logged
 * and reported to the county in the installer's name by the village (ConsoleVillage).
 */
export const installerPage: ConsolePage = {
  path: '/installer',
  role: 'installer',
  label: (lang) => t(lang, '安装调试', 'Installer'),
  register(app, ctx: RouteContext) {
    const installer = ctx.guard('installer');

    app.get('/installer', { preHandler: installer }, async (request, reply) => {
      const lang = ctx.lang(request);
      const token = ctx.csrfToken(reply);
      const { village } = ctx;
      const devices = village.diagnostics();
      const body = html`<section aria-labelledby="installer-devices-title">
  <h2 id="installer-devices-title">${t(lang, '设备诊断', 'Devices')}</h2>
  <p class="installer-hint">${t(lang, '每 5 秒自动刷新。', 'Refreshed every 5 seconds.')}</p>
  ${
    devices.length === 0
      ? html`<p>${t(lang, '没有在运行的设备。', 'No device is running.')}</p>`
      : html`<ul class="installer-devices" id="installer-devices">${devices.map((d) => deviceRow(lang, d))}</ul>`
  }
</section>
<p id="installer-result" role="status" aria-live="polite" class="installer-result"></p>
<section aria-labelledby="installer-alarm-title">
  <h2 id="installer-alarm-title">${t(lang, '测试报警', 'Test alarm')}</h2>
  <p class="installer-hint">${t(
    lang,
    '从报警柱发出一条"测试"报警到县里，柱灯会像真实报警一样变化。',
    'Sends a "test" alarm from the column to the county; its lamp shows it as for a real alarm.',
  )}</p>
  <ul class="installer-actions">${village.terminals.map((c) => actionButton('test-alarm', c, token, t(lang, '测试报警', 'Test alarm')))}</ul>
</section>
<section aria-labelledby="installer-speaker-title">
  <h2 id="installer-speaker-title">${t(lang, '喇叭测试', 'Loudspeaker test')}</h2>
  <p class="installer-hint">${t(
    lang,
    '在该区域的喇叭上播放 2 秒 1 kHz 测试音（紧急广播会打断它，静音时段不播放）。',
    'Plays a 2 s 1 kHz tone on that zone’s loudspeakers (an emergency interrupts it; not during quiet hours).',
  )}</p>
  <ul class="installer-actions">${village.zones.map((z) => actionButton('speaker-test', z, token, t(lang, '喇叭测试', 'Loudspeaker test')))}</ul>
</section>`;
      return reply
        .type('text/html; charset=utf-8')
        .send(ctx.page(request, reply, { title: installerPage.label(lang), body, scripts: ['installer.js'], path: '/installer' }).text);
    });

    app.get('/api/diagnostics', { preHandler: installer }, async (request, reply) => {
      const lang = ctx.lang(request);
      return reply.header('cache-control', 'no-store').send({ devices: ctx.village.diagnostics().map((d) => ({ ...d, shown: shown(lang, d) })) });
    });

    app.post('/api/test-alarm', { preHandler: [installer, ctx.csrf] }, async (request: FastifyRequest, reply) => {
      const parsed = testAlarmBodySchema.safeParse(request.body);
      if (!parsed.success) return badBody(reply, parsed.error);
      const lang = ctx.lang(request);
      const { terminal } = parsed.data;
      const result = ctx.village.testAlarm(terminal, ctx.user(request));
      return answer(reply, lang, result, t(lang, `测试报警已发出（${terminal}）。`, `Test alarm sent from ${terminal}.`));
    });

    app.post('/api/speaker-test', { preHandler: [installer, ctx.csrf] }, async (request: FastifyRequest, reply) => {
      const parsed = speakerTestBodySchema.safeParse(request.body);
      if (!parsed.success) return badBody(reply, parsed.error);
      const lang = ctx.lang(request);
      const { zone } = parsed.data;
      const result = await ctx.village.speakerTest(zone, ctx.user(request));
      return answer(reply, lang, result, t(lang, `测试音正在 ${zone} 区播放。`, `Test tone playing in zone ${zone}.`));
    });
  },
};
