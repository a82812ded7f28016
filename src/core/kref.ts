/**
 * struct kref: a count whose release hook runs exactly once, when the last
 * reference drops. An instance holds one for being plugged, one per open
 * file and one per handler in flight, so its state outlives unplug for as
 * long as anything can still reach it (uio_device_release(), "the device may
 * have open FDs at the time of unregister and therefore may not be freed
 * until they are released").
 */
export class Kref {
  private count = 1;

  constructor(private readonly release: () => void) {}

  /** kref_get(): only legal while a reference is held; a get after release is a use-after-free. */
  get(): void {
    if (this.count === 0) throw new Error('kref_get on a released object');
    this.count++;
  }

  /** kref_put(): the put that reaches zero runs the release hook. */
  put(): void {
    if (this.count === 0) throw new Error('kref_put underflow');
    if (--this.count === 0) this.release();
  }
}
