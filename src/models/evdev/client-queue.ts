/**
 * One evdev client's event queue, as drivers/input/evdev.c keeps it in
 * struct evdev_client: a ring of `bufsize` events of which only those
 * before packet_head, the end of the last complete packet, are readable
 * (evdev_fetch_next_event(), evdev_poll()).
 *
 * - push(): __pass_event(). A SYN_REPORT makes everything queued readable;
 *   a full ring keeps only SYN_DROPPED and the newest event, unreadable
 *   until a SYN_REPORT completes the packet.
 * - flush(type): __evdev_flush_queue(), which EVIOCGKEY/LED/SND/SW run
 *   (evdev_handle_get_val()): the caller just read that type's state, so
 *   its queued events go, and so do SYN_REPORTs left closing nothing.
 * - dropAll(): evdev_set_clk_type() on a clock change: a non-empty queue
 *   becomes one SYN_DROPPED, which packet_head leaves unreadable until the
 *   next SYN_REPORT.
 */
import { EV_SYN, SYN_REPORT } from './codes.js';
import type { InputEvent } from './input.js';

const isReport = (ev: InputEvent): boolean => ev.type === EV_SYN && ev.code === SYN_REPORT;

export class ClientQueue<E extends InputEvent> {
  private events: E[] = [];
  /** packet_head, counted from the tail: how many queued events are readable. */
  private ready = 0;

  constructor(private readonly bufsize: number) {}

  /** Events a read can take now (packet_head != tail). */
  get readable(): number {
    return this.ready;
  }

  /** __pass_event(): `dropped` is the SYN_DROPPED an overflow leaves, stamped as `ev`. */
  push(ev: E, dropped: E): void {
    this.events.push(ev);
    if (this.events.length >= this.bufsize) {
      this.events = [dropped, ev];
      this.ready = 0;
    }
    if (isReport(ev)) this.ready = this.events.length;
  }

  /** evdev_fetch_next_event() up to `max` times: the oldest readable events. */
  take(max: number): E[] {
    const out = this.events.splice(0, Math.min(max, this.ready));
    this.ready -= out.length;
    return out;
  }

  /** __evdev_flush_queue(client, type). */
  flush(type: number): void {
    const kept: E[] = [];
    let ready = 0;
    // Events kept since the last SYN_REPORT; 1 at first "so a leading SYN_REPORT will not be dropped".
    let sinceReport = 1;
    for (const ev of this.events) {
      const report = isReport(ev);
      if (ev.type === type || (report && sinceReport === 0)) continue;
      kept.push(ev);
      sinceReport++;
      if (report) {
        sinceReport = 0;
        ready = kept.length;
      }
    }
    this.events = kept;
    this.ready = ready;
  }

  /** evdev_set_clk_type(): a non-empty queue is replaced by `dropped` (__evdev_queue_syn_dropped()), not yet readable. */
  dropAll(dropped: E): void {
    if (this.events.length === 0) return;
    this.events = [dropped];
    this.ready = 0;
  }
}
