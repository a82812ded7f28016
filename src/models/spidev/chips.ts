/**
 * The chips a spidev node can have at its chip select, simulated a clock
 * at a time: each clock shifts one bit out on MOSI and samples one on
 * MISO, as on the wire (docs/models.md#spidev).
 *
 * - loopback: MISO wired to MOSI; it answers every bit with the bit sent.
 * - mcp3008: an MCP3008-style 8-channel 10-bit ADC. A falling CS starts a
 *   conversion cycle; leading zeros are ignored; the first 1 on MOSI is
 *   the start bit, then SGL/DIFF and D2..D0 (the channel, or the channel
 *   pair for differential); one clock samples; then a null bit and the
 *   result B9..B0 MSB first, B1..B9 LSB first, then zeros. MISO is high
 *   impedance (read as 0) until the null bit and while CS is high.
 */

export type ChipKind = 'loopback' | 'mcp3008';
export const CHIP_KINDS: readonly ChipKind[] = ['loopback', 'mcp3008'];

export interface Chip {
  readonly kind: ChipKind;
  /** CS asserted: a falling edge for an active-low chip. */
  select(): void;
  /** CS released. */
  deselect(): void;
  /** One clock: the bit the master drives on MOSI in, the bit the chip drives on MISO out. */
  clock(mosi: number): number;
  /** `n` clocks with MOSI low whose MISO nobody reads (a transfer without buffers): as many clock(0), faster. */
  clockZeros(n: number): void;
}

export class Loopback implements Chip {
  readonly kind = 'loopback';
  select(): void {}
  deselect(): void {}
  clock(mosi: number): number {
    return mosi;
  }
  clockZeros(): void {}
}

export const ADC_CHANNELS = 8;
export const ADC_MAX = 1023;

type AdcPhase = 'deselected' | 'start' | 'config' | 'sample' | 'null' | 'msb' | 'lsb' | 'zeros';

/** The last conversion: what the master asked for and got. */
export interface Conversion {
  single: boolean;
  /** D2..D0: the channel (single-ended) or the pair selector (differential). */
  select: number;
  value: number;
}

/** After this many clocks with MOSI low every conversion cycle has ended, and more change nothing. */
const CYCLE_CLOCKS = 26;

export class Mcp3008 implements Chip {
  readonly kind = 'mcp3008';
  conversions = 0;
  last: Conversion | null = null;
  private phase: AdcPhase = 'deselected';
  private config = 0;
  private configBits = 0;
  private result = 0;
  private bit = 0;

  constructor(readonly channels: number[]) {}

  select(): void {
    this.phase = 'start';
  }

  deselect(): void {
    this.phase = 'deselected';
  }

  clock(mosi: number): number {
    switch (this.phase) {
      case 'deselected':
      case 'zeros':
        return 0;
      case 'start':
        if (mosi) {
          this.phase = 'config';
          this.config = 0;
          this.configBits = 0;
        }
        return 0;
      case 'config':
        this.config = (this.config << 1) | mosi;
        if (++this.configBits === 4) this.phase = 'sample';
        return 0;
      case 'sample':
        // The sample ends on this clock's falling edge: the input is converted as it is now.
        this.result = this.convert();
        this.phase = 'null';
        return 0;
      case 'null':
        this.phase = 'msb';
        this.bit = 9;
        return 0;
      case 'msb': {
        const out = (this.result >> this.bit) & 1;
        if (this.bit-- === 0) {
          this.phase = 'lsb';
          this.bit = 1;
        }
        return out;
      }
      case 'lsb': {
        const out = (this.result >> this.bit) & 1;
        if (this.bit++ === 9) this.phase = 'zeros';
        return out;
      }
    }
  }

  clockZeros(n: number): void {
    for (let i = 0; i < Math.min(n, CYCLE_CLOCKS); i++) this.clock(0);
  }

  /**
   * Single-ended: the channel's code. Pseudo-differential: IN+ minus IN-
   * of the pair D2 D1 selects (D0 = 0: the even channel is IN+), 0 when
   * IN- is higher, as the datasheet's table of configuration bits says.
   */
  private convert(): number {
    const single = (this.config & 0b1000) !== 0;
    const select = this.config & 0b111;
    let value: number;
    if (single) {
      value = this.channels[select]!;
    } else {
      const even = this.channels[select & 0b110]!;
      const odd = this.channels[select | 0b001]!;
      value = Math.max(0, select & 1 ? odd - even : even - odd);
    }
    this.conversions++;
    this.last = { single, select, value };
    return value;
  }
}

/** The ADC's channel codes, as an option or an action takes them: 8 integers 0..1023 (10-bit codes). */
export const ADC_CODE = { type: 'integer', min: 0, max: ADC_MAX, description: 'a 10-bit code' } as const;
export const ADC_CHANNELS_FIELD = { type: 'array', items: ADC_CODE, minItems: ADC_CHANNELS, maxItems: ADC_CHANNELS } as const;

export function makeChip(kind: ChipKind, channels: number[]): Chip {
  return kind === 'mcp3008' ? new Mcp3008(channels) : new Loopback();
}
