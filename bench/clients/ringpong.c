/*
 * ringpong device PATH N WARMUP MAX_MS
 *     a tcmu-style ring round trip through a mapped device region: write a
 *     64-byte command (sequence number first) into the map at offset 0,
 *     kick with write(fd, 4 bytes), wait for the interrupt with
 *     read(fd, 4 bytes) (uio's protocol), then check the 64-byte answer
 *     the device put at offset 64 of the map (the command with its first
 *     byte complemented).
 * ringpong pipepair N WARMUP MAX_MS
 *     the reference: the same protocol without a mapping, the command and
 *     the answer carried by a pipe pair to a forked child that answers
 *     them. Both processes are pinned to one CPU (the cheapest process to
 *     process round trip: two context switches), as bench/run.ts explains
 *     for its echo ping-pong.
 *
 * WARMUP untimed round trips first. Prints one JSON line:
 * {"ops","start","end","p50_ns","p99_ns","max_ns","capped"}.
 */
#include "common.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64
#define ANSWER_AT 64

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void xfer(int fd, void *buf, size_t len, int out) {
	size_t done = 0;
	while (done < len) {
		ssize_t n = out ? write(fd, (char *)buf + done, len - done) : read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			if (n == 0) errno = EPIPE;
			DIE_ERRNO(out ? "write" : "read");
		}
		done += (size_t)n;
	}
}

static void answer(const unsigned char *cmd, unsigned char *ans) {
	memcpy(ans, cmd, MSG);
	ans[0] = (unsigned char)~cmd[0];
}

static void pin_first_cpu(void) {
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set)) DIE_ERRNO("sched_getaffinity");
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			CPU_ZERO(&set);
			CPU_SET(c, &set);
			if (sched_setaffinity(0, sizeof set, &set)) DIE_ERRNO("sched_setaffinity");
			return;
		}
	}
}

struct link {
	int device;
	int fd;                  /* device: the node; pipepair: to the child */
	int from;                /* pipepair: from the child */
	volatile unsigned char *map;
};

/* One round trip with sequence number `seq`; returns 0 if the answer is wrong. */
static int round_trip(struct link *l, uint64_t seq) {
	unsigned char cmd[MSG], ans[MSG];
	memset(cmd, 'c', sizeof cmd);
	memcpy(cmd, &seq, sizeof seq);
	if (l->device) {
		for (int i = 0; i < MSG; i++) l->map[i] = cmd[i];
		__sync_synchronize();
		int32_t kick = 1, irq;
		xfer(l->fd, &kick, 4, 1);
		xfer(l->fd, &irq, 4, 0);
		__sync_synchronize();
		for (int i = 0; i < MSG; i++) ans[i] = l->map[ANSWER_AT + i];
	} else {
		xfer(l->fd, cmd, MSG, 1);
		xfer(l->from, ans, MSG, 0);
	}
	unsigned char want[MSG];
	answer(cmd, want);
	return memcmp(ans, want, MSG) == 0;
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	int device = strcmp(mode, "device") == 0;
	int first = device ? 3 : 2;
	if (argc != first + 3 || (!device && strcmp(mode, "pipepair"))) {
		fprintf(stderr, "usage: ringpong device PATH N WARMUP MAX_MS | ringpong pipepair N WARMUP MAX_MS\n");
		return 2;
	}
	uint64_t n = parse_u64(argv[first], "n");
	uint64_t warmup = parse_u64(argv[first + 1], "warmup");
	uint64_t max_ns = parse_u64(argv[first + 2], "max_ms") * 1000000ull;
	if (n == 0) return 2;

	struct link l = { .device = device };
	pid_t child = -1;
	if (device) {
		l.fd = open(argv[2], O_RDWR);
		if (l.fd < 0) DIE_ERRNO("open");
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, l.fd, 0);
		if (p == MAP_FAILED) DIE_ERRNO("mmap");
		l.map = p;
	} else {
		int to[2], from[2];
		if (pipe(to) || pipe(from)) DIE_ERRNO("pipe");
		pin_first_cpu(); /* inherited by the child */
		child = fork();
		if (child < 0) DIE_ERRNO("fork");
		if (child == 0) {
			close(to[1]);
			close(from[0]);
			unsigned char cmd[MSG], ans[MSG];
			for (;;) {
				ssize_t r = read(to[0], cmd, MSG); /* a pipe delivers 64 bytes whole */
				if (r <= 0) _exit(0);
				answer(cmd, ans);
				xfer(from[1], ans, MSG, 1);
			}
		}
		close(to[0]);
		close(from[1]);
		l.fd = to[1];
		l.from = from[0];
	}

	uint32_t *lat = malloc(n * sizeof *lat);
	if (!lat) DIE_ERRNO("malloc");
	for (uint64_t i = 0; i < warmup; i++) {
		if (!round_trip(&l, i)) { fprintf(stderr, "wrong answer in warmup\n"); return 1; }
	}
	uint64_t start = now_ns(), ops = 0;
	int capped = 0;
	while (ops < n) {
		uint64_t t = now_ns();
		if (!round_trip(&l, warmup + ops)) { fprintf(stderr, "wrong answer at round trip %llu\n", (unsigned long long)ops); return 1; }
		uint64_t d = now_ns() - t;
		lat[ops++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		if ((ops & 63) == 0 && now_ns() - start > max_ns) {
			capped = 1;
			break;
		}
	}
	uint64_t end = now_ns();
	if (child > 0) {
		close(l.fd);
		int st;
		waitpid(child, &st, 0);
	}
	qsort(lat, ops, sizeof *lat, cmp_u32);
	uint64_t i50 = (ops * 50 + 99) / 100, i99 = (ops * 99 + 99) / 100;
	printf("{\"ops\":%llu,\"start\":%llu,\"end\":%llu,\"p50_ns\":%u,\"p99_ns\":%u,\"max_ns\":%u,\"capped\":%s}\n",
	       (unsigned long long)ops, (unsigned long long)start, (unsigned long long)end,
	       lat[i50 ? i50 - 1 : 0], lat[i99 ? i99 - 1 : 0], lat[ops - 1], capped ? "true" : "false");
	return 0;
}
