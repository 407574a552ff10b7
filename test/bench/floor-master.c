/*
 * The floor under any design that sees the Modbus gap, whatever its language: the same request loop as
 * floor-master.ts in reply-then-gap mode (wake when the reply is readable, wake again when the 3.5-character
 * gap has passed, write the next request), in C, without Node.js. Compiled and run by floor.ts with the
 * machine's C compiler; not a test, and not part of the service.
 *
 * usage: floor-master-c <port path> <units>
 */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* As floor-master.ts and src/drivers/modbus-bus.ts round it at 9600 baud: 3.5 characters, whole ms plus one. */
#define GAP_MS 5
/* Read 2 discrete inputs (button, tamper): an 8-byte request, a 6-byte reply. */
#define REPLY_BYTES 6
#define TIMEOUT_MS 300

static uint16_t crc16(const uint8_t *bytes, int length) {
  uint16_t crc = 0xffff;
  for (int i = 0; i < length; i++) {
    crc ^= bytes[i];
    for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0xa001 : crc >> 1;
  }
  return crc;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 3 || atoi(argv[2]) < 1) {
    fprintf(stderr, "usage: floor-master-c <port path> <units>\n");
    return 2;
  }
  int units = atoi(argv[2]);
  int fd = open(argv[1], O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  struct termios line;
  tcgetattr(fd, &line);
  cfmakeraw(&line);
  line.c_cc[VMIN] = 1;
  line.c_cc[VTIME] = 0;
  tcsetattr(fd, TCSANOW, &line);
  tcflush(fd, TCIOFLUSH);

  uint8_t request[8] = {0, 2, 0, 0, 0, 2, 0, 0};
  uint8_t reply[256];
  for (int unit = 1;; unit = unit % units + 1) {
    request[0] = (uint8_t)unit;
    uint16_t crc = crc16(request, 6);
    request[6] = crc & 0xff;
    request[7] = crc >> 8;
    if (write(fd, request, sizeof request) != sizeof request) {
      perror("write");
      return 1;
    }
    int received = 0;
    double deadline = now_ms() + TIMEOUT_MS;
    while (received < REPLY_BYTES) {
      int left = (int)(deadline - now_ms());
      struct pollfd readable = {fd, POLLIN, 0};
      if (left <= 0 || poll(&readable, 1, left) <= 0) break;
      ssize_t bytes = read(fd, reply + received, sizeof reply - received);
      if (bytes > 0) received += (int)bytes;
    }
    poll(NULL, 0, GAP_MS);
  }
}
