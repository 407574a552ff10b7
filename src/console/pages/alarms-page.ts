import type { Now } from '../../platform/time.ts';
import type { AlarmView } from '../types.ts';
import { html, t, type Html, type Lang } from './html.ts';
import { livePageOf } from './live-region.ts';
import { timeText } from './time-text.ts';

/** As many as fit on a phone's few screens; the county keeps the full record. */
const listed = 50;

/** API `{ updatedAt, alarms: AlarmView[] (newest first, at most 50), html }`. */
export const alarmsPage = livePageOf({
  path: '/alarms',
  api: '/api/alarms',
  everyMs: 2000,
  label: (lang) => t(lang, '报警', 'Alarms'),
  regionLabel: (lang) => t(lang, '最近的报警', 'Recent alarms'),
  key: 'alarms',
  load: (ctx) => ctx.village.recentAlarms(listed),
  region: (alarms, lang, ctx) => alarmsRegion(alarms, lang, ctx.now),
});

function alarmsRegion(alarms: readonly AlarmView[], lang: Lang, now: Now): Html {
  if (alarms.length === 0) return html`<p class="empty">${t(lang, '暂无报警。', 'No alarms yet.')}</p>`;
  const unheard = alarms.filter((a) => a.state === 'not-received').length;
  return html`${
    unheard === 0
      ? ''
      : html`<p class="bad">${t(
          lang,
          `有 ${unheard} 条报警县平台没有收到：请与县里联系确认。`,
          `${unheard} alarm(s) not received by the county: check with the county.`,
        )}</p>`
  }
<div class="table-wrap"><table class="alarms">
<caption>${t(lang, `最近的 ${alarms.length} 条报警，最新的在前`, `The latest ${alarms.length} alarm(s), newest first`)}</caption>
<thead><tr><th scope="col">${t(lang, '报警柱', 'Alarm column')}</th><th scope="col">${t(lang, '时间', 'Time')}</th><th scope="col">${t(lang, '县平台', 'County')}</th></tr></thead>
<tbody>${alarms.map((a) => alarmRow(a, lang, now))}</tbody>
</table></div>`;
}

/** Three columns, so that a 360 px phone shows the table without squeezing; type and presses go under the column's name. */
function alarmRow(alarm: AlarmView, lang: Lang, now: Now): Html {
  return html`<tr data-alarm="${alarm.id}" data-state="${alarm.state}" data-key="alarm:${alarm.id}">
<th scope="row">${alarm.terminalLabel}<span class="sub">${typeText(alarm.type, lang)} · ${t(lang, `按了 ${alarm.presses} 次`, alarm.presses === 1 ? 'pressed once' : `pressed ${alarm.presses} times`)}</span></th>
<td>${timeText(alarm.raisedAt, now)}</td>
<td>${stateText(alarm, lang, now)}</td>
</tr>`;
}

function typeText(type: AlarmView['type'], lang: Lang): string {
  switch (type) {
    case 'button':
      return t(lang, '求助按钮', 'Help button');
    case 'tamper':
      return t(lang, '防拆报警', 'Tamper');
    case 'test':
      return t(lang, '测试', 'Test');
  }
}

function stateText(alarm: AlarmView, lang: Lang, now: Now): Html {
  switch (alarm.state) {
    case 'sent':
      return html`<span class="warn">${t(lang, '已发出，等待县平台确认', 'Sent, waiting for the county')}</span>`;
    case 'received':
      return html`<span class="ok">${t(lang, '县平台已收到', 'Received by the county')}</span>${
        alarm.ackedAt === null ? '' : html`<span class="sub">${timeText(alarm.ackedAt, now)}</span>`
      }`;
    case 'not-received':
      return html`<span class="bad">${t(lang, '县平台未收到（确认超时）', 'NOT received (no acknowledgement in time)')}</span>`;
  }
}
