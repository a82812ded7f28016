/*
 * blocked_read PATH: blocks in read() on PATH until a SIGALRM, whose
 * handler is installed without SA_RESTART, interrupts it: the test sends
 * it once it sees the read at the device. Prints "ready", then the
 * outcome: "read N" or "errno NAME".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) { printf("open errno %s\n", strerrorname_np(errno)); return 1; }
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: read must return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf);
	if (n < 0) printf("errno %s\n", strerrorname_np(errno));
	else printf("read %zd\n", n);
	return 0;
}
