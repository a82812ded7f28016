/*
 * devserver MOUNTPOINT
 *
 * The bench's peer: a minimal libfuse3 low-level server in C serving the
 * same tree and semantics as cdevemu's built-in models, so that every
 * workload can be run against both in one bench run:
 *
 *   MOUNTPOINT/dev/zero  reads give zeros, writes are swallowed   (models/mem.ts)
 *   MOUNTPOINT/dev/null  reads give EOF, writes are swallowed
 *   MOUNTPOINT/dev/echo  a 64 KiB FIFO shared by every opener    (models/echo.ts):
 *                        read blocks while empty, write blocks while full and
 *                        a write that finds some room takes what fits;
 *                        O_NONBLOCK gives EAGAIN; a blocked request that is
 *                        interrupted is answered EINTR.
 *
 * Like cdevemu's device nodes, every file is opened direct_io and
 * nonseekable; entries and attributes are cached for 1 s; FLUSH is not
 * implemented (libfuse answers ENOSYS, which the kernel remembers, as
 * cdevemu does). One thread serves every request (fuse_session_loop), as
 * cdevemu's main thread does; blocked echo requests are kept and answered
 * later, never by blocking the loop. Mounted with max_read=1 MiB (libfuse
 * negotiates max_write 1 MiB and max_pages 256 by itself), as cdevemu is.
 *
 * Stops on SIGTERM/SIGINT (libfuse's handlers), unmounting.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { INO_ROOT = 1, INO_DEV, INO_ZERO, INO_NULL, INO_ECHO };
static const char *const names[] = { [INO_ZERO] = "zero", [INO_NULL] = "null", [INO_ECHO] = "echo" };

#define MAX_IO (1u << 20)
#define ECHO_CAPACITY 65536u

static char zeros[MAX_IO];

/* ------------------------------------------------------------------ echo */

struct waiter {
	struct waiter *next, **pprev;
	fuse_req_t req;
	size_t size;    /* read: bytes wanted; write: bytes held in data */
	char *data;     /* write only: a copy (the request buffer is reused when the handler returns) */
};

struct queue {
	struct waiter *head, **tail;
};

static struct {
	char buf[ECHO_CAPACITY];
	size_t start, bytes;
	struct queue readers, writers;
} echo = { .readers = { NULL, &echo.readers.head }, .writers = { NULL, &echo.writers.head } };

static void enqueue(struct queue *q, struct waiter *w) {
	w->next = NULL;
	w->pprev = q->tail;
	*q->tail = w;
	q->tail = &w->next;
}

static void unlink_waiter(struct queue *q, struct waiter *w) {
	*w->pprev = w->next;
	if (w->next) w->next->pprev = w->pprev;
	else q->tail = w->pprev;
}

static size_t echo_put(const char *src, size_t size) {
	size_t n = size < ECHO_CAPACITY - echo.bytes ? size : ECHO_CAPACITY - echo.bytes;
	for (size_t i = 0; i < n;) {
		size_t at = (echo.start + echo.bytes) % ECHO_CAPACITY;
		size_t run = ECHO_CAPACITY - at < n - i ? ECHO_CAPACITY - at : n - i;
		memcpy(echo.buf + at, src + i, run);
		echo.bytes += run;
		i += run;
	}
	return n;
}

/* Answers a read of up to `size` bytes from the FIFO (which is not empty). */
static void echo_reply_read(fuse_req_t req, size_t size) {
	size_t n = size < echo.bytes ? size : echo.bytes;
	size_t first = ECHO_CAPACITY - echo.start < n ? ECHO_CAPACITY - echo.start : n;
	struct iovec iov[2] = { { echo.buf + echo.start, first }, { echo.buf, n - first } };
	fuse_reply_iov(req, iov, n - first ? 2 : 1);
	echo.start = (echo.start + n) % ECHO_CAPACITY;
	echo.bytes -= n;
}

/* After data or room appeared: answer blocked readers and writers in arrival order until neither can go on. */
static void echo_wake(void) {
	for (;;) {
		if (echo.bytes && echo.readers.head) {
			struct waiter *w = echo.readers.head;
			unlink_waiter(&echo.readers, w);
			echo_reply_read(w->req, w->size);
			free(w);
		} else if (echo.bytes < ECHO_CAPACITY && echo.writers.head) {
			struct waiter *w = echo.writers.head;
			unlink_waiter(&echo.writers, w);
			fuse_reply_write(w->req, echo_put(w->data, w->size));
			free(w->data);
			free(w);
		} else {
			return;
		}
	}
}

/* fuse_req_interrupt_func: the caller got a signal while blocked. */
static void echo_interrupted(fuse_req_t req, void *data) {
	struct waiter *w = data;
	(void)req;
	unlink_waiter(w->data ? &echo.writers : &echo.readers, w);
	fuse_reply_err(w->req, EINTR);
	free(w->data);
	free(w);
}

static void echo_block(fuse_req_t req, struct queue *q, size_t size, const char *data) {
	struct waiter *w = calloc(1, sizeof *w);
	if (!w || (data && !(w->data = malloc(size)))) {
		free(w);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->size = size;
	if (data) memcpy(w->data, data, size);
	enqueue(q, w);
	/* Calls echo_interrupted at once if the request was interrupted already. */
	fuse_req_interrupt_func(req, echo_interrupted, w);
}

/* ----------------------------------------------------------------- ops */

static int stat_of(fuse_ino_t ino, struct stat *st) {
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_blksize = 4096;
	if (ino == INO_ROOT || ino == INO_DEV) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino >= INO_ZERO && ino <= INO_ECHO) {
		st->st_mode = S_IFREG | 0666;
		st->st_nlink = 1;
	} else {
		return ENOENT;
	}
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
	fuse_ino_t ino = 0;
	if (parent == INO_ROOT && strcmp(name, "dev") == 0) ino = INO_DEV;
	else if (parent == INO_DEV)
		for (fuse_ino_t i = INO_ZERO; i <= INO_ECHO; i++)
			if (strcmp(name, names[i]) == 0) ino = i;
	if (!ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e = { .ino = ino, .attr_timeout = 1.0, .entry_timeout = 1.0 };
	stat_of(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	struct stat st;
	(void)fi;
	int err = stat_of(ino, &st);
	if (err) fuse_reply_err(req, err);
	else fuse_reply_attr(req, &st, 1.0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	if (ino < INO_ZERO || ino > INO_ECHO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
	(void)off;
	switch (ino) {
	case INO_ZERO:
		fuse_reply_buf(req, zeros, size < MAX_IO ? size : MAX_IO);
		return;
	case INO_NULL:
		fuse_reply_buf(req, NULL, 0);
		return;
	case INO_ECHO:
		if (echo.bytes) {
			echo_reply_read(req, size);
			echo_wake(); /* room for blocked writers */
		} else if (fi->flags & O_NONBLOCK) {
			fuse_reply_err(req, EAGAIN);
		} else {
			echo_block(req, &echo.readers, size, NULL);
		}
		return;
	}
	fuse_reply_err(req, EINVAL);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
	(void)off;
	if (ino == INO_ZERO || ino == INO_NULL) {
		fuse_reply_write(req, size);
	} else if (ino != INO_ECHO) {
		fuse_reply_err(req, EINVAL);
	} else if (size == 0) {
		fuse_reply_write(req, 0);
	} else if (echo.bytes < ECHO_CAPACITY) {
		fuse_reply_write(req, echo_put(buf, size));
		echo_wake(); /* data for blocked readers */
	} else if (fi->flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
	} else {
		echo_block(req, &echo.writers, size, buf);
	}
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* max_read must agree with the mount option (libfuse refuses to start otherwise). */
static void op_init(void *userdata, struct fuse_conn_info *conn) {
	(void)userdata;
	conn->max_read = MAX_IO;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
};

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: devserver MOUNTPOINT\n");
		return 2;
	}
	char *fargv[] = { argv[0], "-o", "max_read=1048576", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se) return 1;
	int rc = 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, argv[1]) == 0) {
			printf("ready\n");
			fflush(stdout);
			rc = fuse_session_loop(se) ? 1 : 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	return rc;
}
