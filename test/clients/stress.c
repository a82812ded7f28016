/*
 * stress PATH: loops open/write/poll/read/close on PATH until SIGTERM, then
 * prints "opens N closes N openfail N ioerr N". Opens may fail while the
 * device is unplugged (ENOENT/ENODEV); I/O on a file whose device went away
 * fails with EIO. Any other error is printed and counted as "other".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	long opens = 0, closes = 0, openfail = 0, ioerr = 0, other = 0;
	char buf[16];
	printf("started\n");
	fflush(stdout);
	while (!stop) {
		int fd = open(argv[1], O_RDWR | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ENOENT || errno == ENODEV) openfail++;
			else { other++; fprintf(stderr, "open: %s\n", strerrorname_np(errno)); }
			usleep(200);
			continue;
		}
		opens++;
		if (write(fd, "x", 1) < 0) {
			if (errno == EIO) ioerr++;
			else { other++; fprintf(stderr, "write: %s\n", strerrorname_np(errno)); }
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 0);
		if (read(fd, buf, sizeof buf) < 0) {
			if (errno == EIO) ioerr++;
			else if (errno != EAGAIN) { other++; fprintf(stderr, "read: %s\n", strerrorname_np(errno)); }
		}
		if (close(fd) == 0) closes++;
	}
	printf("opens %ld closes %ld openfail %ld ioerr %ld other %ld\n", opens, closes, openfail, ioerr, other);
	return 0;
}
