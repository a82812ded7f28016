/*
 * tcmu_consumer MOUNT UIO [flags]: a TCMU userspace backend written the way
 * tcmu-runner's libtcmu drives the kernel, against <linux/target_core_user.h>
 * only (it shares nothing with the emulator).
 *
 * It reads MOUNT/sys/class/uio/UIO/name ("tcm-user/HBA/DEV/file/PATH", the
 * last character chopped as tcmu-runner does), maps/map0/size, and the
 * configfs files under MOUNT/sys/kernel/config/target/core/user_HBA/DEV/
 * (info's "Size:", attrib/hw_block_size), opens MOUNT/dev/UIO, maps map0,
 * checks the mailbox version, and serves TEST UNIT READY, INQUIRY, READ
 * CAPACITY(10/16), READ(10/16) and WRITE(10/16) from the file PATH.
 * Out-of-range I/O gets CHECK CONDITION, ILLEGAL REQUEST / LBA OUT OF RANGE
 * (05/21/00); other opcodes INVALID COMMAND OPERATION CODE (05/20/00).
 *
 * The ring walk is libtcmu's: new entries are read from a private read
 * pointer up to cmd_head (skipping PAD), responses are written into the
 * entry at the mailbox's cmd_tail (overwriting its cmd_id: with
 * TCMU_MAILBOX_FLAG_CAP_OOOC that need not be the command placed there),
 * cmd_tail advances by that entry's length, and a write of 4 bytes kicks
 * the kernel. read(fd, 4) consumes the interrupt.
 *
 * Flags:
 *   --ooo            complete each batch of commands in reverse order
 *   --hold-opcode X  never complete commands with opcode X (hex)
 *   --batch N        complete only once N commands are pending (forces a ring-full backlog)
 *   --stall-after N  after N completions, complete nothing more (commands stay in flight)
 *   --quiet          no "served" lines (the benchmark)
 *   --direct-read N / --direct-write N   no ring: N preads of 4 KiB / pwrites of
 *                    1 MiB straight to the file, timed (the benchmark's reference)
 * Prints "ready", "served N" on each kick; when the device goes away,
 * "pollerr REVENTS" and "read errno NAME" (or the errno of the read or kick
 * that met the unplug first), then unmaps, closes and exits 0.
 */
#define _GNU_SOURCE
/* The uapi header brings the kernel's struct iovec (linux/uio.h); tell
 * glibc it exists so <sys/uio.h> does not define it again. */
#include <linux/target_core_user.h>
#define __iovec_defined 1
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 4096

static char *mb_base;
static struct tcmu_mailbox *mb;
static int backing = -1;
static uint64_t dev_size;
static uint32_t block_size;

static void die(const char *what) {
	printf("error %s %s\n", what, strerrorname_np(errno));
	fflush(stdout);
	exit(1);
}

static int read_text(const char *path, char *buf, size_t size) {
	int fd = open(path, O_RDONLY);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0) return -1;
	buf[n] = 0;
	return (int)n;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, v >> 32); put_be32(p + 4, (uint32_t)v); }

/* The command's data iovecs, as pointers into our mapping (iov_base is an offset from the mailbox). */
static int map_iovs(struct tcmu_cmd_entry *ent, struct iovec *out) {
	uint32_t n = ent->req.iov_cnt;
	for (uint32_t i = 0; i < n; i++) {
		out[i].iov_base = mb_base + (size_t)ent->req.iov[i].iov_base;
		out[i].iov_len = ent->req.iov[i].iov_len;
	}
	return (int)n;
}

static size_t copy_to_iovs(struct iovec *iov, int cnt, const void *src, size_t len) {
	size_t done = 0;
	for (int i = 0; i < cnt && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, (const char *)src + done, n);
		done += n;
	}
	return done;
}

struct result {
	uint8_t status;
	uint8_t sense[TCMU_SENSE_BUFFERSIZE];
};

static void check_condition(struct result *r, uint8_t key, uint8_t asc, uint8_t ascq) {
	r->status = 0x02; /* SAM_STAT_CHECK_CONDITION */
	memset(r->sense, 0, sizeof r->sense);
	r->sense[0] = 0x70; /* fixed format, current */
	r->sense[2] = key;
	r->sense[7] = 10;
	r->sense[12] = asc;
	r->sense[13] = ascq;
}

static void rw(const uint8_t *cdb, struct iovec *iov, int cnt, struct result *r, int is_write, int is16) {
	uint64_t lba = is16 ? be64(cdb + 2) : be32(cdb + 2);
	uint32_t blocks = is16 ? be32(cdb + 10) : (uint32_t)(cdb[7] << 8 | cdb[8]);
	if (lba + blocks > dev_size / block_size) {
		check_condition(r, 0x05, 0x21, 0x00); /* LBA OUT OF RANGE */
		return;
	}
	ssize_t n = is_write ? pwritev(backing, iov, cnt, (off_t)(lba * block_size)) : preadv(backing, iov, cnt, (off_t)(lba * block_size));
	if (n != (ssize_t)((size_t)blocks * block_size)) check_condition(r, 0x03, 0x11, 0x00); /* MEDIUM ERROR, UNRECOVERED READ ERROR */
}

static void execute(struct tcmu_cmd_entry *ent, struct result *r) {
	const uint8_t *cdb = (const uint8_t *)(mb_base + ent->req.cdb_off);
	struct iovec iov[256];
	uint8_t buf[64];
	r->status = 0;
	if (ent->req.iov_cnt > 256) {
		check_condition(r, 0x05, 0x24, 0x00); /* more iovecs than we take: INVALID FIELD IN CDB */
		return;
	}
	int cnt = map_iovs(ent, iov);
	switch (cdb[0]) {
	case 0x00: /* TEST UNIT READY */
		break;
	case 0x12: /* INQUIRY: standard data, direct-access block device */
		memset(buf, 0, 36);
		buf[2] = 0x05; /* SPC-3 */
		buf[3] = 0x02;
		buf[4] = 31;
		memcpy(buf + 8, "LIO-ORG ", 8);
		memcpy(buf + 16, "TCMU device     ", 16);
		memcpy(buf + 32, "0002", 4);
		copy_to_iovs(iov, cnt, buf, 36);
		break;
	case 0x25: /* READ CAPACITY(10) */
		put_be32(buf, (uint32_t)(dev_size / block_size - 1));
		put_be32(buf + 4, block_size);
		copy_to_iovs(iov, cnt, buf, 8);
		break;
	case 0x9e: /* SERVICE ACTION IN(16) */
		if ((cdb[1] & 0x1f) != 0x10) {
			check_condition(r, 0x05, 0x24, 0x00);
			break;
		}
		memset(buf, 0, 32);
		put_be64(buf, dev_size / block_size - 1);
		put_be32(buf + 8, block_size);
		copy_to_iovs(iov, cnt, buf, 32);
		break;
	case 0x28: rw(cdb, iov, cnt, r, 0, 0); break;
	case 0x2a: rw(cdb, iov, cnt, r, 1, 0); break;
	case 0x88: rw(cdb, iov, cnt, r, 0, 1); break;
	case 0x8a: rw(cdb, iov, cnt, r, 1, 1); break;
	default:
		check_condition(r, 0x05, 0x20, 0x00); /* INVALID COMMAND OPERATION CODE */
	}
}

static struct tcmu_cmd_entry *entry_at(uint32_t off) { return (struct tcmu_cmd_entry *)(mb_base + mb->cmdr_off + off); }

/* tcmulib_command_complete(): the response goes into the entry at cmd_tail, PAD and TMR entries skipped. */
static void complete(uint16_t cmd_id, const struct result *r) {
	struct tcmu_cmd_entry *ent = entry_at(mb->cmd_tail);
	while (tcmu_hdr_get_op(ent->hdr.len_op) != TCMU_OP_CMD && mb->cmd_tail != mb->cmd_head) {
		mb->cmd_tail = (mb->cmd_tail + tcmu_hdr_get_len(ent->hdr.len_op)) % mb->cmdr_size;
		ent = entry_at(mb->cmd_tail);
	}
	ent->hdr.cmd_id = cmd_id;
	ent->hdr.uflags = 0;
	ent->rsp.scsi_status = r->status;
	if (r->status == 0x02) memcpy(ent->rsp.sense_buffer, r->sense, TCMU_SENSE_BUFFERSIZE);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	mb->cmd_tail = (mb->cmd_tail + tcmu_hdr_get_len(ent->hdr.len_op)) % mb->cmdr_size;
}

struct pending {
	uint16_t cmd_id;
	struct result r;
};

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int direct(const char *path, int writes, long count) {
	int fd = open(path, O_RDWR);
	if (fd < 0) die("open backing");
	off_t size = lseek(fd, 0, SEEK_END);
	size_t len = writes ? 1 << 20 : 4096;
	char *buf = aligned_alloc(4096, len);
	memset(buf, 0x5a, len);
	long slots = size / (off_t)len;
	double t0 = now_s();
	for (long i = 0; i < count; i++) {
		off_t off = (off_t)((i * 7919) % slots) * (off_t)len;
		ssize_t n = writes ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
		if (n != (ssize_t)len) die("direct io");
	}
	printf("direct %ld %.6f\n", count, now_s() - t0);
	return 0;
}

/* The device went away: let go of it (what a backend must do), exit 0. */
static void gone(int fd, size_t map_size) {
	fflush(stdout);
	munmap(mb_base, map_size);
	close(fd);
	exit(0);
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *mnt = argv[1], *uio = argv[2];
	int ooo = 0, hold = -1, batch = 1, quiet = 0;
	long stall_after = -1;
	int said_stalled = 0;
	long direct_reads = 0, direct_writes = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--ooo")) ooo = 1;
		else if (!strcmp(argv[i], "--quiet")) quiet = 1;
		else if (!strcmp(argv[i], "--hold-opcode") && i + 1 < argc) hold = (int)strtol(argv[++i], NULL, 16);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--stall-after") && i + 1 < argc) stall_after = atol(argv[++i]);
		else if (!strcmp(argv[i], "--direct-read") && i + 1 < argc) direct_reads = atol(argv[++i]);
		else if (!strcmp(argv[i], "--direct-write") && i + 1 < argc) direct_writes = atol(argv[++i]);
		else return 2;
	}

	char path[4096], text[4096];
	snprintf(path, sizeof path, "%s/sys/class/uio/%s/name", mnt, uio);
	int n = read_text(path, text, sizeof text);
	if (n <= 0) die("read name");
	text[n - 1] = 0; /* tcmu-runner chops the last character (the newline) */
	unsigned hba;
	char dev[256], subtype[64], cfg[1024];
	if (sscanf(text, "tcm-user/%u/%255[^/]/%63[^/]/%1023[^\n]", &hba, dev, subtype, cfg) != 4) {
		printf("error name %s\n", text);
		return 1;
	}
	if (direct_reads || direct_writes) return direct(cfg, direct_writes != 0, direct_reads ? direct_reads : direct_writes);

	snprintf(path, sizeof path, "%s/sys/class/uio/%s/maps/map0/size", mnt, uio);
	if (read_text(path, text, sizeof text) <= 0) die("read map size");
	size_t map_size = strtoull(text, NULL, 0);
	snprintf(path, sizeof path, "%s/sys/kernel/config/target/core/user_%u/%s/info", mnt, hba, dev);
	if (read_text(path, text, sizeof text) <= 0) die("read info");
	char *sz = strstr(text, " Size: ");
	if (!sz) die("no Size in info");
	dev_size = strtoull(sz + 7, NULL, 10);
	snprintf(path, sizeof path, "%s/sys/kernel/config/target/core/user_%u/%s/attrib/hw_block_size", mnt, hba, dev);
	if (read_text(path, text, sizeof text) <= 0) die("read hw_block_size");
	block_size = (uint32_t)strtoul(text, NULL, 10);
	snprintf(path, sizeof path, "%s/sys/kernel/config/target/core/user_%u/%s/alua", mnt, hba, dev);
	if (access(path, F_OK) != 0) die("alua missing");

	backing = open(cfg, O_RDWR);
	if (backing < 0) die("open backing");
	snprintf(path, sizeof path, "%s/dev/%s", mnt, uio);
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) die("open uio");
	mb_base = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mb_base == MAP_FAILED) die("mmap");
	mb = (struct tcmu_mailbox *)mb_base;
	if (mb->version != TCMU_MAILBOX_VERSION) {
		printf("error version %u\n", mb->version);
		return 1;
	}
	if ((hold >= 0 || ooo) && !(mb->flags & TCMU_MAILBOX_FLAG_CAP_OOOC)) {
		printf("error no OOOC\n");
		return 1;
	}
	printf("ready %s %u %s size=%llu block=%u map=%zu ring=%u\n", uio, hba, dev, (unsigned long long)dev_size, block_size, map_size, mb->cmdr_size);
	fflush(stdout);

	static struct pending pend[MAX_PENDING];
	int npend = 0;
	uint32_t next = mb->cmd_tail; /* libtcmu's dev->cmd_tail: how far we have read */
	long served = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR) continue;
			die("poll");
		}
		if (p.revents & (POLLERR | POLLHUP)) {
			printf("pollerr 0x%x\n", p.revents);
			uint32_t buf;
			if (read(fd, &buf, 4) < 0) printf("read errno %s\n", strerrorname_np(errno));
			else printf("read ok\n");
			gone(fd, map_size);
		}
		uint32_t irq;
		if (read(fd, &irq, 4) < 0 && errno != EAGAIN) {
			/*
			 * Unplugged between poll and read: the device's poll mask
			 * says so now (uio_poll() after unregister), without waiting.
			 */
			int err = errno;
			struct pollfd q = { .fd = fd, .events = POLLIN };
			if (poll(&q, 1, 0) == 1) printf("pollerr 0x%x\n", q.revents);
			printf("read errno %s\n", strerrorname_np(err));
			gone(fd, map_size);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		/* tcmulib_get_next_command(): from our read pointer to cmd_head. */
		while (next != mb->cmd_head && npend < MAX_PENDING) {
			struct tcmu_cmd_entry *ent = entry_at(next);
			uint32_t len = tcmu_hdr_get_len(ent->hdr.len_op);
			if (tcmu_hdr_get_op(ent->hdr.len_op) == TCMU_OP_CMD) {
				const uint8_t *cdb = (const uint8_t *)(mb_base + ent->req.cdb_off);
				if (cdb[0] != hold) {
					pend[npend].cmd_id = ent->hdr.cmd_id;
					execute(ent, &pend[npend].r);
					npend++;
				}
			}
			next = (next + len) % mb->cmdr_size;
		}
		if (npend < batch) continue;
		int stalled = 0;
		if (stall_after >= 0 && stall_after - served < npend) {
			/* Complete what is still allowed; the rest stay in flight for good. */
			npend = stall_after - served > 0 ? (int)(stall_after - served) : 0;
			stalled = 1;
		}
		for (int i = 0; i < npend; i++) {
			struct pending *c = &pend[ooo ? npend - 1 - i : i];
			complete(c->cmd_id, &c->r);
		}
		if (npend) {
			served += npend;
			npend = 0;
			uint32_t zero = 0;
			if (write(fd, &zero, 4) != 4) {
				printf("kick errno %s\n", strerrorname_np(errno));
				gone(fd, map_size);
			}
			if (!quiet) printf("served %ld\n", served);
		}
		if (stalled && !said_stalled) {
			printf("stalled %ld\n", served);
			said_stalled = 1;
		}
		fflush(stdout);
	}
}
