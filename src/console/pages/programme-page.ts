import type { Now } from '../../platform/time.ts';
import type { ProgrammeView, ProgrammesView } from '../types.ts';
import { html, t, type Html, type Lang } from './html.ts';
import { livePageOf } from './live-region.ts';
import { sourceText } from './status-view.ts';
import { timeText } from './time-text.ts';

/** Programmes change by the minute at most; a firing's outcome within 30 s is soon enough. */
const refreshMs = 30_000;

/** API `{ updatedAt, programmes: ProgrammesView, html }`; refreshed every 30 s. */
export const programmePage = livePageOf({
  path: '/programme',
  api: '/api/programme',
  everyMs: refreshMs,
  label: (lang) => t(lang, '节目', 'Programmes'),
  regionLabel: (lang) => t(lang, '节目表和播放记录', 'Schedule and completion log'),
  key: 'programmes',
  load: (ctx) => ctx.village.programmes(),
  region: (programmes, lang, ctx) =>
    programmeRegion(programmes, { lang, now: ctx.now, zones: new Map(ctx.village.zones.map((z) => [z.id, z.label])) }),
});

interface View {
  lang: Lang;
  now: Now;
  /** Zone labels by id; a zone not (or no longer) configured shows its id. */
  zones: ReadonlyMap<string, string>;
}

function programmeRegion(p: ProgrammesView, v: View): Html {
  const { lang } = v;
  const schedule =
    p.schedule === null
      ? html`<p class="warn" id="programme-schedule">${t(lang, '没有节目表：不会播放定时节目。', 'No schedule: no timed programmes will play.')}</p>`
      : html`<p id="programme-schedule">${t(
          lang,
          `正在执行节目表版本 ${p.schedule.version}，来自${sourceText(p.schedule.source, lang)}，时区 ${p.schedule.timezone}。`,
          `Running schedule version ${p.schedule.version} from ${sourceText(p.schedule.source, lang)}, time zone ${p.schedule.timezone}.`,
        )}</p>`;
  return html`${schedule}
${section('programme-today', t(lang, '今天', 'Today'), p.today, t(lang, '今天没有节目。', 'No programmes today.'), v)}
${section('programme-week', t(lang, '本周', 'This week'), p.week, t(lang, '本周没有节目。', 'No programmes this week.'), v)}
${section('programme-log', t(lang, '播放记录', 'Completion log'), p.log, t(lang, '暂无播放记录。', 'Nothing played yet.'), v)}`;
}

function section(id: string, title: string, rows: readonly ProgrammeView[], empty: string, v: View): Html {
  const { lang } = v;
  return html`<section id="${id}" aria-labelledby="${id}-h">
<h2 id="${id}-h">${title}</h2>
${
  rows.length === 0
    ? html`<p class="empty">${empty}</p>`
    : html`<div class="table-wrap"><table class="programmes">
<caption>${title}${t(lang, `：${rows.length} 条`, `: ${rows.length}`)}</caption>
<thead><tr><th scope="col">${t(lang, '时间', 'Time')}</th><th scope="col">${t(lang, '节目和分区', 'Programme and zones')}</th><th scope="col">${t(lang, '结果', 'Outcome')}</th></tr></thead>
<tbody>${rows.map((row) => programmeRow(id, row, v))}</tbody>
</table></div>`
}
</section>`;
}

/** Three columns, as on the alarms page, so a 360 px phone shows them without squeezing. */
function programmeRow(section: string, row: ProgrammeView, v: View): Html {
  const { lang } = v;
  return html`<tr data-programme="${row.programme}" data-outcome="${row.outcome}" data-key="${section}:${row.programme}@${row.dueAt}">
<td>${timeText(row.dueAt, v.now)}</td>
<th scope="row">${row.title ?? row.programme}${row.title === undefined ? '' : html`<span class="sub">${row.programme}</span>`}<span class="sub">${t(lang, '分区：', 'Zones: ')}${row.zones.map((z) => v.zones.get(z) ?? z).join(t(lang, '、', ', '))}</span></th>
<td>${outcomeText(row.outcome, lang)}${row.reason === undefined ? '' : html`<span class="sub">${row.reason}</span>`}</td>
</tr>`;
}

/** The completion log's outcomes (contract/schedule.ts `firingOutcomes`), and `due` for one still to come. */
function outcomeText(outcome: string, lang: Lang): Html | string {
  switch (outcome) {
    case 'due':
      return t(lang, '待播', 'due');
    case 'playing':
      return html`<span class="ok">${t(lang, '正在播放', 'playing')}</span>`;
    case 'finished':
      return html`<span class="ok">${t(lang, '已播完', 'finished')}</span>`;
    case 'preempted':
      return html`<span class="warn">${t(lang, '被更重要的广播打断', 'preempted by a more urgent broadcast')}</span>`;
    case 'stopped':
      return html`<span class="warn">${t(lang, '被停止', 'stopped')}</span>`;
    case 'failed':
      return html`<span class="bad">${t(lang, '播放失败', 'FAILED')}</span>`;
    case 'missed':
      return html`<span class="bad">${t(lang, '错过', 'missed')}</span>`;
    case 'skipped':
      return html`<span class="warn">${t(lang, '跳过', 'skipped')}</span>`;
    case 'withheld':
      return html`<span class="warn">${t(lang, '未播（暂缓）', 'withheld')}</span>`;
    default:
      return outcome;
  }
}
