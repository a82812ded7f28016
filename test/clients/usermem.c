/*
 * usermem PATH: drives USERMEM_COPY (test/fixtures/usermem-model.ts) with
 * good and bad pointers and prints one line per case: "NAME ok RESULT
 * BYTES" or "NAME errno ERRNAME BYTES", BYTES being what the destination
 * holds afterwards (hex), so partial copies show.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define USERMEM_COPY _IO('U', 1)

struct copy_req {
	uint64_t src;
	uint64_t dst;
	uint32_t len;
	uint32_t pad;
};

static int fd;

static void report(const char *name, int r, const unsigned char *dst, size_t n) {
	if (r < 0) printf("%s errno %s ", name, strerrorname_np(errno));
	else printf("%s ok %d ", name, r);
	for (size_t i = 0; i < n; i++) printf("%02x", dst[i]);
	printf("\n");
	fflush(stdout);
}

static void copy(const char *name, const void *src, void *dst, uint32_t len, size_t show) {
	struct copy_req req = { (uintptr_t)src, (uintptr_t)dst, len, 0 };
	report(name, ioctl(fd, USERMEM_COPY, &req), dst, show);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	fd = open(argv[1], O_RDWR);
	if (fd < 0) { printf("open errno %s\n", strerrorname_np(errno)); return 1; }
	long page = sysconf(_SC_PAGESIZE);
	unsigned char dst[32];

	memset(dst, 0, sizeof dst);
	copy("good", "0123456789", dst, 10, 10);

	/* The argument itself is a bad pointer. */
	report("null-arg", ioctl(fd, USERMEM_COPY, NULL), dst, 0);
	report("wild-arg", ioctl(fd, USERMEM_COPY, (void *)16), dst, 0);

	/* The structure is fine, a pointer in it is not. */
	memset(dst, 0, sizeof dst);
	copy("bad-src", (void *)16, dst, 4, 4);

	/* A destination that runs from an accessible page into a PROT_NONE one. */
	unsigned char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(two + page, page, PROT_NONE);
	memset(two + page - 4, '.', 4);
	copy("straddle-dst", "ABCDEFGH", two + page - 4, 8, 4);
	copy("straddle-src", two + page - 4, dst, 8, 0);

	/* A source in a private mapping of this very node: the copy faults
	 * the page in with a READ the daemon must serve meanwhile. A page
	 * past the size the kernel caches for the node faults SIGBUS, and a
	 * write grows that size (fs/fuse/file.c fuse_write_update_attr). */
	static char filler[4096];
	if (write(fd, filler, sizeof filler) != sizeof filler) printf("write errno %s\n", strerrorname_np(errno));
	int fd2 = open(argv[1], O_RDONLY);
	unsigned char *own = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd2, 0);
	if (own == MAP_FAILED) printf("own-map errno %s\n", strerrorname_np(errno));
	else copy("own-map", own, dst, 16, 16);

	memset(dst, 0, sizeof dst);
	copy("good-again", "xyz", dst, 3, 3);
	return 0;
}
