/*
 * rtc_caller PATH MODE: opens PATH as the user it was started as (root),
 * then changes who it is and calls ioctl(RTC_SET_TIME) with 2040-06-07
 * 08:09:10 on that descriptor, as drivers/rtc/dev.c rtc_dev_ioctl checks
 * capable(CAP_SYS_TIME) of the caller, whoever opened the file. MODE:
 *   root     stays root, every capability
 *   drop     setresuid(65534): no capability left
 *   keepcap  uid 65534 keeping only CAP_SYS_TIME (PR_SET_KEEPCAPS, capset)
 *   nocap    stays uid 0 without CAP_SYS_TIME in its effective set
 *   thread   a second thread drops CAP_SYS_TIME (capabilities are per
 *            thread) and calls; then the main thread, which kept it, calls
 * Prints one line per call: "ok" or the errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* include/uapi/linux/rtc.h */
struct rtc_time_ { int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst; };
#define RTC_SET_TIME_ _IOW('p', 0x0a, struct rtc_time_)

static int fd;

static void set_time(void) {
	struct rtc_time_ tm = { .tm_sec = 10, .tm_min = 9, .tm_hour = 8, .tm_mday = 7, .tm_mon = 5, .tm_year = 140 };
	if (ioctl(fd, RTC_SET_TIME_, &tm) < 0) printf("%s\n", strerrorname_np(errno));
	else printf("ok\n");
	fflush(stdout);
}

/* The calling thread's effective set becomes `effective` (permitted kept): capset(2) acts on one thread. */
static int set_effective(unsigned long long effective) {
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0) return -1;
	d[0].effective = (unsigned)effective;
	d[1].effective = (unsigned)(effective >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

static unsigned long long permitted(void) {
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0) return 0;
	return d[0].permitted | ((unsigned long long)d[1].permitted << 32);
}

static void *thread_without_sys_time(void *arg) {
	(void)arg;
	if (set_effective(permitted() & ~(1ULL << CAP_SYS_TIME)) < 0) { perror("capset"); return NULL; }
	set_time();
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); return 1; }
	const char *mode = argv[2];
	if (strcmp(mode, "drop") == 0) {
		if (setresuid(65534, 65534, 65534) < 0) { perror("setresuid"); return 1; }
	} else if (strcmp(mode, "keepcap") == 0) {
		if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setresuid(65534, 65534, 65534) < 0) { perror("keepcaps"); return 1; }
		/* Keeping them leaves them permitted, not effective: raise CAP_SYS_TIME alone. */
		if (set_effective(1ULL << CAP_SYS_TIME) < 0) { perror("capset"); return 1; }
	} else if (strcmp(mode, "nocap") == 0) {
		if (set_effective(permitted() & ~(1ULL << CAP_SYS_TIME)) < 0) { perror("capset"); return 1; }
	} else if (strcmp(mode, "thread") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, thread_without_sys_time, NULL) != 0) return 1;
		pthread_join(t, NULL);
	} else if (strcmp(mode, "root") != 0) {
		return 2;
	}
	set_time();
	return 0;
}
