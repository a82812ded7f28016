/*
 * blockers device PATH N
 *     N threads each open PATH and block in read(). When every thread is
 *     inside read() (checked in /proc/self/task/TID/syscall) it prints
 *     "ready"; the bench then unplugs the device. Each thread records
 *     CLOCK_MONOTONIC when its read returns, and the errno it got.
 * blockers pipe N
 *     the reference: N threads block in read() on one pipe; once all are
 *     inside read() the main thread stamps t0 and closes the write end,
 *     which wakes them all with EOF.
 *
 * Prints one JSON line: {"n","t0","first","last","eof","data","errnos":{NAME:count}}
 * (t0 is 0 in device mode: the bench stamps it). Exits by itself after
 * 120 s (SIGALRM) so a failed run never leaves blocked readers behind.
 */
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct reader {
	pthread_t thread;
	atomic_int tid;
	int fd;
	ssize_t result;
	int err;
	uint64_t woke;
};

static const char *path; /* NULL: pipe mode */
static int pipe_rd = -1;
static atomic_int opened, failed;

static void *reader_main(void *arg) {
	struct reader *r = arg;
	if (path) {
		r->fd = open(path, O_RDONLY);
		if (r->fd < 0) {
			r->err = errno;
			r->result = -2;
			atomic_fetch_add(&failed, 1);
			return NULL;
		}
	} else {
		r->fd = pipe_rd;
	}
	atomic_store(&r->tid, (int)gettid());
	atomic_fetch_add(&opened, 1);
	char buf[64];
	ssize_t n;
	do {
		n = read(r->fd, buf, sizeof buf);
	} while (n < 0 && errno == EINTR);
	r->woke = now_ns();
	r->result = n;
	r->err = n < 0 ? errno : 0;
	return NULL;
}

/* True when thread `tid` is blocked inside read(2). */
static int in_read(int tid) {
	char p[64], line[256];
	snprintf(p, sizeof p, "/proc/self/task/%d/syscall", tid);
	FILE *f = fopen(p, "r");
	if (!f) return 0;
	int ok = fgets(line, sizeof line, f) && strncmp(line, "running", 7) != 0 && atol(line) == SYS_read;
	fclose(f);
	return ok;
}

static void raise_limit(int res, rlim_t want) {
	struct rlimit rl;
	if (getrlimit(res, &rl)) return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
		setrlimit(res, &rl);
	}
}

int main(int argc, char **argv) {
	int device = argc == 4 && strcmp(argv[1], "device") == 0;
	if (!device && !(argc == 3 && strcmp(argv[1], "pipe") == 0)) {
		fprintf(stderr, "usage: blockers device PATH N | blockers pipe N\n");
		return 2;
	}
	alarm(120);
	path = device ? argv[2] : NULL;
	int n = (int)parse_u64(argv[device ? 3 : 2], "n");
	if (n < 1) return 2;
	raise_limit(RLIMIT_NPROC, (rlim_t)n + 256);
	raise_limit(RLIMIT_NOFILE, (rlim_t)n + 256);
	int pipe_wr = -1;
	if (!device) {
		int p[2];
		if (pipe(p)) DIE_ERRNO("pipe");
		pipe_rd = p[0];
		pipe_wr = p[1];
	}

	struct reader *rs = calloc((size_t)n, sizeof *rs);
	if (!rs) DIE_ERRNO("calloc");
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < n; i++) {
		int e = pthread_create(&rs[i].thread, &attr, reader_main, &rs[i]);
		if (e) {
			errno = e;
			DIE_ERRNO("pthread_create");
		}
	}

	/* Wait until every thread has opened and is inside read(). */
	uint64_t deadline = now_ns() + 60ull * 1000000000ull;
	for (;;) {
		if (atomic_load(&failed)) {
			for (int i = 0; i < n; i++)
				if (rs[i].result == -2) {
					errno = rs[i].err;
					DIE_ERRNO("open");
				}
		}
		int blocked = 0;
		if (atomic_load(&opened) == n)
			for (int i = 0; i < n && in_read(atomic_load(&rs[i].tid)); i++) blocked++;
		if (blocked == n) break;
		if (now_ns() > deadline) {
			fprintf(stderr, "only %d of %d readers blocked in read() after 60 s\n", blocked, n);
			return 1;
		}
		usleep(1000);
	}

	uint64_t t0 = 0;
	if (device) {
		printf("ready\n");
		fflush(stdout);
	} else {
		t0 = now_ns();
		close(pipe_wr);
	}
	for (int i = 0; i < n; i++) pthread_join(rs[i].thread, NULL);

	uint64_t first = UINT64_MAX, last = 0;
	int eof = 0, data = 0;
	static int counts[4096];
	for (int i = 0; i < n; i++) {
		if (rs[i].woke < first) first = rs[i].woke;
		if (rs[i].woke > last) last = rs[i].woke;
		if (rs[i].result == 0) eof++;
		else if (rs[i].result > 0) data++;
		else if (rs[i].err > 0 && rs[i].err < 4096) counts[rs[i].err]++;
	}
	printf("{\"n\":%d,\"t0\":%llu,\"first\":%llu,\"last\":%llu,\"eof\":%d,\"data\":%d,\"errnos\":{", n,
	       (unsigned long long)t0, (unsigned long long)first, (unsigned long long)last, eof, data);
	const char *sep = "";
	for (int e = 1; e < 4096; e++)
		if (counts[e]) {
			const char *name = strerrorname_np(e);
			printf("%s\"%s\":%d", sep, name ? name : "?", counts[e]);
			sep = ",";
		}
	printf("}}\n");
	fflush(stdout);
	if (device)
		for (int i = 0; i < n; i++) close(rs[i].fd);
	return 0;
}
