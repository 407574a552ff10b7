import { connect } from 'node:net';
import { parseFlags } from '../cli/args.ts';
import { printHelp } from '../cli/help.ts';
import { readConfigFile } from '../config/load.ts';
import { errorText } from '../platform/error-text.ts';
import { statusDocumentSchema, statusRequest, statusSocketPath, type StatusDocument } from './status-document.ts';

/** The systemd unit's config, so a technician on the Pi can type just `village-edge status`. */
const defaultConfigPath = '/etc/village-edge/config.json';

type StatusAnswer = { ok: true; document: StatusDocument } | { ok: false; message: string };

/** Asks the running service once. Every failure is one line for a technician, never a stack trace. */
function requestStatus(path: string, timeoutMs = 5000): Promise<StatusAnswer> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let text = '';
    const done = (answer: StatusAnswer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    // Connected but silent: the event loop is stuck or swamped, which the watchdog will act on; say so.
    const timer = setTimeout(
      () => done({ ok: false, message: `village-edge did not answer on ${path} within ${timeoutMs / 1000} s (running, but busy or stuck)` }),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${statusRequest}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => done(parseAnswer(text, path)));
    socket.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, message: connectProblem(error, path) }));
  });
}

function connectProblem(error: NodeJS.ErrnoException, path: string): string {
  switch (error.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return `village-edge is not running (nothing listens on ${path})`;
    case 'EACCES':
      return `permission denied on ${path}: only the service's user may connect (try sudo)`;
    default:
      return `cannot reach village-edge on ${path}: ${errorText(error)}`;
  }
}

function parseAnswer(text: string, path: string): StatusAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: `village-edge on ${path} closed without a whole answer (${text.length} bytes)` };
  }
  if (typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string')
    return { ok: false, message: `village-edge on ${path}: ${(json as { error: string }).error}` };
  const parsed = statusDocumentSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      message: `the answer on ${path} is not a status this village-edge reads (${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}); are the CLI and the service the same version?`,
    };
  }
  return { ok: true, document: parsed.data };
}

/** `village-edge status [--config FILE | --socket PATH] [--json]`: exit 0 when the service answered, 1 when not, 2 on bad arguments. */
export async function statusCommand(args: string[]): Promise<number> {
  // A wrong flag is a UsageError: one line and exit 2, from the command line's one catch.
  const { values } = parseFlags('status', args, {
    config: { type: 'string' },
    socket: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (values.help) return printHelp('status');
  if (values.config !== undefined && values.socket !== undefined) {
    console.error('status: give --config FILE or --socket PATH, not both');
    return 2;
  }
  let path = values.socket;
  if (path === undefined) {
    const configPath = values.config ?? defaultConfigPath;
    const result = readConfigFile(configPath);
    if (!result.ok) {
      console.error(
        `status: ${result.errors[0] ?? configPath}${result.errors.length > 1 ? ` (and ${result.errors.length - 1} more: check-config ${configPath})` : ''}`,
      );
      return 1;
    }
    path = statusSocketPath(result.config);
  }
  const answer = await requestStatus(path);
  if (!answer.ok) {
    console.error(answer.message);
    return 1;
  }
  console.log(values.json === true ? JSON.stringify(answer.document, null, 2) : formatStatus(answer.document));
  return 0;
}

/** The human summary: what a technician asks first, one subject a line, trouble in capitals. */
function formatStatus(doc: StatusDocument): string {
  const { health, link, system } = doc;
  const at = Date.parse(health.at);
  const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} (${ago(at - Date.parse(iso))})`;
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(10)} ${text}`);
  row('village', `${health.village}, village-edge ${health.version}, up ${duration(health.uptimeSeconds * 1000)}, at ${health.at}`);
  const lastUp = link.lastConnectedAt === null ? 'never connected since start' : `last connected ${when(link.lastConnectedAt)}`;
  const down = link.lastDisconnectedAt === null ? '' : `, last down ${when(link.lastDisconnectedAt)}: ${link.lastDisconnectReason ?? ''}`;
  row('county', `${link.connected ? 'connected' : 'NOT CONNECTED'} to ${link.url}; ${lastUp}${link.connected ? '' : down}`);
  const clock = health.clock;
  row(
    'clock',
    clock === undefined
      ? 'unknown'
      : clock.trusted
        ? `trusted (${clock.source}${clock.correctionMs > 0 ? `, ${clock.correctionMs} ms ahead of the system clock` : ''})`
        : 'NOT TRUSTED (no synchronised system clock, no county command yet)',
  );
  const ob = health.outbox;
  row(
    'outbox',
    ob.depth === 0
      ? 'empty'
      : `${ob.depth} waiting for the county (alarm ${ob.alarm}, fault ${ob.fault}, report ${ob.report}), oldest ${ob.oldestUnackedAgeSeconds === null ? '?' : duration(ob.oldestUnackedAgeSeconds * 1000)}`,
  );
  const storage = health.storage;
  const free = system.dataDir.freeBytes === null ? 'free space unknown' : `${bytes(system.dataDir.freeBytes)} free`;
  row(
    'storage',
    `${storage === undefined || storage.state === 'ok' ? 'ok' : storage.state.toUpperCase()}, ${free} in ${system.dataDir.path}${storage?.problem ? `: ${storage.problem}` : ''}${storage !== undefined && storage.memoryOnly > 0 ? `; ${storage.memoryOnly} record(s) only in memory` : ''}`,
  );
  const audio = health.audio;
  row(
    'audio',
    `${audio.device}: ${audio.ok === null ? 'not checked yet' : audio.ok ? 'opens' : `FAILS: ${audio.reason ?? ''}`}${audio.checkedAt === null ? '' : `, checked ${when(audio.checkedAt)}`}`,
  );
  const schedule = health.schedule;
  if (schedule !== undefined) {
    const today = Object.entries(schedule.today)
      .filter(([, n]) => n > 0)
      .map(([outcome, n]) => `${n} ${outcome}`)
      .join(', ');
    const missing = schedule.mediaMissing.map((m) => `${m.programme} (${m.reason})`).join('; ');
    row(
      'schedule',
      `${schedule.version === null ? 'none' : `version ${schedule.version} from ${schedule.source}, ${schedule.programmes} programme(s)`}; today: ${today || 'nothing yet'}${missing === '' ? '' : `; MEDIA MISSING for ${missing}`}`,
    );
  }
  row(
    'memory',
    `service ${bytes(health.memory.rssBytes)} resident (heap ${bytes(health.memory.heapUsedBytes)}); system ${bytes(system.memory.availableBytes)} available of ${bytes(system.memory.totalBytes)}`,
  );
  row(
    'cpu',
    `load ${system.loadAverage.join(' ')}; ${system.temperatures.length === 0 ? 'no temperature sensor' : system.temperatures.map((t) => `${t.celsius.toFixed(1)} °C (${t.type ?? t.zone})`).join(', ')}`,
  );
  const notes = new Map(doc.devices.map((d) => [d.id, d]));
  row('devices', `${health.devices.filter((d) => d.online).length} of ${health.devices.length} online`);
  for (const device of health.devices) {
    const note = notes.get(device.id);
    const errors = Object.entries(device.errors).filter(([, n]) => n > 0);
    const change = note?.lastChange;
    const state = device.online
      ? change?.online === true
        ? `online since ${when(change.at)}`
        : 'online'
      : `OFFLINE${change?.online === false ? ` since ${when(change.at)}${change.reason ? `: ${change.reason}` : ''}` : ''}`;
    const parts = [`${device.id}${note ? ` (${note.label})` : ''}, ${device.model} on ${device.bus}: ${state}`];
    // Undefined from a service older than the field: say nothing rather than "never".
    if (note?.lastReplyAt !== undefined) parts.push(note.lastReplyAt === null ? 'NO REPLY since start' : `last reply ${when(note.lastReplyAt)}`);
    if (errors.length > 0) parts.push(`errors ${errors.map(([kind, n]) => `${kind} ${n}`).join(', ')}`);
    if (note?.lastError) parts.push(`last error ${note.lastError.kind} ${when(note.lastError.at)}: ${note.lastError.detail}`);
    lines.push(`  ${parts.join('; ')}`);
  }
  row('problems', health.problems.length === 0 ? 'none' : `${health.problems.length}`);
  for (const problem of health.problems) lines.push(`  ${problem}`);
  return lines.join('\n');
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

function ago(ms: number): string {
  return `${duration(ms)} ago`;
}

function bytes(n: number): string {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
