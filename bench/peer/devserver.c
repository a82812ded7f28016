/*
 * devserver [--mt] MOUNTPOINT
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
 * cdevemu does). Blocked echo requests are kept and answered later, never
 * by blocking a thread of the loop. Mounted with max_read=1 MiB (libfuse
 * negotiates max_write 1 MiB and max_pages 256 by itself), as cdevemu is.
 *
 * The loop is the only difference between the bench's two C servers:
 *
 *   devserver MOUNT       one thread serves every request (fuse_session_loop),
 *                         as cdevemu's main thread does;
 *   devserver --mt MOUNT  libfuse's default multithreaded loop
 *                         (fuse_session_loop_mt with its default configuration:
 *                         a new worker whenever none is idle, up to 10, none
 *                         ever stopped, every worker reading the one /dev/fuse
 *                         descriptor).
 *
 * Stops on SIGTERM/SIGINT (libfuse's handlers), unmounting.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <errno.h>
#include <pthread.h>
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

/*
 * The FIFO and its queues are shared by every worker thread of
 * fuse_session_loop_mt, so they are taken under echo_lock in both loops (an
 * uncontended mutex on the single-threaded loop).
 *
 * Lock order: a request's own lock (libfuse's req->lock) before echo_lock.
 * libfuse holds req->lock while it runs the request's interrupt function
 * (find_interrupted, and fuse_req_interrupt_func when the request was
 * interrupted already), and that function takes echo_lock; so
 * fuse_req_interrupt_func is never called with echo_lock held. Replies may
 * be sent under echo_lock (they take only the session's lock, which libfuse
 * never holds while it calls us).
 *
 * A blocked request's waiter goes through these states, each changed under
 * echo_lock:
 *   NEW          allocated, its interrupt function set, not yet queued
 *   QUEUED       in echo.readers or echo.writers
 *   TAKEN        answered from the FIFO by a thread that now owns it
 *   INTERRUPTED  its interrupt function ran while it was NEW
 * The interrupt function answers a QUEUED waiter EINTR itself and frees it;
 * any other owner first clears the interrupt function
 * (fuse_req_interrupt_func(req, NULL, NULL), which waits for one running on
 * another thread), then answers and frees it (echo_finish).
 */
enum waiter_state { W_NEW, W_QUEUED, W_TAKEN, W_INTERRUPTED };

struct waiter {
	struct waiter *next, **pprev;
	fuse_req_t req;
	enum waiter_state state;
	int is_write;
	size_t size;    /* read: bytes wanted, then bytes answered; write: bytes held in data, then bytes taken */
	char *data;     /* write: a copy (the request buffer is reused when the handler returns); read: room for the answer */
};

struct queue {
	struct waiter *head, **tail;
};
#define QUEUE_INIT(q) { NULL, &(q).head }

static pthread_mutex_t echo_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	char buf[ECHO_CAPACITY];
	size_t start, bytes;
	struct queue readers, writers;
} echo = { .readers = QUEUE_INIT(echo.readers), .writers = QUEUE_INIT(echo.writers) };

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

static struct queue *queue_of(struct waiter *w) {
	return w->is_write ? &echo.writers : &echo.readers;
}

static void free_waiter(struct waiter *w) {
	free(w->data);
	free(w);
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

/* The FIFO's first min(size, bytes held) bytes as at most two pieces; echo_consume drops them. */
static int echo_peek(size_t size, struct iovec iov[2], size_t *n) {
	*n = size < echo.bytes ? size : echo.bytes;
	size_t first = ECHO_CAPACITY - echo.start < *n ? ECHO_CAPACITY - echo.start : *n;
	iov[0] = (struct iovec){ echo.buf + echo.start, first };
	iov[1] = (struct iovec){ echo.buf, *n - first };
	return *n - first ? 2 : 1;
}

static void echo_consume(size_t n) {
	echo.start = (echo.start + n) % ECHO_CAPACITY;
	echo.bytes -= n;
}

/* Under echo_lock: whether a read (data there) or a write (room there) can go on. */
static int echo_can(int is_write) {
	return is_write ? echo.bytes < ECHO_CAPACITY : echo.bytes > 0;
}

/* Under echo_lock: answers a waiter from the FIFO if it can go on, making it TAKEN. */
static int echo_take(struct waiter *w) {
	if (!echo_can(w->is_write)) return 0;
	if (w->is_write) {
		w->size = echo_put(w->data, w->size);
	} else {
		struct iovec iov[2];
		size_t n;
		int pieces = echo_peek(w->size, iov, &n);
		memcpy(w->data, iov[0].iov_base, iov[0].iov_len);
		if (pieces == 2) memcpy(w->data + iov[0].iov_len, iov[1].iov_base, iov[1].iov_len);
		echo_consume(n);
		w->size = n;
	}
	w->state = W_TAKEN;
	return 1;
}

/*
 * Under echo_lock, after data or room appeared: takes blocked readers and
 * writers in arrival order until neither can go on, into `done`, for
 * echo_finish_all once the lock is dropped.
 */
static void echo_wake(struct queue *done) {
	for (;;) {
		struct waiter *w = echo.readers.head;
		if (!w || !echo_take(w)) {
			w = echo.writers.head;
			if (!w || !echo_take(w)) return;
		}
		unlink_waiter(queue_of(w), w);
		enqueue(done, w);
	}
}

/* Without echo_lock: answers a TAKEN or INTERRUPTED waiter and frees it. */
static void echo_finish(struct waiter *w) {
	fuse_req_interrupt_func(w->req, NULL, NULL);
	if (w->state == W_INTERRUPTED) fuse_reply_err(w->req, EINTR);
	else if (w->is_write) fuse_reply_write(w->req, w->size);
	else fuse_reply_buf(w->req, w->data, w->size);
	free_waiter(w);
}

static void echo_finish_all(struct queue *done) {
	while (done->head) {
		struct waiter *w = done->head;
		done->head = w->next;
		echo_finish(w);
	}
}

/* fuse_interrupt_func_t, run with the request's lock held: the caller got a signal while blocked. */
static void echo_interrupted(fuse_req_t req, void *data) {
	struct waiter *w = data;
	(void)req;
	pthread_mutex_lock(&echo_lock);
	enum waiter_state was = w->state;
	if (was == W_QUEUED) unlink_waiter(queue_of(w), w);
	if (was == W_NEW || was == W_QUEUED) w->state = W_INTERRUPTED;
	pthread_mutex_unlock(&echo_lock);
	if (was == W_QUEUED) {
		fuse_reply_err(w->req, EINTR);
		free_waiter(w);
	}
}

/*
 * Without echo_lock, for a request that found the FIFO empty (read) or full
 * (write): its interrupt function is set before it is queued, so that no
 * other thread can answer it meanwhile; the FIFO is looked at again under
 * the lock, since another thread may have changed it since.
 */
static void echo_block(fuse_req_t req, int is_write, size_t size, const char *data) {
	struct waiter *w = calloc(1, sizeof *w);
	size_t room = is_write || size < ECHO_CAPACITY ? size : ECHO_CAPACITY;
	if (!w || !(w->data = malloc(room ? room : 1))) {
		free(w);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->is_write = is_write;
	w->size = size;
	if (is_write) memcpy(w->data, data, size);
	w->state = W_NEW;
	/* Runs echo_interrupted at once if the request was interrupted already. */
	fuse_req_interrupt_func(req, echo_interrupted, w);
	struct queue done = QUEUE_INIT(done);
	pthread_mutex_lock(&echo_lock);
	if (w->state == W_INTERRUPTED) {
		enqueue(&done, w);
	} else if (echo_take(w)) {
		enqueue(&done, w);
		echo_wake(&done);
	} else {
		w->state = W_QUEUED;
		enqueue(queue_of(w), w);
	}
	pthread_mutex_unlock(&echo_lock);
	echo_finish_all(&done);
}

/* A read (buf NULL) or write of the echo device: answered at once if the FIFO lets it go on, else EAGAIN or blocked. */
static void echo_io(fuse_req_t req, int is_write, const char *buf, size_t size, int nonblock) {
	struct queue done = QUEUE_INIT(done);
	pthread_mutex_lock(&echo_lock);
	int now = echo_can(is_write);
	if (now) {
		if (is_write) {
			fuse_reply_write(req, echo_put(buf, size));
		} else {
			struct iovec iov[2];
			size_t n;
			fuse_reply_iov(req, iov, echo_peek(size, iov, &n));
			echo_consume(n);
		}
		echo_wake(&done); /* data for blocked readers, or room for blocked writers */
	}
	pthread_mutex_unlock(&echo_lock);
	echo_finish_all(&done);
	if (now) return;
	if (nonblock) fuse_reply_err(req, EAGAIN);
	else echo_block(req, is_write, size, buf);
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
		echo_io(req, 0, NULL, size, fi->flags & O_NONBLOCK);
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
	} else {
		echo_io(req, 1, buf, size, fi->flags & O_NONBLOCK);
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
	int mt = argc == 3 && strcmp(argv[1], "--mt") == 0;
	if (argc != 2 + mt) {
		fprintf(stderr, "usage: devserver [--mt] MOUNTPOINT\n");
		return 2;
	}
	const char *mountpoint = argv[1 + mt];
	char *fargv[] = { argv[0], "-o", "max_read=1048576", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se) return 1;
	int rc = 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, mountpoint) == 0) {
			printf("ready\n");
			fflush(stdout);
			/* NULL: libfuse's defaults, as fuse_main gives them (clone_fd off, max_threads 10, max_idle_threads -1). */
			rc = (mt ? fuse_session_loop_mt(se, NULL) : fuse_session_loop(se)) ? 1 : 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return rc;
}
