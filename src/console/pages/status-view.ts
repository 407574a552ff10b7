import type { StatusDocument } from '../../status/status-document.ts';
import type { Now } from '../../platform/time.ts';
import { html, t, type Html, type Lang } from './html.ts';
import type { ConsoleZone } from '../types.ts';
import { bytesText, durationText, timeText } from './time-text.ts';

type Health = StatusDocument['health'];
type HealthDevice = Health['devices'][number];

/** A configured device and its health, joined by id; a device the drivers do not run (refused at start) has none. */
interface DeviceRow {
  id: string;
  label: string;
  role: string | undefined;
  note: StatusDocument['devices'][number] | undefined;
  health: HealthDevice | undefined;
}

/** An outbox whose oldest record has waited this long is news, whether or not the link says it is up. */
const outboxWorryS = 300;

/** The status page's live region: a summary of what needs attention first, then each subject in turn. */
export function statusRegion(doc: StatusDocument, lang: Lang, now: Now, zones: readonly ConsoleZone[] = []): Html {
  const devices = deviceRows(doc);
  return html`${summary(doc, devices, lang)}
${linkSection(doc.link, lang, now)}
${devicesSection(devices, lang, now)}
${amplifiersSection(devices, lang)}
${zonesSection(zones, devices, lang)}
${outboxSection(doc.health.outbox, lang)}
${systemSection(doc, lang)}`;
}

function deviceRows(doc: StatusDocument): DeviceRow[] {
  const health = new Map(doc.health.devices.map((d) => [d.id, d]));
  const rows: DeviceRow[] = doc.devices.map((note) => ({ id: note.id, label: note.label, role: note.role, note, health: health.get(note.id) }));
  const known = new Set(rows.map((r) => r.id));
  for (const d of doc.health.devices) if (!known.has(d.id)) rows.push({ id: d.id, label: d.id, role: undefined, note: undefined, health: d });
  return rows;
}

/** Everything wrong, in words, at the top: the one list an official needs to read when something is amiss. */
function summary(doc: StatusDocument, devices: readonly DeviceRow[], lang: Lang): Html {
  const { health, link } = doc;
  const items: string[] = [];
  if (!link.connected)
    items.push(
      t(
        lang,
        '与县平台的连接已断开：报警先存在本机，连上后再发出。',
        'Not connected to the county: alarms are kept here and sent once the link is back.',
      ),
    );
  for (const d of devices) {
    if (d.health === undefined) items.push(t(lang, `设备未运行：${d.label}`, `Device not running: ${d.label}`));
    else if (!d.health.online) items.push(t(lang, `设备离线：${d.label}`, `Device offline: ${d.label}`));
    if (d.health?.status?.['overheat'] === true) items.push(t(lang, `功放过热：${d.label}`, `Amplifier overheating: ${d.label}`));
    if (d.health?.status?.['line-fault'] === true) items.push(t(lang, `喇叭线路故障：${d.label}`, `Speaker line fault: ${d.label}`));
  }
  if (health.clock?.trusted === false)
    items.push(t(lang, '本机时间不可信：定时节目暂停。', 'The clock cannot be trusted: timed programmes are held.'));
  if (health.audio.ok === false)
    items.push(t(lang, `音频设备无法使用：${health.audio.reason ?? ''}`, `The sound output does not work: ${health.audio.reason ?? ''}`));
  if (health.storage !== undefined && health.storage.state !== 'ok') items.push(storageText(health.storage, lang));
  const oldest = health.outbox.oldestUnackedAgeSeconds;
  if (oldest !== null && oldest >= outboxWorryS)
    items.push(
      t(
        lang,
        `${health.outbox.depth} 条消息等了 ${durationText(lang, oldest)} 仍未被县平台确认。`,
        `${health.outbox.depth} message(s) waiting for the county, the oldest for ${durationText(lang, oldest)}.`,
      ),
    );
  for (const m of health.schedule?.mediaMissing ?? [])
    items.push(t(lang, `节目缺少音频：${m.programme}（${m.reason}）`, `Programme media missing: ${m.programme} (${m.reason})`));
  for (const problem of health.problems) items.push(t(lang, `配置问题：${problem}`, `Configuration problem: ${problem}`));
  return html`<section class="summary ${items.length === 0 ? 'all-well' : 'trouble'}" aria-labelledby="h-summary">
<h2 id="h-summary">${t(lang, '概况', 'Summary')}</h2>
${
  items.length === 0
    ? html`<p class="ok">${t(lang, '一切正常。', 'All is well.')}</p>`
    : html`<p class="bad">${t(lang, `有 ${items.length} 项需要注意：`, `${items.length} thing(s) need attention:`)}</p>
<ul>${items.map((item) => html`<li>${item}</li>`)}</ul>`
}
</section>`;
}

function linkSection(link: StatusDocument['link'], lang: Lang, now: Now): Html {
  const down =
    link.lastDisconnectedAt === null
      ? t(lang, '启动后未断开过', 'not since start')
      : html`${timeText(link.lastDisconnectedAt, now)}${link.lastDisconnectReason === null ? '' : html`${t(lang, '：', ': ')}${link.lastDisconnectReason}`}`;
  return html`<section aria-labelledby="h-link">
<h2 id="h-link">${t(lang, '县平台连接', 'County link')}</h2>
<p id="link-state" data-connected="${String(link.connected)}" class="state ${link.connected ? 'ok' : 'bad'}">${
    link.connected ? t(lang, '已连接', 'Connected') : t(lang, '未连接', 'NOT connected')
  }</p>
<dl class="facts">
<dt>${t(lang, '地址', 'Address')}</dt><dd class="url">${link.url}</dd>
<dt>${t(lang, '上次连上', 'Last connected')}</dt><dd>${link.lastConnectedAt === null ? t(lang, '启动后未连上过', 'never since start') : timeText(link.lastConnectedAt, now)}</dd>
<dt>${t(lang, '上次断开', 'Last disconnected')}</dt><dd>${down}</dd>
</dl>
</section>`;
}

function devicesSection(devices: readonly DeviceRow[], lang: Lang, now: Now): Html {
  const online = devices.filter((d) => d.health?.online === true).length;
  return html`<section aria-labelledby="h-devices">
<h2 id="h-devices">${t(lang, '设备', 'Devices')}</h2>
${
  devices.length === 0
    ? html`<p class="empty">${t(lang, '没有配置设备。', 'No devices are configured.')}</p>`
    : html`<p>${t(lang, `${devices.length} 台设备中 ${online} 台在线。`, `${online} of ${devices.length} devices online.`)}</p>
<div class="table-wrap"><table class="devices">
<caption>${t(lang, '每台设备的状态', "Each device's state")}</caption>
<thead><tr><th scope="col">${t(lang, '设备', 'Device')}</th><th scope="col">${t(lang, '状态', 'State')}</th><th scope="col">${t(lang, '最后回复', 'Last reply')}</th><th scope="col">${t(lang, '错误', 'Errors')}</th></tr></thead>
<tbody>${devices.map((d) => deviceRow(d, lang, now))}</tbody>
</table></div>`
}
</section>`;
}

function deviceRow(d: DeviceRow, lang: Lang, now: Now): Html {
  const online = d.health?.online === true;
  const change = d.note?.lastChange;
  const since =
    change !== null && change !== undefined && change.online === online ? html` ${t(lang, '自', 'since')} ${timeText(change.at, now)}` : '';
  const state =
    d.health === undefined
      ? html`<span class="bad">${t(lang, '未运行', 'NOT running')}</span>`
      : online
        ? html`<span class="ok">${t(lang, '在线', 'Online')}</span>${since}`
        : html`<span class="bad">${t(lang, '离线', 'OFFLINE')}</span>${since}${change?.online === false && change.reason !== undefined ? html`${t(lang, '：', ': ')}${change.reason}` : ''}`;
  const model = [d.role, d.health?.model].filter((p) => p !== undefined).join(' · ');
  return html`<tr data-device="${d.id}" data-online="${String(online)}" data-key="device:${d.id}">
<th scope="row">${d.label}<span class="sub">${d.id}${model === '' ? '' : ` · ${model}`}</span></th>
<td>${state}</td>
<td>${lastReply(d, online, lang, now)}</td>
<td>${errorsText(d, lang, now)}</td>
</tr>`;
}

/**
 * A device that answers its polls would show a new time at every refresh; "within the last minute" stays put,
 * and the time itself is shown once it stops answering, when it matters.
 */
function lastReply(d: DeviceRow, online: boolean, lang: Lang, now: Now): Html | string {
  const at = d.note?.lastReplyAt;
  if (at === undefined) return '—';
  if (at === null) return t(lang, '启动后没有回复', 'none since start');
  if (online && now() - Date.parse(at) < 60_000) return t(lang, '1 分钟内', 'within the last minute');
  return timeText(at, now);
}

function errorsText(d: DeviceRow, lang: Lang, now: Now): Html | string {
  const counts = Object.entries(d.health?.errors ?? {}).filter(([, n]) => n > 0);
  const last = d.note?.lastError;
  if (counts.length === 0 && (last === null || last === undefined)) return t(lang, '无', 'none');
  return html`${counts.map(([kind, n]) => `${kind} ${n}`).join(', ')}${
    last === null || last === undefined
      ? ''
      : html`<span class="sub">${t(lang, '最近一次', 'Last')}: ${last.kind}, ${timeText(last.at, now)}: ${last.detail}</span>`
  }`;
}

function amplifiersSection(devices: readonly DeviceRow[], lang: Lang): Html {
  const amplifiers = devices.filter((d) => d.health?.status !== undefined);
  const condition = (value: boolean | undefined, bad: string) =>
    value === undefined ? '—' : value ? html`<span class="bad">${bad}</span>` : html`<span class="ok">${t(lang, '正常', 'normal')}</span>`;
  return html`<section aria-labelledby="h-amplifiers">
<h2 id="h-amplifiers">${t(lang, '功放', 'Amplifiers')}</h2>
${
  amplifiers.length === 0
    ? html`<p class="empty">${t(lang, '没有会报告状态的功放。', 'No amplifier reports its state.')}</p>`
    : html`<div class="table-wrap"><table class="amplifiers">
<caption>${t(lang, '功放最后一次读到的状态', "Each amplifier's state as last read")}</caption>
<thead><tr><th scope="col">${t(lang, '功放', 'Amplifier')}</th><th scope="col">${t(lang, '电源', 'Power')}</th><th scope="col">${t(lang, '温度', 'Temperature')}</th><th scope="col">${t(lang, '喇叭线路', 'Speaker line')}</th></tr></thead>
<tbody>${amplifiers.map((d) => {
        const status = d.health?.status ?? {};
        const power = status['power'];
        return html`<tr data-amplifier="${d.id}" data-key="amplifier:${d.id}">
<th scope="row">${d.label}${d.health?.online === false ? html`<span class="sub bad">${t(lang, '离线：这是离线前的读数', 'offline: reading from before')}</span>` : ''}</th>
<td>${power === undefined ? '—' : power ? t(lang, '开', 'on') : t(lang, '关（待机）', 'off (standby)')}</td>
<td>${condition(status['overheat'], t(lang, '过热', 'OVERHEATING'))}</td>
<td>${condition(status['line-fault'], t(lang, '故障（短路或断线）', 'FAULT (short or open line)'))}</td>
</tr>`;
      })}</tbody>
</table></div>`
}
</section>`;
}

/** Each loudspeaker zone, and whether what it needs to sound (its amplifier, as its status device reports it) is well. */
function zonesSection(zones: readonly ConsoleZone[], devices: readonly DeviceRow[], lang: Lang): Html {
  if (zones.length === 0) return html``;
  const byId = new Map(devices.map((d) => [d.id, d]));
  const faultsOf = (zone: ConsoleZone): string[] => {
    if (zone.statusDevice === undefined) return [];
    const device = byId.get(zone.statusDevice);
    if (device?.health === undefined) return [t(lang, '功放状态设备未运行', "amplifier's status device not running")];
    const faults: string[] = [];
    if (!device.health.online) faults.push(t(lang, '功放状态设备离线', "amplifier's status device offline"));
    if (device.health.status?.['overheat'] === true) faults.push(t(lang, '功放过热', 'amplifier overheating'));
    if (device.health.status?.['line-fault'] === true) faults.push(t(lang, '喇叭线路故障', 'speaker line fault'));
    return faults;
  };
  return html`<section aria-labelledby="h-zones">
<h2 id="h-zones">${t(lang, '广播分区', 'Loudspeaker zones')}</h2>
<div class="table-wrap"><table class="zones">
<caption>${t(lang, '每个分区及其功放的故障', 'Each zone and the faults of its amplifier')}</caption>
<thead><tr><th scope="col">${t(lang, '分区', 'Zone')}</th><th scope="col">${t(lang, '功放', 'Amplifier')}</th><th scope="col">${t(lang, '状况', 'Condition')}</th></tr></thead>
<tbody>${zones.map((zone) => {
    const faults = faultsOf(zone);
    return html`<tr data-zone="${zone.id}" data-key="zone:${zone.id}" data-faulty="${faults.length > 0 ? 'true' : 'false'}">
<th scope="row">${zone.label}</th>
<td>${zone.amplifier ?? '—'}</td>
<td>${
      faults.length > 0
        ? html`<span class="bad">${faults.join(t(lang, '；', '; '))}</span>`
        : zone.statusDevice === undefined
          ? t(lang, '功放不报告状态', 'amplifier reports no state')
          : html`<span class="ok">${t(lang, '正常', 'normal')}</span>`
    }</td>
</tr>`;
  })}</tbody>
</table></div>
</section>`;
}

function outboxSection(outbox: Health['outbox'], lang: Lang): Html {
  return html`<section aria-labelledby="h-outbox">
<h2 id="h-outbox">${t(lang, '待发消息', 'Outbox')}</h2>
<dl class="facts">
<dt>${t(lang, '等待县平台确认', 'Waiting for the county')}</dt><dd data-outbox-depth="${outbox.depth}">${
    outbox.depth === 0
      ? t(lang, '无', 'none')
      : t(
          lang,
          `${outbox.depth} 条（报警 ${outbox.alarm}，故障 ${outbox.fault}，报告 ${outbox.report}）`,
          `${outbox.depth} (alarm ${outbox.alarm}, fault ${outbox.fault}, report ${outbox.report})`,
        )
  }</dd>
<dt>${t(lang, '最早一条已等', 'Oldest has waited')}</dt><dd>${outbox.oldestUnackedAgeSeconds === null ? '—' : durationText(lang, outbox.oldestUnackedAgeSeconds)}</dd>
</dl>
</section>`;
}

function systemSection(doc: StatusDocument, lang: Lang): Html {
  const { clock, audio, schedule } = doc.health;
  const clockText =
    clock === undefined
      ? t(lang, '未知', 'unknown')
      : clock.trusted
        ? t(
            lang,
            `可信（${clock.source === 'county' ? '县平台的时间' : '已同步的系统时钟'}）`,
            `trusted (${clock.source === 'county' ? "the county's time" : 'synchronised system clock'})`,
          )
        : html`<span class="bad">${t(lang, '不可信：系统时钟未同步，也未收到县平台的时间', 'NOT trusted: no synchronised clock, no time from the county yet')}</span>`;
  const audioText =
    audio.ok === null
      ? t(lang, '尚未检查', 'not checked yet')
      : audio.ok
        ? html`<span class="ok">${t(lang, '正常', 'works')}</span>`
        : html`<span class="bad">${t(lang, '无法使用', 'FAILS')}</span>${t(lang, '：', ': ')}${audio.reason ?? ''}`;
  const free = doc.system.dataDir.freeBytes;
  const storage = doc.health.storage;
  return html`<section aria-labelledby="h-system">
<h2 id="h-system">${t(lang, '本机', 'This controller')}</h2>
<dl class="facts">
<dt>${t(lang, '时钟', 'Clock')}</dt><dd data-clock-trusted="${String(clock?.trusted ?? false)}">${clockText}</dd>
<dt>${t(lang, '音频设备', 'Sound output')}</dt><dd>${audio.device}${t(lang, '：', ': ')}${audioText}</dd>
<dt>${t(lang, '存储空间', 'Storage')}</dt><dd>${free === null ? t(lang, '剩余空间未知', 'free space unknown') : t(lang, `剩余 ${bytesText(free)}`, `${bytesText(free)} free`)}${t(lang, '；', '; ')}${
    storage === undefined || storage.state === 'ok'
      ? html`<span class="ok">${t(lang, '可写入', 'writable')}</span>`
      : html`<span class="bad">${storageText(storage, lang)}</span>`
  }</dd>
<dt>${t(lang, '节目表', 'Schedule')}</dt><dd>${
    schedule === undefined || schedule.version === null
      ? t(lang, '没有节目表', 'no schedule')
      : t(
          lang,
          `版本 ${schedule.version}，来自${sourceText(schedule.source, lang)}，${schedule.programmes} 个节目`,
          `version ${schedule.version} from ${sourceText(schedule.source, lang)}, ${schedule.programmes} programme(s)`,
        )
  }</dd>
<dt>${t(lang, '软件版本', 'Software')}</dt><dd>village-edge ${doc.health.version}</dd>
</dl>
</section>`;
}

function storageText(storage: NonNullable<Health['storage']>, lang: Lang): string {
  const problem = storage.problem === null ? '' : t(lang, `（${storage.problem}）`, ` (${storage.problem})`);
  return storage.state === 'reserve'
    ? t(lang, `存储卡已满，正在使用预留空间${problem}`, `The storage card is full: running on the reserve${problem}`)
    : t(
        lang,
        `存储卡无法写入，${storage.memoryOnly} 条记录只在内存中，重启会丢失${problem}`,
        `The storage card takes no writes: ${storage.memoryOnly} record(s) only in memory, lost on a restart${problem}`,
      );
}

/** Where a schedule came from, in words (`ProgrammesView.schedule.source` uses the same names). */
export function sourceText(source: string | null, lang: Lang): string {
  switch (source) {
    case 'village':
      return t(lang, '县平台（本村）', 'the county (this village)');
    case 'all':
      return t(lang, '县平台（全县）', 'the county (every village)');
    case 'local':
      return t(lang, '本村配置文件', "this village's config file");
    default:
      return source ?? t(lang, '未知', 'unknown');
  }
}
