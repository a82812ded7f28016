/*
 * pingpong device PATH N WARMUP MAX_MS
 *     write 64 bytes to PATH (an echo device, opened O_RDWR) and read the
 *     64 bytes back, N times.
 * pingpong pipepair same|split N WARMUP MAX_MS
 *     the reference: the same 64-byte round trip through two pipes to a
 *     forked child that echoes them back, so each round trip crosses to
 *     another process and back, as a request to a userspace device server
 *     must. Both processes are pinned: `same` puts them on one CPU (a
 *     round trip is two context switches), `split` on two CPUs (each
 *     message also wakes the other CPU, which costs far more in a VM).
 *     Unpinned, the scheduler picks either at random and the figure is
 *     bimodal.
 * pingpong selfpipe N WARMUP MAX_MS
 *     a second reference: write 64 bytes into one pipe and read them back in
 *     the same process, which is what the round trip costs when the "echo"
 *     is a kernel object (no context switch at all).
 *
 * WARMUP untimed round trips come first. Prints one JSON line:
 * {"ops","start","end","p50_ns","p99_ns","max_ns","capped"}.
 */
#include "common.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void write_all(int fd, const char *buf, size_t len) {
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR) continue;
			DIE_ERRNO("write");
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Returns 0 on EOF before any byte. */
static int read_all(int fd, char *buf, size_t len) {
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR) continue;
			DIE_ERRNO("read");
		}
		if (n == 0) {
			if (got == 0) return 0;
			fprintf(stderr, "short read: EOF after %zu bytes\n", got);
			exit(1);
		}
		got += (size_t)n;
	}
	return 1;
}

/* The n-th CPU (0-based) of this process's affinity mask, or -1. */
static int nth_cpu(int n) {
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set)) return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && n-- == 0) return c;
	return -1;
}

static void pin(int cpu) {
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set)) DIE_ERRNO("sched_setaffinity");
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	int device = strcmp(mode, "device") == 0, pair = strcmp(mode, "pipepair") == 0;
	int first = device || pair ? 3 : 2;
	if (argc != first + 3 || (!device && !pair && strcmp(mode, "selfpipe")) ||
	    (pair && strcmp(argv[2], "same") && strcmp(argv[2], "split"))) {
		fprintf(stderr, "usage: pingpong device PATH N WARMUP MAX_MS | pingpong pipepair same|split N WARMUP MAX_MS"
		                " | pingpong selfpipe N WARMUP MAX_MS\n");
		return 2;
	}
	int cpu_parent = -1, cpu_child = -1;
	if (pair) {
		cpu_parent = nth_cpu(0);
		cpu_child = strcmp(argv[2], "split") == 0 ? nth_cpu(1) : cpu_parent;
		if (cpu_parent < 0 || cpu_child < 0) {
			fprintf(stderr, "not enough CPUs for pipepair %s\n", argv[2]);
			return 1;
		}
	}
	uint64_t n = parse_u64(argv[first], "n");
	uint64_t warmup = parse_u64(argv[first + 1], "warmup");
	uint64_t max_ns = parse_u64(argv[first + 2], "max_ms") * 1000000ull;
	if (n == 0) return 2;

	int wfd, rfd;
	pid_t child = -1;
	if (device) {
		wfd = rfd = open(argv[2], O_RDWR);
		if (wfd < 0) DIE_ERRNO("open");
	} else if (strcmp(mode, "selfpipe") == 0) {
		int p[2];
		if (pipe(p)) DIE_ERRNO("pipe");
		rfd = p[0];
		wfd = p[1];
	} else {
		int to[2], from[2];
		if (pipe(to) || pipe(from)) DIE_ERRNO("pipe");
		child = fork();
		if (child < 0) DIE_ERRNO("fork");
		if (child == 0) {
			pin(cpu_child);
			close(to[1]);
			close(from[0]);
			char b[MSG];
			while (read_all(to[0], b, MSG)) write_all(from[1], b, MSG);
			_exit(0);
		}
		pin(cpu_parent);
		close(to[0]);
		close(from[1]);
		wfd = to[1];
		rfd = from[0];
	}

	uint32_t *lat = malloc(n * sizeof *lat);
	if (!lat) DIE_ERRNO("malloc");
	char out[MSG], in[MSG];
	memset(out, 'p', sizeof out);
	for (uint64_t i = 0; i < warmup; i++) {
		write_all(wfd, out, MSG);
		if (!read_all(rfd, in, MSG)) { fprintf(stderr, "EOF\n"); return 1; }
	}

	uint64_t start = now_ns(), ops = 0;
	int capped = 0;
	while (ops < n) {
		uint64_t t = now_ns();
		write_all(wfd, out, MSG);
		if (!read_all(rfd, in, MSG)) { fprintf(stderr, "EOF\n"); return 1; }
		uint64_t d = now_ns() - t;
		lat[ops++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		if (memcmp(in, out, MSG)) { fprintf(stderr, "echo returned different bytes\n"); return 1; }
		if ((ops & 63) == 0 && now_ns() - start > max_ns) {
			capped = 1;
			break;
		}
	}
	uint64_t end = now_ns();

	if (child > 0) {
		close(wfd); /* the child sees EOF and exits */
		int st;
		waitpid(child, &st, 0);
	}
	qsort(lat, ops, sizeof *lat, cmp_u32);
	/* nearest-rank percentiles */
	uint64_t i50 = (ops * 50 + 99) / 100, i99 = (ops * 99 + 99) / 100;
	printf("{\"ops\":%llu,\"start\":%llu,\"end\":%llu,\"p50_ns\":%u,\"p99_ns\":%u,\"max_ns\":%u,\"capped\":%s,"
	       "\"cpus\":[%d,%d]}\n",
	       (unsigned long long)ops, (unsigned long long)start, (unsigned long long)end,
	       lat[i50 ? i50 - 1 : 0], lat[i99 ? i99 - 1 : 0], lat[ops - 1], capped ? "true" : "false",
	       cpu_parent, cpu_child);
	return 0;
}
