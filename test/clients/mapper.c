/*
 * mapper [-t] PATH: holds PATH open (O_RDWR) and runs one command per stdin
 * line, answering one line each, so a test can drive a program that maps
 * a device. A touch that faults is caught by a SIGBUS handler, which
 * reports the signal and its si_code instead of dying.
 *
 *   map SLOT INDEX LEN     mmap(LEN, RW, MAP_SHARED, offset INDEX*pagesize) -> ok | err ERRNO
 *   unmap SLOT             munmap                                           -> ok | err ERRNO
 *   peek SLOT OFF LEN      bytes of the map                                 -> ok HEX | sigbus CODE
 *   poke SLOT OFF HEX      stores bytes into the map                        -> ok | sigbus CODE
 *   waitne SLOT OFF HEX    spins until the bytes at OFF differ from HEX     -> ok HEX | sigbus CODE
 *   read4                  read(fd, 4) (uio's interrupt count)              -> ok N | err ERRNO
 *   write4 N               write(fd, &N, 4) (uio's irqcontrol)              -> ok | err ERRNO
 *   close                  close(fd); maps stay                             -> ok
 *
 * CODE is si_code: 2 is BUS_ADRERR (a page past the end of the file).
 * With -t, PATH is opened by a thread that has exited (joined) before
 * "open" is printed: the device's opener is a thread that is gone, and
 * what follows is done by the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 8

static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_code;

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  fault_code = si->si_code;
  siglongjmp(fault_env, 1);
}

static int unhex(const char *h, unsigned char *out, size_t max) {
  size_t n = strlen(h) / 2;
  if (n > max) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (unsigned char)v;
  }
  return (int)n;
}

static void hexout(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static const char *open_path;
static int opened_fd, open_errno;

static void *open_in_thread(void *unused) {
  (void)unused;
  opened_fd = open(open_path, O_RDWR);
  open_errno = errno; /* errno is the thread's own */
  return NULL;
}

int main(int argc, char **argv) {
  int in_thread = argc == 3 && !strcmp(argv[1], "-t");
  if (argc != 2 && !in_thread) {
    fprintf(stderr, "usage: mapper [-t] PATH\n");
    return 2;
  }
  open_path = argv[argc - 1];
  pthread_t opener;
  if (in_thread) {
    if (pthread_create(&opener, NULL, open_in_thread, NULL) || pthread_join(opener, NULL)) {
      printf("err thread\n");
      return 1;
    }
  } else {
    open_in_thread(NULL);
  }
  int fd = opened_fd;
  if (fd < 0) {
    printf("err %d\n", open_errno);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGBUS, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  long page = sysconf(_SC_PAGESIZE);
  volatile unsigned char *maps[SLOTS] = {0};
  size_t lens[SLOTS] = {0};
  printf("open\n");

  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[16], hex[4096] = "";
    unsigned slot = 0;
    unsigned long a = 0, b = 0;
    int n = sscanf(line, "%15s %u %lu %4095s", cmd, &slot, &a, hex);
    if (n < 1) continue;
    if (slot >= SLOTS) slot = 0;
    if (!strcmp(cmd, "map")) {
      sscanf(hex, "%lu", &b);
      void *p = mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a * page);
      if (p == MAP_FAILED) {
        printf("err %d\n", errno);
      } else {
        maps[slot] = p;
        lens[slot] = b;
        printf("ok\n");
      }
    } else if (!strcmp(cmd, "unmap")) {
      if (munmap((void *)maps[slot], lens[slot]) < 0) printf("err %d\n", errno);
      else printf("ok\n");
      maps[slot] = NULL;
    } else if (!strcmp(cmd, "peek") || !strcmp(cmd, "poke") || !strcmp(cmd, "waitne")) {
      unsigned char buf[2048];
      size_t len;
      if (!strcmp(cmd, "peek")) {
        sscanf(hex, "%lu", &b);
        len = b > sizeof buf ? sizeof buf : b;
      } else {
        int got = unhex(hex, buf, sizeof buf);
        len = got < 0 ? 0 : (size_t)got;
      }
      volatile unsigned char *p = maps[slot] + a;
      if (sigsetjmp(fault_env, 1)) {
        printf("sigbus %d\n", (int)fault_code);
        continue;
      }
      if (!strcmp(cmd, "peek")) {
        unsigned char got[2048];
        for (size_t i = 0; i < len; i++) got[i] = p[i]; /* may fault: nothing printed yet */
        printf("ok ");
        hexout(got, len);
        printf("\n");
      } else if (!strcmp(cmd, "poke")) {
        for (size_t i = 0; i < len; i++) p[i] = buf[i];
        printf("ok\n");
      } else {
        unsigned char got[2048];
        do {
          __sync_synchronize();
          for (size_t i = 0; i < len; i++) got[i] = p[i];
        } while (!memcmp(got, buf, len));
        printf("ok ");
        hexout(got, len);
        printf("\n");
      }
    } else if (!strcmp(cmd, "read4")) {
      int32_t v;
      ssize_t r = read(fd, &v, 4);
      if (r < 0) printf("err %d\n", errno);
      else printf("ok %d\n", v);
    } else if (!strcmp(cmd, "write4")) {
      int32_t v = 0;
      sscanf(line, "%*s %d", &v);
      if (write(fd, &v, 4) < 0) printf("err %d\n", errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "close")) {
      close(fd);
      printf("ok\n");
    } else {
      printf("bad command\n");
    }
  }
  return 0;
}
