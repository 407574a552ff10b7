import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { missingPlayerPrograms } from './config/preflight.ts';
import type { DeviceEvent } from './drivers/device/types.ts';
import { loadProfiles } from './drivers/profiles.ts';
import { createDeviceHub, type DeviceHub } from './drivers/device-hub.ts';
import type { BroadcastJournal, Outbox, OutboxRecord, ReplayGuard } from './store/types.ts';
import { ResilientOutbox, type StorageNotice } from './store/resilient-outbox.ts';
import { ResilientReplayGuard } from './store/resilient-replay-guard.ts';
import { openSqliteBroadcastJournal } from './store/sqlite-broadcast-journal.ts';
import type { Uplink } from './county/types.ts';
import { createMqttLink } from './county/mqtt-link.ts';
import { embeddedBrokerComponent } from './county/embedded-broker.ts';
import { Delivery } from './county/delivery.ts';
import { HealthReporter, type HealthSources } from './county/health-reporter.ts';
import { createCommandGate } from './county/command-gate.ts';
import { createCommandRouter } from './county/command-router.ts';
import { AlarmService } from './alarm/alarm-service.ts';
import { FaultRecorder } from './alarm/fault-recorder.ts';
import type { AudioOutput, Player } from './broadcast/types.ts';
import { BroadcastController } from './broadcast/controller.ts';
import { createProcessPlayer } from './broadcast/process-player.ts';
import { createProcessOutput } from './broadcast/process-output.ts';
import { ReportRecorder } from './broadcast/report-recorder.ts';
import { DurableBroadcasts } from './broadcast/durable-broadcasts.ts';
import { broadcastDeviceInputs } from './broadcast/device-inputs.ts';
import { LocalAlarm } from './broadcast/local-alarm.ts';
import { countyBroadcastHandlers } from './broadcast/county-requests.ts';
import { ProgrammeSchedule } from './schedule/programme-schedule.ts';
import type { MediaLibrary, ProgrammeLog, ScheduleStore } from './schedule/types.ts';
import { FileMediaLibrary } from './media/media-library.ts';
import { openSqliteScheduleStore } from './store/sqlite-schedule-store.ts';
import { createMemoryScheduleStore } from './store/memory-schedule-store.ts';
import { Activity } from './status/activity.ts';
import { buildStatusDocument } from './status/build-status.ts';
import { statusSocketPath, type StatusDocument } from './status/status-document.ts';
import { StatusServer } from './status/status-server.ts';
import { createSdNotifier } from './platform/sd-notify.ts';
import { TrustedClock, type ClockState } from './platform/trusted-clock.ts';
import type { Now } from './platform/time.ts';
import { errorText } from './platform/error-text.ts';
import { contained, fanOut } from './platform/contained.ts';
import { ConsoleVillageAdapter } from './console/console-village.ts';
import type { ConsoleServer } from './console/http/console-server.ts';
import { accountsFileExposure } from './console/auth/accounts.ts';
import { recentAlarms } from './console/recent-alarms.ts';
import { SpeakerTest } from './console/speaker-test.ts';
import { deviceDiagnostics } from './console/device-diagnostics.ts';
import { Lifecycle } from './platform/lifecycle.ts';

/** The shipped `devices/` folder, found from this file whether it runs from src/ or dist/. */
export const shippedProfilesDir = fileURLToPath(new URL('../devices/', import.meta.url));
/** The console page's stylesheet and scripts: src/console/assets/, which the build copies to dist/console/assets/. */
export const shippedConsoleAssetsDir = fileURLToPath(new URL('./console/assets/', import.meta.url));

export interface VillageEdgeOptions {
  config: Config;
  /** Folder of the config file, for relative paths in it. */
  configDir?: string;
  version: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Any I/O edge can be swapped for another real one (tests); each has a production default. */
  adapters?: {
    outbox?: Outbox;
    uplink?: Uplink;
    player?: Player;
    audioOutput?: AudioOutput;
    replay?: ReplayGuard;
    journal?: BroadcastJournal;
    scheduleStore?: ScheduleStore & ProgrammeLog;
    media?: MediaLibrary;
    now?: Now;
  };
}

export interface VillageEdge {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly devices: DeviceHub;
  /**
   * What `village-edge status` shows: the health the county gets (the outbox, the problems found at
   * start-up, each of which was logged while the rest runs), the county link, each device, the machine.
   */
  status(): Promise<StatusDocument>;
}

/** The whole service for one village, built from its config. The only place that constructs the pieces. */
export function createVillageEdge(options: VillageEdgeOptions): VillageEdge {
  const { config, logger, version } = options;
  const { adapters = {} } = options;
  // One notion of time for everything: the system clock once it is trusted, never earlier than the newest
  // verified county command (a Pi without a battery clock may boot years behind).
  const clock = new TrustedClock({
    policy: config.clock.systemClock,
    synchronizedFlag: config.clock.synchronizedFlag,
    systemNow: adapters.now ?? Date.now,
  });
  const now = () => clock.now();
  const env = options.env ?? process.env;
  const startedAt = now();
  const problems: string[] = [];
  const storeLogger = logger.child({ component: 'store' });

  // A player program that is missing is found now, not at the first emergency.
  problems.push(...missingPlayerPrograms(config.broadcast, env['PATH']));
  const profileSet = loadProfiles([shippedProfilesDir, ...(config.profilesDir === undefined ? [] : [config.profilesDir])]);
  problems.push(...profileSet.errors);

  // Listeners below may name parts built further down: they are called only once start() has run,
  // when every part exists.

  // A card that fills up or turns read-only is a fault for the county, never a lost press (the fault itself
  // travels the outbox, from memory if need be).
  const onStorageNotice = (notice: StorageNotice) =>
    faults.raise(notice.kind === 'problem' ? 'storage' : 'storage-recovered', 'data-directory', notice.detail);
  const storage = adapters.outbox
    ? undefined
    : new ResilientOutbox({
        dataDir: config.dataDir,
        reserveBytes: config.storage.reserveBytes,
        retryMs: config.storage.retryMs,
        logger: storeLogger,
        onNotice: onStorageNotice,
        now,
      });
  const outbox: Outbox = adapters.outbox ?? storage!;
  const replayStore = adapters.replay
    ? undefined
    : new ResilientReplayGuard({
        path: join(config.dataDir, 'commands.sqlite'),
        logger: storeLogger,
        onNotice: onStorageNotice,
        now,
        retryMs: config.storage.retryMs,
      });
  const replay: ReplayGuard = adapters.replay ?? replayStore!;
  const uplink =
    adapters.uplink ??
    createMqttLink({
      config: config.county,
      villageId: config.village.id,
      version,
      logger,
      // Back to the county fast while an alarm waits for it (the backoff otherwise grows to minutes' worth).
      urgent: () => outbox.stats().byStream.alarm > 0,
      ...(options.configDir ? { configDir: options.configDir } : {}),
    });
  const onStored = (record: OutboxRecord) => {
    if (record.stream === 'alarm') uplink.hurry();
    delivery.kick();
  };

  // For `village-edge status`: the link's and each device's last change, which nothing else keeps.
  const activity = new Activity(now);
  uplink.on('connected', () => activity.linkConnected());
  uplink.on('disconnected', (reason) => activity.linkDisconnected(reason));

  const { hub, problems: deviceProblems } = createDeviceHub({
    buses: config.buses,
    devices: config.devices,
    profiles: profileSet.profiles,
    timing: config.timing,
    // Each listener contained: a store that cannot write must not silence the others, or the bus.
    sink: fanOut<DeviceEvent>(logger, 'device event', {
      alarm: (event) => alarms.handleDeviceEvent(event),
      fault: (event) => faults.handleDeviceEvent(event),
      broadcast: (event) => broadcastInputs(event),
      status: (event) => activity.observeDevice(event),
    }),
    logger: logger.child({ component: 'devices' }),
    now,
  });
  problems.push(...deviceProblems);

  const broadcastLogger = logger.child({ component: 'broadcast' });
  const reports = new ReportRecorder({ villageId: config.village.id, outbox, logger: logger.child({ component: 'report' }), onStored, now });
  const { output } = config.broadcast;
  const player =
    adapters.player ?? createProcessPlayer({ templates: config.broadcast.player, library: config.broadcast.library, device: output.device, logger });
  const audioOutput = adapters.audioOutput ?? createProcessOutput({ output, killTimeoutMs: config.broadcast.player.killTimeoutMs, logger });
  let journalFaultRaised = false;
  const durable = new DurableBroadcasts({
    openJournal: () => adapters.journal ?? openSqliteBroadcastJournal({ path: join(config.dataDir, 'broadcasts.sqlite'), logger: storeLogger }),
    submit: (request) => broadcast.submit(request),
    report: (event) => reports.playback(event),
    // Once per life: the county learns the journal is broken; every failed write is in the log.
    onStorageFailure: (error) => {
      if (journalFaultRaised) return;
      journalFaultRaised = true;
      faults.raise(
        'storage',
        'broadcasts.sqlite',
        `broadcast journal: ${errorText(error)}; broadcasts play, but one cut off by a restart would not be resumed`,
      );
    },
    logger: broadcastLogger,
    now,
  });
  const broadcast = new BroadcastController({
    config: config.broadcast,
    devices: hub,
    player,
    logger: broadcastLogger,
    // Reported first, forgotten after: a crash in between plays an emergency twice rather than never reporting its end.
    onEvent: (event) => {
      reports.playback(event);
      durable.observe(event);
      programmes.observe(event);
      consoleVillage.observe(event);
    },
    refusal: (request) => programmes.refusal(request),
    playerStopWaitMs: config.broadcast.player.killTimeoutMs + 500,
    // Sound that cannot go out is a fault to the county, not only a line in the log.
    output: { port: audioOutput, checkIntervalMs: output.checkIntervalMs, onChange: (state) => faults.audioChanged(state) },
    now,
  });
  const broadcastInputs = broadcastDeviceInputs(config.broadcast.amplifiers, broadcast);
  const localAlarm = new LocalAlarm({
    terminals: config.devices,
    announcement: config.broadcast.localAlarm,
    submit: (request) => broadcast.submit(request),
    stopPlayback: (target, reason) => broadcast.stopPlayback(target, reason),
  });

  const alarms = new AlarmService({
    village: config.village,
    terminals: config.devices
      .filter((d) => d.role === 'alarm-column' && hub.device(d.id) !== undefined)
      .map((d) => ({ id: d.id, label: d.label, testMode: d.testMode })),
    devices: hub,
    outbox,
    timing: config.timing,
    logger: logger.child({ component: 'alarm' }),
    onStored,
    onAckOverdue: (alarm) => localAlarm.ackOverdue(alarm),
    onUnreadable: (error) => faults.raise('storage', 'outbox', error.message),
    sendEarly: (record) => delivery.sendEarly(record),
    now,
    clock,
  });
  clock.onCorrected(
    contained(logger, 'clock correction', (state: ClockState) => {
      logger.warn({ clock: state }, 'time is trusted now');
      alarms.clockCorrected();
    }),
  );
  const faults = new FaultRecorder({ villageId: config.village.id, outbox, logger: logger.child({ component: 'fault' }), onStored, now });
  const delivery = new Delivery({
    outbox,
    uplink,
    retry: config.timing.retry,
    logger: logger.child({ component: 'delivery' }),
    // Each contained on its own: a column that cannot show 'received' must not keep the local alarm sounding.
    onAcked: fanOut<OutboxRecord>(logger, 'acknowledged record', {
      alarms: (record) => alarms.acknowledged(record),
      'local alarm': (record) => localAlarm.acknowledged(record),
    }),
    onUnreadable: (error) => faults.raise('storage', 'outbox', error.message),
    now,
  });

  const scheduleStore = adapters.scheduleStore === undefined ? openScheduleStore() : { store: adapters.scheduleStore };
  const programmes = new ProgrammeSchedule({
    store: scheduleStore.store,
    media:
      adapters.media ??
      new FileMediaLibrary({
        root: config.broadcast.library,
        quotaBytes: config.schedule.media.quotaBytes,
        concurrency: config.schedule.media.concurrency,
        timeouts: { totalMs: config.schedule.media.timeoutSeconds * 1000, stallMs: config.schedule.media.stallSeconds * 1000 },
        ...mediaCa(),
        logger,
        now,
      }),
    local: config.schedule.document,
    zoneIds: config.broadcast.zones.map((z) => z.id),
    mediaExtensions: Object.keys(config.broadcast.player.media),
    clock,
    player: { submit: (request) => broadcast.submit(request), stop: (requestId, reason) => broadcast.stopPlayback({ requestId }, reason) },
    settings: {
      graceMs: config.schedule.graceSeconds * 1000,
      mediaLookaheadMs: config.schedule.mediaLookaheadHours * 3_600_000,
      retentionMs: config.schedule.retentionDays * 86_400_000,
    },
    tell: {
      applied: (applied) => reports.scheduleApplied(applied),
      rejected: (rejection) => reports.rejected({ ...rejection, kind: 'schedule' }),
      clockJump: (jump) =>
        faults.raise(
          'clock-jump',
          'clock',
          `the clock jumped ${jump.deltaMs > 0 ? 'forward' : 'back'} by ${Math.round(Math.abs(jump.deltaMs) / 1000)} s`,
        ),
      mediaMissing: (missing) =>
        missing.length === 0
          ? faults.raise('schedule-media-recovered', 'media', 'every programme due within the hour has its media')
          : faults.raise('schedule-media', 'media', missing.map((m) => `${m.programme}: ${m.reason}`).join('; ')),
      storageFailure: (error) => faults.raise('storage', 'schedule.sqlite', `programme schedule store: ${errorText(error)}`),
      dailySummary: (summary) => reports.programmeSummary(summary),
    },
    logger: logger.child({ component: 'schedule' }),
  });

  const gate = createCommandGate({
    villageId: config.village.id,
    keys: config.county.commandKeys,
    maxClockSkewSeconds: config.county.maxClockSkewSeconds,
    maxLifetimeSeconds: config.county.maxCommandLifetimeSeconds,
    maxBytes: config.county.maxInboundBytes,
    maxScheduleBytes: config.county.maxScheduleBytes,
    replay,
    now,
  });
  uplink.on(
    'command',
    createCommandRouter({
      gate,
      handlers: {
        ack: (command) => delivery.acknowledge(command.id),
        ...countyBroadcastHandlers({
          zoneIds: config.broadcast.zones.map((z) => z.id),
          submit: (request) => durable.submit(request),
          stopPlayback: (target, reason) => broadcast.stopPlayback(target, reason),
          logger: broadcastLogger,
        }),
        // The router has already given its iat to the trusted clock, which is all a time message says.
        time: () => undefined,
        // By the topic it came on: the claims cannot tell them apart (`aud: "all"` is accepted on both).
        schedule: (claims, source) => programmes.offer(source.audienceTopic === 'all' ? 'all' : 'village', claims.schedule, claims.jti),
      },
      // Logged by the recorder, within the same per-minute budget as the reports: a flood writes a count, not a line per message.
      onRejected: (rejection) => reports.rejected(rejection),
      onIssuedAt: (iat) => clock.observe(iat),
      logger,
    }),
  );

  const healthSources: HealthSources = {
    villageId: config.village.id,
    version,
    startedAt,
    pollIntervalMs: config.timing.pollIntervalMs,
    devices: () => hub.health(),
    outbox: () => outbox.stats(),
    problems: () => {
      const problem = storage?.health().problem;
      const exposed = config.console.enabled ? accountsFileExposure(config.console.usersFile) : undefined;
      return [
        ...problems,
        ...(problem === null || problem === undefined ? [] : [`storage: ${problem}`]),
        ...(exposed === undefined ? [] : [`console: ${exposed}`]),
      ];
    },
    ...(storage === undefined ? {} : { storage: () => storage.health() }),
    clock: () => clock.state(),
    audio: () => broadcast.audioState() ?? { device: output.device, ok: null, checkedAt: null },
    schedule: () => programmes.health(),
  };
  const health = new HealthReporter({ sources: healthSources, uplink, intervalMs: config.timing.healthIntervalMs, logger, now });
  const statusDocument = (): Promise<StatusDocument> =>
    buildStatusDocument({
      health: healthSources,
      countyUrl: config.county.url,
      linkConnected: () => uplink.connected,
      activity,
      devices: config.devices,
      dataDir: config.dataDir,
      thermalDir: config.status.thermalDir,
      now,
    });
  const speakerTest = new SpeakerTest({
    library: config.broadcast.library,
    zones: config.broadcast.zones.map((z) => z.id),
    submit: (request) => broadcast.submit(request),
    refusal: (request) => programmes.refusal(request),
    report: (entry) => consoleVillage.audit(entry),
    logger,
    now,
  });
  const consoleVillage = new ConsoleVillageAdapter({
    villageName: config.village.name,
    zones: config.broadcast.zones.map((z) => ({
      id: z.id,
      label: z.label,
      amplifier: z.amplifier,
      statusDevice: config.broadcast.amplifiers.find((a) => a.id === z.amplifier)?.statusDevice,
    })),
    terminals: config.devices.filter((d) => d.role === 'alarm-column').map((d) => ({ id: d.id, label: d.label })),
    library: config.broadcast.library,
    status: () => statusDocument(),
    broadcast: { submit: (request) => broadcast.submit(request), stopPlayback: (target, reason) => broadcast.stopPlayback(target, reason) },
    recentAlarms: (limit) => recentAlarms({ outbox, limit, ackTimeoutMs: config.timing.ackTimeoutMs, now, logger }),
    programmes: () => programmes.overview(),
    diagnostics: () => deviceDiagnostics(hub.health(), config.devices),
    testAlarm: (terminal) => alarms.raiseTest(terminal),
    speakerTest: async (zone, user) => speakerTest.run(zone, user),
    // Logged here, stored by the recorder (durable, acked; refused logins within their per-minute budget).
    report: (entry) => {
      logger.info({ audit: entry }, 'console action');
      reports.console(entry);
    },
    logger,
    now,
  });
  // Loaded only when enabled: a village without the console does not carry the web framework in memory.
  let consoleServer: ConsoleServer | undefined;
  const startConsole = async () => {
    const { ConsoleServer } = await import('./console/http/console-server.ts');
    consoleServer = new ConsoleServer({ config: config.console, village: consoleVillage, assetsDir: shippedConsoleAssetsDir, logger, now });
    await consoleServer.start();
  };
  const status = new StatusServer({ path: statusSocketPath(config), logger: logger.child({ component: 'status' }), document: statusDocument });
  // The watchdog vouches for delivery's once-a-second pass (and so the event loop) still turning.
  const notifier = createSdNotifier({ env, alive: () => delivery.alive(), logger });

  const lifecycle = new Lifecycle(
    [
      { name: 'clock', start: () => clock.start(), stop: () => clock.stop() },
      // First: every other part reads and writes through them. Neither throws: a bad card runs from memory.
      { name: 'outbox', start: () => storage?.start(), stop: () => outbox.close() },
      { name: 'replay guard', start: () => replayStore?.start(), stop: () => replay.close() },
      ...(config.county.embeddedBroker ? [embeddedBrokerComponent(config.county.url, logger)] : []),
      { name: 'rejection reports', start: () => undefined, stop: () => reports.stop() },
      { name: 'alarms', start: () => alarms.start(), stop: () => alarms.stop() },
      { name: 'delivery', start: () => delivery.start(), stop: () => delivery.stop() },
      // A bad TLS file must not take the columns down with it: alarms keep being stored locally.
      { name: 'county link', start: () => uplink.start(), stop: () => uplink.stop(), problem: (error) => `county: ${errorText(error)}` },
      { name: 'devices', start: () => hub.start(), stop: () => hub.stop() },
      // Broadcasts still play without it; only one cut off by a restart would go unreported (a fault says so).
      { name: 'broadcast journal', start: () => durable.start(), stop: () => durable.stop(), problem: (error) => errorText(error) },
      {
        name: 'broadcasts',
        start: () => {
          broadcast.start();
          durable.resume();
        },
        stop: () => broadcast.stop(),
      },
      // After the broadcasts: its first wake may fire a programme due within the grace window.
      {
        name: 'programme schedule',
        start: () => {
          if (scheduleStore.problem !== undefined) faults.raise('storage', 'schedule.sqlite', scheduleStore.problem);
          programmes.start();
        },
        stop: async () => {
          await programmes.stop();
          scheduleStore.store.close();
        },
      },
      { name: 'health', start: () => health.start(), stop: () => health.stop() },
      {
        name: 'status socket',
        start: () => status.start(),
        stop: () => status.stop(),
        // Only the technician's view is lost; the village stays on the air.
        problem: (error) => `status.socket: ${errorText(error)}; \`village-edge status\` cannot reach the service`,
      },
      ...(config.console.enabled
        ? [
            {
              name: 'console',
              start: startConsole,
              stop: () => consoleServer?.stop(),
              // The office page is lost, not the village: alarms and broadcasts go on without it.
              problem: (error: unknown) => `console: ${errorText(error)}; the office page is not served`,
            },
          ]
        : []),
      { name: 'systemd notification', start: () => notifier.ready(), stop: () => notifier.stop() },
    ],
    logger,
  );

  /** The schedule's own file; a card that cannot hold it runs the schedule from memory and says so. */
  function openScheduleStore(): { store: ScheduleStore & ProgrammeLog; problem?: string } {
    try {
      return { store: openSqliteScheduleStore({ path: join(config.dataDir, 'schedule.sqlite'), logger: storeLogger }) };
    } catch (error) {
      const problem = `schedule.sqlite: ${errorText(error)}; the schedule runs from memory and a restart forgets it`;
      problems.push(problem);
      return { store: createMemoryScheduleStore(), problem };
    }
  }

  /** An unreadable CA file is the installer's mistake: named in health, and HTTPS media fetches fail with the reason. */
  function mediaCa(): { ca?: Buffer } {
    const path = config.schedule.media.ca;
    if (path === undefined) return {};
    try {
      return { ca: readFileSync(path) };
    } catch (error) {
      problems.push(`schedule.media.ca: ${errorText(error)}`);
      return {};
    }
  }

  return {
    devices: hub,
    status: statusDocument,
    async start() {
      for (const problem of problems) logger.error({ problem }, 'configuration problem; the rest of the service runs');
      problems.push(...(await lifecycle.start()));
      logger.info({ village: config.village.id, version, devices: hub.devices().length, problems: problems.length }, 'village-edge started');
    },
    async stop() {
      notifier.stopping();
      await lifecycle.stop();
      logger.info('village-edge stopped');
    },
  };
}
