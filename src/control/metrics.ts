/**
 * GET /metrics: the daemon's counters in the Prometheus text exposition
 * format (version 0.0.4): one HELP and one TYPE line per family, then one
 * sample per device instance, labelled device, model and generation, so a
 * zombie (an unplugged generation still held open) is its own series.
 */
import type { Instance } from '../core/index.js';
import type { StreamStats } from './event-stream.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface DaemonMetrics {
  devices: ReadonlyArray<Instance<unknown>>;
  uptimeSeconds: number;
  version: string;
  /** The event streams (GET /v1/events); none open when absent. */
  streams?: StreamStats;
}

type Kind = 'counter' | 'gauge';

/** Per-instance families: name, type, help, value. */
const DEVICE_FAMILIES: ReadonlyArray<[string, Kind, string, (i: Instance<unknown>) => number]> = [
  ['cdevemu_device_opens_total', 'counter', 'Files opened on the device.', (i) => i.counters.opens],
  ['cdevemu_device_releases_total', 'counter', 'Files closed while the device was plugged (release).', (i) => i.counters.releases],
  [
    'cdevemu_device_late_releases_total',
    'counter',
    'Files closed after the device was unplugged (lateRelease).',
    (i) => i.counters.lateReleases,
  ],
  ['cdevemu_device_errors_total', 'counter', 'Requests answered with an errno.', (i) => i.counters.errors],
  ['cdevemu_device_reads_total', 'counter', 'read calls.', (i) => i.counters.reads],
  ['cdevemu_device_writes_total', 'counter', 'write calls.', (i) => i.counters.writes],
  ['cdevemu_device_ioctls_total', 'counter', 'ioctl calls.', (i) => i.counters.ioctls],
  ['cdevemu_device_polls_total', 'counter', 'poll calls.', (i) => i.counters.polls],
  ['cdevemu_device_bytes_read_total', 'counter', 'Bytes returned by reads.', (i) => i.counters.bytesRead],
  ['cdevemu_device_bytes_written_total', 'counter', 'Bytes accepted by writes.', (i) => i.counters.bytesWritten],
  ['cdevemu_device_faults_fired_total', 'counter', 'Calls a fault rule acted on.', (i) => i.counters.faults],
  ['cdevemu_device_in_flight', 'gauge', 'Model handlers running now.', (i) => i.counters.inFlight],
  ['cdevemu_device_stuck', 'gauge', 'Handlers running now that unplug gave up on.', (i) => i.counters.stuck],
  ['cdevemu_device_open_files', 'gauge', 'Files open now.', (i) => i.holders.length],
  ['cdevemu_device_live', 'gauge', '1 while the generation is plugged, 0 once unplug began.', (i) => (i.lifecycle === 'live' ? 1 : 0)],
];

/** A label value with backslash, double quote and newline escaped, as the format requires. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const labels = (pairs: Record<string, string | number>): string =>
  '{' +
  Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`)
    .join(',') +
  '}';

function family(out: string[], name: string, kind: Kind, help: string, samples: Array<[string, number]>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
  for (const [l, v] of samples) out.push(`${name}${l} ${v}`);
}

export function metricsText(m: DaemonMetrics): string {
  const out: string[] = [];
  family(out, 'cdevemu_info', 'gauge', 'Always 1; the version is a label.', [[labels({ version: m.version }), 1]]);
  family(out, 'cdevemu_uptime_seconds', 'gauge', 'Seconds since the daemon started.', [['', m.uptimeSeconds]]);
  family(out, 'cdevemu_devices', 'gauge', 'Device instances not yet freed, zombies included.', [['', m.devices.length]]);
  const live = m.devices.filter((i) => i.lifecycle === 'live').length;
  family(out, 'cdevemu_devices_live', 'gauge', 'Device instances plugged now.', [['', live]]);
  const streams = m.streams ?? { subscribers: 0, dropped: 0, queuedBytes: 0 };
  family(out, 'cdevemu_event_subscribers', 'gauge', 'Event streams open, dropped ones still draining included.', [['', streams.subscribers]]);
  family(out, 'cdevemu_event_subscribers_dropped_total', 'counter', 'Event stream subscribers dropped for falling behind.', [['', streams.dropped]]);
  family(out, 'cdevemu_event_queued_bytes', 'gauge', 'Bytes the event streams hold unsent.', [['', streams.queuedBytes]]);
  for (const [name, kind, help, value] of DEVICE_FAMILIES) {
    const samples = m.devices.map((i): [string, number] => [
      labels({ device: i.name, model: i.model, generation: i.generation }),
      value(i),
    ]);
    family(out, name, kind, help, samples);
  }
  return out.join('\n') + '\n';
}
