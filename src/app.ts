import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { DeviceEvent } from './drivers/types.ts';
import type { Outbox, OutboxRecord } from './store/types.ts';
import type { Uplink } from './county/types.ts';
import type { Now } from './platform/time.ts';
import { loadProfiles } from './drivers/profiles.ts';
import { createDeviceHub, type DeviceHub } from './drivers/device-hub.ts';
import { ResilientOutbox, type StorageNotice } from './store/resilient-outbox.ts';
import { ResilientReplayGuard } from './store/resilient-replay-guard.ts';
import { AlarmService } from './alarm/alarm-service.ts';
import { FaultRecorder } from './alarm/fault-recorder.ts';
import { createMqttLink } from './county/mqtt-link.ts';
import { startEmbeddedBroker } from './county/embedded-broker.ts';
import { Delivery } from './county/delivery.ts';
import { HealthReporter, type HealthSources } from './county/health-reporter.ts';
import { createSdNotifier, type SdNotifier } from './platform/sd-notify.ts';
import { TrustedClock } from './platform/trusted-clock.ts';
import { missingPlayerPrograms } from './config/preflight.ts';
import { BroadcastController } from './broadcast/controller.ts';
import { createProcessPlayer } from './broadcast/process-player.ts';
import { createProcessOutput } from './broadcast/process-output.ts';
import { ReportRecorder } from './broadcast/report-recorder.ts';
import { AmplifierFaults } from './broadcast/amplifier-faults.ts';
import { DurableBroadcasts } from './broadcast/durable-broadcasts.ts';
import { openSqliteBroadcastJournal } from './store/sqlite-broadcast-journal.ts';
import type { AudioOutput, AudioState, Player } from './broadcast/types.ts';
import type { AlarmPayload, BroadcastCommand } from './county/payloads.ts';
import { createCommandGate } from './county/command-gate.ts';
import type { InboundCommand } from './county/types.ts';
import type { BroadcastJournal, ReplayGuard } from './store/types.ts';
import { errorText } from './platform/error-text.ts';
import { Activity } from './status/activity.ts';
import { buildStatusDocument } from './status/build-status.ts';
import { statusSocketPath } from './status/status-document.ts';
import { StatusServer } from './status/status-server.ts';

/** The shipped `devices/` folder, found from this file whether it runs from src/ or dist/. */
export const shippedProfilesDir = fileURLToPath(new URL('../devices/', import.meta.url));

export interface VillageEdgeOptions {
  config: Config;
  /** Folder of the config file, for relative paths in it. */
  configDir?: string;
  version: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Any I/O edge can be swapped for another real one (tests); each has a production default. */
  adapters?: { outbox?: Outbox; uplink?: Uplink; player?: Player; audioOutput?: AudioOutput; replay?: ReplayGuard; journal?: BroadcastJournal; now?: Now };
}

export interface VillageEdge {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly devices: DeviceHub;
  readonly outbox: Outbox;
  readonly uplink: Uplink;
  /** Config, profile and device problems found at start-up; each was logged and the rest runs. */
  readonly problems: readonly string[];
}

/** The whole service for one village, built from its config. The only place that constructs the pieces. */
export function createVillageEdge(options: VillageEdgeOptions): VillageEdge {
  const { config, logger, version } = options;
  // One notion of time for everything: the system clock once it is trusted, never earlier than the newest
  // verified county command (a Pi without a battery clock may boot years behind).
  const clock = new TrustedClock({ policy: config.clock.systemClock, synchronizedFlag: config.clock.synchronizedFlag, systemNow: options.adapters?.now ?? Date.now });
  const now = () => clock.now();
  const env = options.env ?? process.env;
  const startedAt = now();
  const problems: string[] = [];

  // A player program that is missing is found now, not at the first emergency.
  problems.push(...missingPlayerPrograms(config.broadcast, env['PATH']));
  const profileSet = loadProfiles([shippedProfilesDir, ...(config.profilesDir === undefined ? [] : [config.profilesDir])]);
  problems.push(...profileSet.errors);

  // A card that fills up or turns read-only is a fault for the county, never a lost press (the fault itself
  // travels the outbox, from memory if need be). Set before start(), when the stores first open.
  let faults: FaultRecorder | undefined;
  const onStorageNotice = (notice: StorageNotice) =>
    faults?.raise(notice.kind === 'problem' ? 'storage' : 'storage-recovered', 'data-directory', notice.detail);
  const storeLogger = logger.child({ component: 'store' });
  const storage = options.adapters?.outbox
    ? undefined
    : new ResilientOutbox({ dataDir: config.dataDir, reserveBytes: config.storage.reserveBytes, retryMs: config.storage.retryMs, logger: storeLogger, onNotice: onStorageNotice, now });
  const outbox: Outbox = options.adapters?.outbox ?? storage!;
  const replayStore = options.adapters?.replay
    ? undefined
    : new ResilientReplayGuard({ path: join(config.dataDir, 'commands.sqlite'), logger: storeLogger, onNotice: onStorageNotice, now, retryMs: config.storage.retryMs });
  const replay: ReplayGuard = options.adapters?.replay ?? replayStore!;
  const gate = createCommandGate({
    villageId: config.village.id,
    keys: config.county.commandKeys,
    maxClockSkewSeconds: config.county.maxClockSkewSeconds,
    maxLifetimeSeconds: config.county.maxCommandLifetimeSeconds,
    maxBytes: config.county.maxInboundBytes,
    replay,
    now,
  });
  const uplink =
    options.adapters?.uplink ??
    createMqttLink({
      config: config.county,
      villageId: config.village.id,
      version,
      logger,
      // Back to the county fast while an alarm waits for it (the backoff otherwise grows to minutes' worth).
      urgent: () => outbox.stats().byStream.alarm > 0,
      ...(options.configDir ? { configDir: options.configDir } : {}),
    });

  // For `village-edge status`: the link's and each device's last change, which nothing else keeps.
  const activity = new Activity(now);
  uplink.on('connected', () => activity.linkConnected());
  uplink.on('disconnected', (reason) => activity.linkDisconnected(reason));

  // Events can only arrive after start(); these are assigned before then.
  let alarms: AlarmService | undefined;
  let broadcast: BroadcastController | undefined;
  const amplifierFaults = new AmplifierFaults(config.broadcast.amplifiers, (amplifier, fault) => broadcast?.setAmplifierFault(amplifier, fault));
  const sink = (event: DeviceEvent) => {
    for (const [name, handle] of [
      ['alarm', () => alarms?.handleDeviceEvent(event)],
      ['fault', () => faults?.handleDeviceEvent(event)],
      ['amplifier', () => amplifierFaults.handleDeviceEvent(event)],
      ['status', () => activity.observeDevice(event)],
      // A villager's stop button silences everything, whatever asked for sound, until it is released.
      ['local-stop', () => event.type === 'input' && event.input === 'stop' && broadcast?.setLocalStop(event.active)],
    ] as const) {
      try {
        handle();
      } catch (error) {
        // A failed write to the store must not silence the other listener (or the bus).
        logger.error({ err: error, listener: name, event }, 'device event handler failed');
      }
    }
  };

  const { hub, problems: deviceProblems } = createDeviceHub({
    buses: config.buses,
    devices: config.devices,
    profiles: profileSet.profiles,
    timing: config.timing,
    sink,
    logger: logger.child({ component: 'devices' }),
    now,
  });
  problems.push(...deviceProblems);

  let delivery: Delivery | undefined;
  const onStored = (record: OutboxRecord) => {
    if (record.stream === 'alarm') uplink.hurry();
    delivery?.kick();
  };
  const reports = new ReportRecorder({ villageId: config.village.id, outbox, logger: logger.child({ component: 'report' }), onStored, now });
  const { output } = config.broadcast;
  const player =
    options.adapters?.player ?? createProcessPlayer({ templates: config.broadcast.player, library: config.broadcast.library, device: output.device, logger });
  const audioOutput = options.adapters?.audioOutput ?? createProcessOutput({ output, killTimeoutMs: config.broadcast.player.killTimeoutMs, logger });
  /** Sound that cannot go out is a fault to the county, not only a line in the log. */
  const onAudioChange = (state: AudioState) => {
    if (state.ok) faults?.raise('audio-recovered', state.device, `the sound output "${state.device}" opens again`);
    else faults?.raise('audio', state.device, `the sound output "${state.device}" cannot be opened: ${state.reason ?? 'unknown reason'}`);
  };
  let journal = options.adapters?.journal;
  let journalOpenError: unknown;
  if (journal === undefined) {
    try {
      journal = openSqliteBroadcastJournal({ path: join(config.dataDir, 'broadcasts.sqlite'), logger: storeLogger });
    } catch (error) {
      // Broadcasts still play; only a restart in the middle of one would go unreported (a fault at start says so).
      journalOpenError = error;
      problems.push((error as Error).message);
    }
  }
  let journalFaultRaised = false;
  /** Once per life: the county learns the journal is broken; every failed write is in the log. */
  const onJournalFailure = (error: unknown) => {
    if (journalFaultRaised) return;
    journalFaultRaised = true;
    try {
      faults?.raise('storage', 'broadcasts.sqlite', `broadcast journal: ${(error as Error).message}; broadcasts play, but one cut off by a restart would not be resumed`);
    } catch (raiseError) {
      logger.error({ err: raiseError }, 'storage fault could not be stored');
    }
  };
  const durable = new DurableBroadcasts({
    journal,
    submit: (request) => broadcast?.submit(request),
    report: (event) => reports.playback(event),
    onStorageFailure: onJournalFailure,
    logger: logger.child({ component: 'broadcast' }),
    now,
  });
  broadcast = new BroadcastController({
    config: config.broadcast,
    devices: hub,
    player,
    logger: logger.child({ component: 'broadcast' }),
    // Reported first, forgotten after: a crash in between plays an emergency twice rather than never reporting its end.
    onEvent: (event) => {
      reports.playback(event);
      durable.observe(event);
    },
    playerStopWaitMs: config.broadcast.player.killTimeoutMs + 500,
    output: { port: audioOutput, checkIntervalMs: output.checkIntervalMs, onChange: onAudioChange },
    now,
  });
  const zoneOfTerminal = new Map(config.devices.flatMap((d) => (d.zone === undefined ? [] : [[d.id, d.zone] as const])));
  const localAlarmId = (alarmId: string) => `local-alarm-${alarmId}`;
  /** Local autonomy: the county did not ack in time, so the village itself sounds the alarm in that terminal's zone. */
  const onAckOverdue = (alarm: AlarmPayload) => {
    const zone = zoneOfTerminal.get(alarm.terminal);
    const local = config.broadcast.localAlarm;
    if (zone === undefined || local === undefined || alarm.type === 'test') return;
    broadcast?.submit({ id: localAlarmId(alarm.id), priority: 'local-alarm', status: 'actual', zones: [zone], content: local.content, chime: false, repeat: local.repeat, origin: 'local' });
  };
  alarms = new AlarmService({
    village: config.village,
    terminals: config.devices.filter((d) => d.role === 'alarm-column' && hub.device(d.id) !== undefined).map((d) => ({ id: d.id, label: d.label, testMode: d.testMode })),
    devices: hub,
    outbox,
    timing: config.timing,
    logger: logger.child({ component: 'alarm' }),
    onStored,
    onAckOverdue,
    sendEarly: (record) => delivery?.sendEarly(record) ?? record,
    now,
    clock,
  });
  clock.onCorrected((state) => {
    logger.warn({ clock: state }, 'time is trusted now');
    alarms?.clockCorrected();
  });
  faults = new FaultRecorder({ villageId: config.village.id, outbox, logger: logger.child({ component: 'fault' }), onStored, now });
  delivery = new Delivery({
    outbox,
    uplink,
    retry: config.timing.retry,
    logger: logger.child({ component: 'delivery' }),
    onAcked: (record) => {
      alarms?.acknowledged(record);
      // Help has been reached: the local alarm has done its job.
      if (record.stream === 'alarm') broadcast?.stopPlayback({ requestId: localAlarmId(record.id) }, 'the county acknowledged the alarm');
    },
    now,
  });
  const zoneIds = config.broadcast.zones.map((z) => z.id);
  const toPlayRequest = (c: BroadcastCommand) => ({
    id: c.jti,
    priority: c.priority,
    ...(c.level === undefined ? {} : { level: c.level }),
    status: c.status,
    zones: c.zones === 'all' ? zoneIds : c.zones,
    content: c.content,
    chime: c.chime,
    repeat: c.repeat,
    expiresAt: c.exp * 1000,
    origin: 'county' as const,
  });
  /** Every county→village message passes the gate first; nothing unverified is ever acted on. */
  const onCommand = (message: InboundCommand) => {
    gate
      .verify({ kind: message.command, audienceTopic: message.audienceTopic, payload: message.payload, ...(message.discardedBytes === undefined ? {} : { discardedBytes: message.discardedBytes }) })
      .then((result) => {
        // Handlers stay synchronous here: the gate settles broadcasts and stops in arrival order, so a stop never overtakes its broadcast.
        if (!result.ok) {
          // Logged by the recorder, within the same per-minute budget as the reports: a flood writes a count, not a line per message.
          reports.rejected({ ...result, kind: message.command, topic: message.topic });
          return;
        }
        const { command } = result;
        // Signed by the county: time is at least its issue time from now on.
        clock.observe(command.claims.iat);
        switch (command.kind) {
          case 'ack':
            return delivery?.acknowledge(command.claims.id);
          case 'broadcast':
            logger.info({ jti: command.claims.jti, priority: command.claims.priority, status: command.claims.status }, 'county broadcast accepted by the gate');
            return durable.submit(toPlayRequest(command.claims));
          case 'stop': {
            const target = command.claims.target;
            broadcast?.stopPlayback(target === 'all' ? 'all' : { requestId: target.jti }, `stopped by the county (${command.claims.jti})`);
            return;
          }
        }
      })
      .catch((error: unknown) => logger.error({ err: error, topic: message.topic }, 'county command handler failed'));
  };
  uplink.on('command', onCommand);

  const healthSources: HealthSources = {
    villageId: config.village.id,
    version,
    startedAt,
    pollIntervalMs: config.timing.pollIntervalMs,
    devices: () => hub.health(),
    outbox: () => outbox.stats(),
    problems: () => {
      const problem = storage?.health().problem;
      return problem === null || problem === undefined ? problems : [...problems, `storage: ${problem}`];
    },
    ...(storage === undefined ? {} : { storage: () => storage.health() }),
    clock: () => clock.state(),
    audio: () => broadcast?.audioState() ?? { device: output.device, ok: null, checkedAt: null },
  };
  const health = new HealthReporter({
    sources: healthSources,
    uplink,
    intervalMs: config.timing.healthIntervalMs,
    logger,
    now,
  });

  const status = new StatusServer({
    path: statusSocketPath(config),
    logger: logger.child({ component: 'status' }),
    document: () =>
      buildStatusDocument({
        health: healthSources,
        countyUrl: config.county.url,
        linkConnected: () => uplink.connected,
        activity,
        devices: config.devices,
        dataDir: config.dataDir,
        thermalDir: config.status.thermalDir,
        now,
      }),
  });

  let embeddedBroker: { close(): Promise<void> } | undefined;
  let clockCheck: NodeJS.Timeout | undefined;
  let notifier: SdNotifier | undefined;

  return {
    devices: hub,
    outbox,
    uplink,
    problems,
    async start() {
      for (const problem of problems) logger.error({ problem }, 'configuration problem; the rest of the service runs');
      // Until the system clock is synchronised, look for the flag now and then; relaying never waits for it.
      clock.refresh();
      if (!clock.state().trusted && config.clock.systemClock === 'timesyncd') {
        clockCheck = setInterval(() => {
          if (clock.refresh()) clearInterval(clockCheck);
        }, 5000);
        clockCheck.unref?.();
      }
      // First: every other part reads and writes through them. Neither throws: a bad card runs from memory.
      storage?.start();
      replayStore?.start();
      if (config.county.embeddedBroker) {
        const url = new URL(config.county.url);
        try {
          embeddedBroker = await startEmbeddedBroker({ host: url.hostname, port: Number(url.port || 1883), logger });
        } catch (error) {
          // Whatever listens there (another broker, a stale copy of this service) is not the broker we meant.
          const problem = `county.url: the embedded broker cannot listen on ${url.host} (${errorText(error)}); the link connects to whatever listens there`;
          problems.push(problem);
          logger.error({ problem }, 'embedded broker did not start');
        }
      }
      alarms?.start();
      delivery?.start();
      try {
        uplink.start();
      } catch (error) {
        // A bad TLS file must not take the columns down with it: alarms keep being stored locally.
        problems.push(`county: ${(error as Error).message}`);
        logger.error({ err: error }, 'county link did not start; alarms are stored and wait for it');
      }
      hub.start();
      broadcast?.start();
      // What a kill -9 or a power cut left unfinished: emergencies play again, the rest is reported failed.
      durable.resume();
      if (journalOpenError !== undefined) onJournalFailure(journalOpenError);
      health.start();
      try {
        await status.start();
      } catch (error) {
        // Only the technician's view is lost; the village stays on the air.
        const problem = `status.socket: ${errorText(error)}; \`village-edge status\` cannot reach the service`;
        problems.push(problem);
        logger.error({ problem }, 'status socket did not start');
      }
      // The watchdog vouches for delivery's once-a-second pass (and so the event loop) still turning.
      notifier = createSdNotifier({ env, alive: () => now() - (delivery?.lastPassAt ?? 0) < 5000, logger });
      notifier.ready();
      logger.info({ village: config.village.id, version, devices: hub.devices().length, problems: problems.length }, 'village-edge started');
    },
    async stop() {
      notifier?.stopping();
      clearInterval(clockCheck);
      health.stop();
      await status.stop();
      await broadcast?.stop();
      reports.stop();
      await hub.stop();
      delivery?.stop();
      alarms?.stop();
      await uplink.stop();
      await embeddedBroker?.close();
      outbox.close();
      replay.close();
      journal?.close();
      notifier?.stop();
      logger.info('village-edge stopped');
    },
  };
}
