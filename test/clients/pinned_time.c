/*
 * pinned_time.so, preloaded (LD_PRELOAD) into gpsd by test/models/gpsd.test.ts:
 * time() answers $PINNED_TIME, always. gpsd 3.22 decides with time()
 * when to poll again a port that read 0 bytes (libgpsd_core.c
 * gpsd_multipoll(), docs/case-study-gpsd.md#what-wakes-gpsd); pinned,
 * that decision no longer depends on the wall clock of the run.
 */
#include <stdlib.h>
#include <time.h>

time_t time(time_t *t) {
	static time_t pinned;
	if (!pinned) {
		const char *s = getenv("PINNED_TIME");
		pinned = s ? (time_t)strtoll(s, NULL, 10) : 1;
	}
	if (t) *t = pinned;
	return pinned;
}
