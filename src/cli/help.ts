/**
 * What `village-edge <command> --help` prints: every flag, its default and what it means, in the words a
 * county technician or dispatcher uses. The flags are parsed in main.ts; test/integration/cli.test.ts runs
 * every --help and checks it names each flag in its list there, so add a new flag to all three.
 */

const broker = `broker:
  --broker URL        county broker (default mqtt://127.0.0.1:1883; mqtts://, ws://, wss:// also work)
  --prefix P          topic prefix, county.topicPrefix of the villages (default village-edge)
  --protocol 4|5      MQTT 3.1.1 (4, default) or MQTT 5
  --username U, --password P   broker login (default: none)`;

export const topUsage = `usage: village-edge COMMAND [flags]     (village-edge COMMAND --help for each command's flags)

village:
  run --config FILE          run the service for one village
  check-config FILE          validate a config (and the device profiles it names); exit 1 on errors
  migrate-config FILE        rewrite an older config at this build's version, keeping a backup
  status [--config FILE | --socket PATH] [--json]
                             ask the running service how it is (default config /etc/village-edge/config.json)
  log [--since DATE] [--until DATE] [--json] [--config FILE]
                             every programme firing and its outcome, and each day's totals
  user add NAME --role official|installer [--config FILE]
                             make an account for the office console (asks for the password); also passwd, remove, list
  --version                  print the version

county tools:
  keygen --kid KID [--out DIR]                  make the county's Ed25519 signing key pair
  announce --key FILE (--village ID | --all) …  sign and send an emergency or announcement, wait for the villages' reports
  announce --key FILE (--village ID | --all) --stop (JTI | all)   end a broadcast
  county watch [--key FILE --ack] [--json]      print (and acknowledge) what villages report
  schedule --key FILE (--village ID | --all) --file F   check, sign and publish (retained) a programme schedule
  schedule --show --village ID [--public-key FILE]      print the schedule a village runs
  county time --key FILE [--every SECONDS]      publish (retained) the county's time, for villages without NTP

exit codes: 0 done, 1 failed (or a village rejected or failed), 2 wrong usage, 3 no answer in time (announce)`;

export const commandHelp: Record<string, string> = {
  run: `usage: village-edge run --config FILE [--pretty]

Runs the service for one village (systemd runs this). Logs are JSON lines on stdout.
  --config FILE       the village's config (JSON; see config/village.example.json). Required.
  --pretty            logs as coloured lines for a person at the console, not JSON (also: LOG_FORMAT=pretty)
  -h, --help          this text`,

  'check-config': `usage: village-edge check-config FILE

Validates a village config and the device profiles it names; prints every error, each naming its field.
Exit 0 when the service would start, 1 on errors (broken profiles no device uses are warnings).
  -h, --help          this text`,

  'migrate-config': `usage: village-edge migrate-config FILE

Rewrites a config written for an older version of village-edge at this build's config version (the
package's postinst runs it on every upgrade). The old file is kept beside it as FILE.v<old version>.bak, with
the same owner and mode. A file already at this version, or one that cannot be read, is left as it is.
Exit 0 when the file is at this build's version afterwards, 1 when it could not be migrated.
  -h, --help          this text`,

  user: `usage: village-edge user add NAME --role official|installer [--config FILE]
       village-edge user passwd NAME [--role official|installer] [--config FILE]
       village-edge user remove NAME [--config FILE]
       village-edge user list [--config FILE]

Accounts of the village office console (console.usersFile in the config, owner-only, scrypt hashes). There is
no default account. The password is asked for twice without echo; from a pipe, the first line is taken.
\`official\` may announce, stop and see; \`installer\` may also see device diagnostics and make test alarms and
loudspeaker tests. The running service reads the file at each login: no restart is needed.
  --role ROLE         official or installer (required by add; passwd may change it)
  --config FILE       the village's config, to find the accounts file (default /etc/village-edge/config.json)
  -h, --help          this text
Exit 0 when done, 1 when refused (exists already, no such user, passwords differ or too short), 2 on wrong usage.`,

  status: `usage: village-edge status [--config FILE | --socket PATH] [--json]

Asks the running service, over its local socket, what a technician asks first: the county link, every device,
the outbox, the sound output, the clock, storage and free space, memory and CPU temperature.
  --config FILE       the village's config, to find the socket (default /etc/village-edge/config.json)
  --socket PATH       the socket itself (status.socket in the config)
  --json              the whole status document as JSON instead of the summary
  -h, --help          this text
Exit 0 when the service answered, 1 when it is not running or did not answer, 2 on wrong usage.`,

  log: `usage: village-edge log [--since DATE] [--until DATE] [--json] [--config FILE]

Prints the programme completion log the service keeps: one line per firing (its slot in the schedule's local
time, the programme, what became of it — finished, preempted, stopped, failed, missed, skipped, withheld, or
still playing — and why), then each day's totals. Reads the log read-only; the service may be running.
  --since DATE        first day, YYYY-MM-DD in the schedule's time zone (default today)
  --until DATE        last day, inclusive (default today)
  --json              one JSON object a line: {"type":"firing",…} per firing, then {"type":"day",…} per day
  --config FILE       the village's config, to find its data directory (default /etc/village-edge/config.json)
  -h, --help          this text
Exit 0 when the log was printed (or nothing is recorded yet), 1 when it cannot be read, 2 on wrong usage.`,

  keygen: `usage: village-edge keygen --kid KID [--out DIR]

Makes the county's Ed25519 key pair: KID.private.jwk.json (mode 0600, keep it at the county, never in a
repository) and KID.public.jwk.json, and prints the {kid, x} entry to add to every village's
county.commandKeys. Never overwrites a key file.
  --kid KID           key id, e.g. county-2026 (letters, digits, _ . -; at most 64). Required.
  --out DIR           folder to write to (made if missing, mode 0700). Default: $XDG_CONFIG_HOME/village-edge/keys
                      (~/.config/village-edge/keys without XDG_CONFIG_HOME) — never the current folder,
                      and refused if that default lies inside a git checkout
  -h, --help          this text`,

  announce: `usage: village-edge announce --key FILE (--village ID | --all) (--emergency LEVEL | --announcement)
                             (--text TEXT | --media FILE --sha256 HEX) [flags]
       village-edge announce --key FILE (--village ID | --all) --stop (JTI | all) [flags]

Signs a broadcast (or stop) with the county key and publishes it, then waits for each village's reports:
accepted or rejected, then started, tested or failed, and prints them.
  --key FILE          the county's private key (from keygen; must be mode 0600). Required.
  --village ID        one village, by its village.id
  --all               every village (one message on {prefix}/all/cmd/…): a table per village after --timeout
  --emergency LEVEL   an emergency, preempting everything: 1 特别重大, 2 重大, 3 较大, 4 一般
  --announcement      an ordinary announcement (waits behind emergencies and local alarms)
  --status S          actual (default): plays; exercise: a drill, plays and says so in every report;
                      test: checked and reported (tested) but no relay, amplifier or loudspeaker is touched
  --zones Z           all (default), or zone ids separated by commas, e.g. square,school
  --text TEXT         spoken by the village's text-to-speech (at most 2,000 characters)
  --media FILE        a media file already on the village (under its media folder) …
  --sha256 HEX        … and its sha256, checked before it plays
  --chime             play the chime first (default: no)
  --repeat N          play N times, 1 to 10 (default 1)
  --expires SECONDS   the command expires this long after now, 1 to 86400 (default 900); expired, it never plays
  --stop JTI|all      end one broadcast by its jti (printed when it was sent), or everything playing and queued
  --no-wait           publish and exit without waiting for reports
  --timeout SECONDS   how long to wait for the reports, 1 to 3600 (default 30; with --all the table comes then,
                      or earlier once every village that is online has answered)
${broker}
  -h, --help          this text

Exit 0 when every village accepted and started (or tested, or queued it); 1 when one rejected or failed it
(or it could not be sent); 2 on wrong usage; 3 when a village addressed gave no answer within --timeout.
A stop is reported against the broadcast it ends (stopped), so --stop publishes and does not wait.`,

  'county watch': `usage: village-edge county watch [--key FILE --ack] [--json] [broker flags]

Prints what every village sends — alarms, faults, reports, online/offline — one readable line each, and
with --ack acknowledges each alarm, fault and report with a signed ack, as a dispatch desk does. Reconnects
by itself when the broker goes away. Runs until Ctrl-C.
  --key FILE          the county's private key, to sign acks (mode 0600)
  --ack               acknowledge (default: only watch). Needs --key. Acks a village rejects are shown
                      (ACK REJECTED); a report of a rejected ack is acked once, never answered again
  --json              one JSON object a line ({at, village, kind, payload}) instead of readable lines
${broker}
  -h, --help          this text`,

  schedule: `usage: village-edge schedule --key FILE (--village ID | --all) --file FILE [broker flags]
       village-edge schedule --show --village ID [--public-key FILE] [broker flags]

Checks a programme schedule document (JSON: version, timezone, quietHours, programmes; see the county
contract), signs it with the county key and publishes it retained on {prefix}/ID/cmd/schedule or, with --all,
{prefix}/all/cmd/schedule: a village runs its own if it has one, else the one for all villages, and takes a
new document only with a higher version. A problem in the document is one line naming its field, exit 2.
  --key FILE          the county's private key (from keygen; must be mode 0600)
  --village ID        one village, by its village.id
  --all               every village that has no schedule of its own
  --file FILE         the schedule document
  --show              print the schedule the village of --village runs: version, topic, signer, time zone, quiet
                      hours and one line per programme (id, cron, zones, content)
  --public-key FILE   with --show: check the signature with this public key (keygen's KID.public.jwk.json)
${broker}
  -h, --help          this text
Exit 0 when published (or shown); 1 when it could not be (or no schedule is retained); 2 on wrong usage.`,

  'county time': `usage: village-edge county time --key FILE [--every SECONDS] [broker flags]

Signs the county's time and publishes it retained on {prefix}/all/cmd/time: a village without NTP takes its
iat as the earliest the time can be, and never sets its clock back. Each message expires 120 s after it was
signed, so a village that connects later refuses a stale one: run it with --every (as a service) to keep it fresh.
  --key FILE          the county's private key (from keygen; must be mode 0600). Required.
  --every SECONDS     publish again every SECONDS, 1 to 60, until stopped (Ctrl-C, SIGTERM); default: once
${broker}
  -h, --help          this text`,
};

/** `COMMAND --help`: its text on stdout, exit 0. */
export function printHelp(command: string): number {
  console.log(commandHelp[command]);
  return 0;
}
