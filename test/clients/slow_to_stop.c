/*
 * slow_to_stop FIFO: a process whose threads cannot all stop at once on
 * SIGSTOP (test/scenario/stopped.test.ts). Four threads sleep, one spins
 * (its name, "spin) T (x", would read as state T to a parser that stops
 * at the first ")"), and one sits in vfork(): the parent of a vfork waits
 * for its child killably (wait_for_vfork_done() in kernel/fork.c, state
 * D), so SIGSTOP stops it only once the child has exited, which the child
 * does when the test opens FIFO for writing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char *fifo;

static void *sleeper(void *arg) {
	(void)arg;
	prctl(PR_SET_NAME, "sleeper (s)");
	for (;;) pause();
	return NULL;
}

static void *spinner(void *arg) {
	(void)arg;
	prctl(PR_SET_NAME, "spin) T (x");
	for (volatile unsigned long n = 0;; n++) {}
	return NULL;
}

static void *vforker(void *arg) {
	(void)arg;
	prctl(PR_SET_NAME, "in vfork");
	if (vfork() == 0) {
		/* The child: its parent thread stays in vfork() until it exits. */
		char c;
		int fd = open(fifo, O_RDONLY);
		if (fd >= 0) (void)!read(fd, &c, 1);
		_exit(0);
	}
	for (;;) pause();
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	fifo = argv[1];
	pthread_t t;
	for (int i = 0; i < 4; i++) pthread_create(&t, NULL, sleeper, NULL);
	pthread_create(&t, NULL, spinner, NULL);
	pthread_create(&t, NULL, vforker, NULL);
	for (;;) pause();
}
