/**
 * An NMEA 0183 GPS receiver's output: once per fix interval, a GGA, a GSA
 * and an RMC sentence for the configured position at the current UTC
 * time, each "$...*hh\r\n" with its checksum (the XOR of the characters
 * between '$' and '*'). Without a fix the sentences say so (GGA quality 0,
 * GSA mode 1, RMC status V), as a receiver that lost the sky does.
 */
import { defineSchema, type Values } from '../../core/index.js';

export interface Fix {
  /** Degrees, north positive. */
  lat: number;
  /** Degrees, east positive. */
  lon: number;
  /** Metres above mean sea level. */
  alt: number;
  /** Knots over ground. */
  speed: number;
  /** Degrees true. */
  course: number;
  satellites: number;
  hdop: number;
  /** false: the receiver reports no fix. */
  valid: boolean;
}

export const DEFAULT_FIX: Fix = { lat: 48.1173, lon: 11.516666667, alt: 545.4, speed: 0, course: 0, satellites: 8, hdop: 0.9, valid: true };

/** An NMEA sentence with its checksum and CR LF. */
export function sentence(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** ddmm.mmmm / dddmm.mmmm and the hemisphere letter. */
function angle(deg: number, degDigits: number, pos: string, neg: string): [string, string] {
  const a = Math.abs(deg);
  let d = Math.floor(a);
  let m = Number(((a - d) * 60).toFixed(4));
  if (m >= 60) {
    d += 1;
    m = 0;
  }
  return [`${String(d).padStart(degDigits, '0')}${m.toFixed(4).padStart(7, '0')}`, deg < 0 ? neg : pos];
}

/** One fix interval's sentences, for `at` (UTC). */
export function nmeaBurst(fix: Fix, at: Date): string {
  const time = `${two(at.getUTCHours())}${two(at.getUTCMinutes())}${two(at.getUTCSeconds())}.${two(Math.floor(at.getUTCMilliseconds() / 10))}`;
  const date = `${two(at.getUTCDate())}${two(at.getUTCMonth() + 1)}${two(at.getUTCFullYear() % 100)}`;
  const [lat, ns] = angle(fix.lat, 2, 'N', 'S');
  const [lon, ew] = angle(fix.lon, 3, 'E', 'W');
  const v = fix.valid;
  const sats = v ? fix.satellites : 0;
  const prns = Array.from({ length: 12 }, (_, i) => (i < sats ? two(i + 1) : ''));
  const pdop = (fix.hdop * 1.4).toFixed(1);
  const vdop = (fix.hdop * 1.1).toFixed(1);
  return [
    sentence(`GPGGA,${time},${v ? lat : ''},${v ? ns : ''},${v ? lon : ''},${v ? ew : ''},${v ? 1 : 0},${two(sats)},${v ? fix.hdop.toFixed(1) : ''},${v ? fix.alt.toFixed(1) : ''},M,0.0,M,,`),
    sentence(`GPGSA,A,${v ? 3 : 1},${prns.join(',')},${v ? pdop : ''},${v ? fix.hdop.toFixed(1) : ''},${v ? vdop : ''}`),
    sentence(`GPRMC,${time},${v ? 'A' : 'V'},${v ? lat : ''},${v ? ns : ''},${v ? lon : ''},${v ? ew : ''},${v ? fix.speed.toFixed(1) : ''},${v ? fix.course.toFixed(1) : ''},${date},,,${v ? 'A' : 'N'}`),
  ].join('');
}

/** The fields of a fix, as the tty option `fix` and the action `fix` take them (absent ones unchanged). */
export const FIX_FIELDS = defineSchema({
  lat: { type: 'number', min: -90, max: 90, description: 'latitude, degrees' },
  lon: { type: 'number', min: -180, max: 180, description: 'longitude, degrees' },
  alt: { type: 'number', min: -1000, max: 100000, description: 'altitude, metres' },
  speed: { type: 'number', min: 0, max: 10000, description: 'speed over ground, knots' },
  course: { type: 'number', min: 0, max: 360, description: 'course over ground, degrees' },
  satellites: { type: 'number', min: 0, max: 12, description: 'satellites in use (rounded)' },
  hdop: { type: 'number', min: 0, max: 99, description: 'horizontal dilution of precision' },
  valid: { type: 'boolean', description: 'whether the receiver has a fix' },
});

/** `base` with the fields a checked option or action argument gives. */
export function fixFrom(base: Fix, o: Partial<Values<typeof FIX_FIELDS>>): Fix {
  const out = { ...base };
  for (const [key, value] of Object.entries(o)) {
    if (value !== undefined) (out as Record<string, number | boolean>)[key] = key === 'satellites' ? Math.round(value as number) : value;
  }
  return out;
}
