/*
 * A slow SD card for the bench: preloaded into the service (LD_PRELOAD), it delays every fsync and
 * fdatasync by SLOW_FSYNC_MS milliseconds (default 30) before doing the real one, as a worn card's flush
 * would. Built with the machine's cc by the bench; nothing of it ships.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void pause_like_a_card(void) {
  const char *text = getenv("SLOW_FSYNC_MS");
  long ms = text == NULL ? 30 : atol(text);
  struct timespec delay = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&delay, &delay) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  pause_like_a_card();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  pause_like_a_card();
  return real(fd);
}
