/*
 * crash_after_main: a process whose main thread ends first, with
 * pthread_exit(), and whose other thread then dies of SIGSEGV
 * (test/scenario/program-ends.test.ts). The kernel reports the main
 * thread's exit, status 0, when it happens; the process's crash shows only
 * in the exits of the threads that were left (each carries the group's
 * exit code: kernel/exit.c do_group_exit()), while its parent's wait(2)
 * still gets SIGSEGV.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether the main thread has exited: the group leader is then a zombie (state Z in /proc/self/stat). */
static int main_gone(void) {
	char buf[512];
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f) return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *close = strrchr(buf, ')');
	return close && close[1] == ' ' && close[2] == 'Z';
}

static void *crash_later(void *arg) {
	(void)arg;
	while (!main_gone()) usleep(1000);
	raise(SIGSEGV);
	return NULL;
}

int main(void) {
	pthread_t t;
	if (pthread_create(&t, NULL, crash_later, NULL) != 0) return 1;
	pthread_exit(NULL);
}
