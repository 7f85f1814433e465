/*
 * New TCP connections per second, with latency percentiles: CONCURRENCY connections in flight
 * at once, each a fresh socket (non-blocking, epoll). Two modes:
 *   connect  the three-way handshake, then a half-close, until the server closes too (latency:
 *            connect() to the server's FIN). Waiting for the server keeps the loop closed: at
 *            most CONCURRENCY connections exist end to end, so a server that accepts more slowly
 *            than handshakes complete slows the rate instead of overflowing its accept queue
 *            (which drops SYNs, each a 1 s retransmission stall: what made the old
 *            handshake-then-close mode swing between runs by 2x on every setup alike)
 *   http     connect, send one "Connection: close" HTTP/1.1 request, read until the server
 *            closes (latency: connect() to EOF) — one connection per request
 * After WARMUP seconds of the same load, counts for SECONDS and prints one JSON object with
 * the rate, latency percentiles (microseconds) and the busy/total CPU ticks of /proc/stat
 * (all CPUs, the whole machine) over the measured interval.
 *
 * usage: connrate -a ADDR -p PORT [-c CONCURRENCY] [-d SECONDS] [-w WARMUP] [-m connect|http] [-b SOURCE]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_TIMEOUT_NS (5ull * 1000000000ull)

enum state { IDLE, CONNECTING, WAITING };
struct slot {
  int fd;
  enum state st;
  uint64_t t0;
};

/* IPv4 or IPv6, by the address given (-a, -b). */
static struct sockaddr_storage dst, src;
static socklen_t dst_len, src_len;
static int bind_src, http_mode;
static const char REQ[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

static uint32_t *samples;
static size_t nsamples, capsamples;
static uint64_t errors, recording;

/* text -> sockaddr (IPv6 when it has a colon). */
static int parse_addr(const char *text, uint16_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (strchr(text, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    *len = sizeof *a;
    return inet_pton(AF_INET6, text, &a->sin6_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  *len = sizeof *a;
  return inet_pton(AF_INET, text, &a->sin_addr) == 1 ? 0 : -1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cpu_ticks(unsigned long long *busy, unsigned long long *total) {
  unsigned long long v[10] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) < 8) {
    *busy = *total = 0;
  } else {
    /* user nice system idle iowait irq softirq steal (guest time is already inside user) */
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *total = *busy + v[3] + v[4];
  }
  if (f) fclose(f);
}

static void record(uint64_t ns) {
  if (!recording) return;
  if (nsamples == capsamples) {
    capsamples = capsamples ? capsamples * 2 : 65536;
    samples = realloc(samples, capsamples * sizeof *samples);
    if (!samples) {
      perror("realloc");
      exit(1);
    }
  }
  samples[nsamples++] = (uint32_t)(ns / 1000);
}

static void finish(int ep, struct slot *s) {
  if (s->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
  }
  s->fd = -1;
  s->st = IDLE;
}

static void fail(int ep, struct slot *s) {
  if (recording) errors++;
  finish(ep, s);
}

static void begin(int ep, struct slot *s) {
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    exit(1);
  }
  if (bind_src) {
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, src_len) < 0) {
      perror("bind");
      exit(1);
    }
  }
  s->fd = fd;
  s->t0 = now_ns();
  s->st = CONNECTING;
  if (connect(fd, (struct sockaddr *)&dst, dst_len) < 0 && errno != EINPROGRESS) {
    fail(ep, s);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void on_event(int ep, struct slot *s, uint32_t events) {
  if (s->st == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      fail(ep, s);
      return;
    }
    if (!http_mode) {
      if (shutdown(s->fd, SHUT_WR) < 0) {
        fail(ep, s);
        return;
      }
    } else if (send(s->fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQ - 1)) {
      fail(ep, s);
      return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->st = WAITING;
    return;
  }
  char buf[4096];
  for (;;) {
    ssize_t r = recv(s->fd, buf, sizeof buf, 0);
    if (r > 0) continue;
    if (r == 0) {
      record(now_ns() - s->t0);
      finish(ep, s);
    } else if (errno != EAGAIN && errno != EINTR) {
      fail(ep, s);
    }
    return;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (nsamples == 0) return 0;
  /* nearest rank */
  size_t i = (size_t)(p / 100.0 * (double)nsamples + 0.999999);
  if (i < 1) i = 1;
  if (i > nsamples) i = nsamples;
  return samples[i - 1];
}

int main(int argc, char **argv) {
  const char *addr = NULL, *source = NULL;
  int port = 0, conc = 32, opt;
  double seconds = 5, warmup = 1;
  while ((opt = getopt(argc, argv, "a:p:c:d:w:m:b:")) != -1) {
    switch (opt) {
      case 'a': addr = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'c': conc = atoi(optarg); break;
      case 'd': seconds = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'm': http_mode = strcmp(optarg, "http") == 0; break;
      case 'b': source = optarg; break;
      default: goto usage;
    }
  }
  if (!addr || port <= 0 || conc <= 0 || seconds <= 0) goto usage;
  signal(SIGPIPE, SIG_IGN);
  if (parse_addr(addr, (uint16_t)port, &dst, &dst_len) < 0) goto usage;
  if (source) {
    bind_src = 1;
    if (parse_addr(source, 0, &src, &src_len) < 0 || src.ss_family != dst.ss_family) goto usage;
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  for (int i = 0; i < conc; i++) slots[i].fd = -1;
  struct epoll_event events[512];
  uint64_t t_start = now_ns();
  uint64_t t_measure = t_start + (uint64_t)(warmup * 1e9);
  uint64_t t_end = t_measure + (uint64_t)(seconds * 1e9);
  unsigned long long busy0 = 0, total0 = 0, busy1, total1;
  if (warmup <= 0) {
    recording = 1;
    cpu_ticks(&busy0, &total0);
  }
  for (;;) {
    uint64_t t = now_ns();
    if (!recording && t >= t_measure) {
      recording = 1;
      cpu_ticks(&busy0, &total0);
    }
    if (t >= t_end) break;
    for (int i = 0; i < conc; i++) {
      if (slots[i].st == IDLE) begin(ep, &slots[i]);
      else if (t - slots[i].t0 > CONN_TIMEOUT_NS) fail(ep, &slots[i]);
    }
    int n = epoll_wait(ep, events, 512, 50);
    for (int i = 0; i < n; i++) on_event(ep, events[i].data.ptr, events[i].events);
  }
  cpu_ticks(&busy1, &total1);
  double elapsed = (double)(now_ns() - t_measure) / 1e9;
  qsort(samples, nsamples, sizeof *samples, cmp_u32);
  double sum = 0;
  /* A connection of 0.9 s or more waited for a retransmitted SYN (the first retransmission is at 1 s). */
  size_t stalled = 0;
  for (size_t i = 0; i < nsamples; i++) {
    sum += samples[i];
    if (samples[i] >= 900000) stalled++;
  }
  printf("{\"mode\":\"%s\",\"concurrency\":%d,\"seconds\":%.3f,\"connections\":%zu,\"errors\":%llu,\"stalled\":%zu,\"rate\":%.1f,"
         "\"meanUs\":%.1f,\"p50Us\":%.0f,\"p90Us\":%.0f,\"p99Us\":%.0f,\"p999Us\":%.0f,\"maxUs\":%.0f,"
         "\"cpu\":{\"busyTicks\":%llu,\"totalTicks\":%llu,\"hz\":%ld}}\n",
         http_mode ? "http" : "connect", conc, elapsed, nsamples, (unsigned long long)errors, stalled, (double)nsamples / elapsed,
         nsamples ? sum / (double)nsamples : 0, pct(50), pct(90), pct(99), pct(99.9), nsamples ? (double)samples[nsamples - 1] : 0,
         busy1 - busy0, total1 - total0, sysconf(_SC_CLK_TCK));
  return 0;
usage:
  fprintf(stderr, "usage: connrate -a ADDR -p PORT [-c CONCURRENCY] [-d SECONDS] [-w WARMUP] [-m connect|http] [-b SOURCE]\n");
  return 2;
}
