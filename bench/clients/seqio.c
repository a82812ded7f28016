/*
 * seqio read|write PATH CHUNK TOTAL START_NS MAX_MS
 *
 * Opens PATH, sleeps until CLOCK_MONOTONIC START_NS (0: start at once; a
 * barrier for parallel runs), then reads or writes CHUNK-byte blocks until
 * TOTAL bytes have moved or MAX_MS has elapsed. Prints one JSON line:
 * {"ops","bytes","start","end","capped"} (stamps in CLOCK_MONOTONIC ns).
 * Only the loop is timed: not exec, not open.
 */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 7) {
		fprintf(stderr, "usage: seqio read|write PATH CHUNK TOTAL START_NS MAX_MS\n");
		return 2;
	}
	int writing = strcmp(argv[1], "write") == 0;
	if (!writing && strcmp(argv[1], "read") != 0) return 2;
	size_t chunk = parse_u64(argv[3], "chunk");
	uint64_t total = parse_u64(argv[4], "total");
	uint64_t start_at = parse_u64(argv[5], "start");
	uint64_t max_ns = parse_u64(argv[6], "max_ms") * 1000000ull;
	if (chunk == 0) return 2;

	void *buf;
	if (posix_memalign(&buf, 4096, chunk)) DIE_ERRNO("posix_memalign");
	memset(buf, 0xa5, chunk);
	int fd = open(argv[2], writing ? O_WRONLY : O_RDONLY);
	if (fd < 0) DIE_ERRNO("open");

	if (start_at) sleep_until(start_at);
	uint64_t start = now_ns(), end = start, ops = 0, done = 0;
	int capped = 0;
	while (done < total) {
		size_t want = total - done < chunk ? (size_t)(total - done) : chunk;
		ssize_t n = writing ? write(fd, buf, want) : read(fd, buf, want);
		if (n < 0) {
			if (errno == EINTR) continue;
			DIE_ERRNO(writing ? "write" : "read");
		}
		if (n == 0) {
			fprintf(stderr, "%s returned 0 after %llu bytes\n", argv[1], (unsigned long long)done);
			return 1;
		}
		done += (uint64_t)n;
		ops++;
		if ((ops & 15) == 0 && now_ns() - start > max_ns) {
			capped = 1;
			break;
		}
	}
	end = now_ns();
	close(fd);
	printf("{\"ops\":%llu,\"bytes\":%llu,\"start\":%llu,\"end\":%llu,\"capped\":%s}\n",
	       (unsigned long long)ops, (unsigned long long)done, (unsigned long long)start,
	       (unsigned long long)end, capped ? "true" : "false");
	return 0;
}
