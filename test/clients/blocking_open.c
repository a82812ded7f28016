/*
 * blocking_open PATH [restart]: opens PATH O_RDWR | O_NOCTTY, blocking,
 * with a SIGUSR1 handler installed without SA_RESTART (with it, given
 * "restart"): the test sends the signal once it sees the open at the
 * device. Prints "ready" before the open, then "open" or "errno NAME";
 * once open, holds the file until its stdin ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	if (argc > 2 && strcmp(argv[2], "restart") == 0) sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	int fd = open(argv[1], O_RDWR | O_NOCTTY);
	if (fd < 0) {
		printf("errno %s\n", strerrorname_np(errno));
		return 1;
	}
	printf("open\n");
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	close(fd);
	return 0;
}
