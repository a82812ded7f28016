/** Plain-text output of the CLI: tables and durations. */
import type { DeviceView } from '../src/control/protocol.js';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function holdersCell(d: DeviceView): string {
  return d.holders.map((h) => `${h.pid}(${h.comm || '?'})`).join(',') || '-';
}

export function inFlightCell(d: DeviceView): string {
  if (d.inFlight.length === 0) return '0';
  const ops = d.inFlight.map((f) => (f.stuck ? `${f.op}!` : f.op));
  return `${d.inFlight.length} (${ops.join(',')})`;
}

/** Regions and the mappings programs hold on them: `map0,map1(revoked) x2`, or '-'. */
export function regionsCell(d: DeviceView): string {
  if (d.regions.length === 0) return '-';
  const names = d.regions.map((r) => (r.state === 'live' ? r.name : `${r.name}(${r.state})`)).join(',');
  return `${names} x${d.mappings}`;
}

export function devicesTable(devices: DeviceView[]): string {
  return table(
    ['NAME', 'MODEL', 'GEN', 'STATE', 'OPEN', 'HOLDERS', 'MAPPED', 'IN-FLIGHT'],
    devices.map((d) => [d.name, d.model, String(d.generation), d.state, String(d.openFiles), holdersCell(d), regionsCell(d), inFlightCell(d)]),
  );
}
