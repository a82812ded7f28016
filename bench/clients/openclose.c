/*
 * openclose PATH N MAX_MS
 *
 * open(PATH, O_RDONLY) + close() N times (or until MAX_MS), after one
 * untimed warm-up pair that primes the dentry cache. Prints one JSON line:
 * {"ops","start","end","capped"}.
 */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: openclose PATH N MAX_MS\n");
		return 2;
	}
	uint64_t n = parse_u64(argv[2], "n");
	uint64_t max_ns = parse_u64(argv[3], "max_ms") * 1000000ull;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) DIE_ERRNO("open");
	if (close(fd)) DIE_ERRNO("close");

	uint64_t start = now_ns(), ops = 0;
	int capped = 0;
	while (ops < n) {
		fd = open(argv[1], O_RDONLY);
		if (fd < 0) DIE_ERRNO("open");
		if (close(fd)) DIE_ERRNO("close");
		ops++;
		if ((ops & 15) == 0 && now_ns() - start > max_ns) {
			capped = 1;
			break;
		}
	}
	uint64_t end = now_ns();
	printf("{\"ops\":%llu,\"start\":%llu,\"end\":%llu,\"capped\":%s}\n", (unsigned long long)ops,
	       (unsigned long long)start, (unsigned long long)end, capped ? "true" : "false");
	return 0;
}
