/*
 * Shared helpers of the bench clients: CLOCK_MONOTONIC in ns (the clock
 * Node's process.hrtime.bigint() reads, so stamps compare across
 * processes), and fatal errors that name the errno.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleeps until CLOCK_MONOTONIC reaches `at` (ns); a start barrier across processes. */
static inline void sleep_until(uint64_t at) {
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000000ull), .tv_nsec = (long)(at % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

#define DIE_ERRNO(what) do { \
	fprintf(stderr, "%s: %s (%s)\n", (what), strerrorname_np(errno) ? strerrorname_np(errno) : "?", strerror(errno)); \
	exit(1); \
} while (0)

static inline uint64_t parse_u64(const char *s, const char *what) {
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "bad %s: %s\n", what, s);
		exit(2);
	}
	return (uint64_t)v;
}

#endif
