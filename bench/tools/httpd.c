/*
 * A small, fast HTTP/1.1 responder for the benchmark: one thread, epoll, every request
 * answered with a fixed 2-byte body. Keep-alive unless the request says "Connection: close",
 * then the server closes after answering (the server does the active close, as a real one does).
 * A peer that closes first is simply closed. Pipelined requests are answered in order.
 *
 * usage: httpd PORT [ADDRESS]     prints "ready" on stdout once it listens
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUF 8192

static const char KEEP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
static const char CLOSE[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

struct conn {
  int fd;
  size_t len;
  char buf[BUF];
};

static int has_close(const char *req, size_t n) {
  /* Case-insensitive search for "connection: close" inside the header block. */
  static const char pat[] = "connection: close";
  size_t m = sizeof pat - 1;
  for (size_t i = 0; i + m <= n; i++)
    if (strncasecmp(req + i, pat, m) == 0) return 1;
  return 0;
}

static void drop(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

/* Answers every complete request in the buffer; returns 0 to keep the connection, -1 to close. */
static int serve(struct conn *c) {
  char out[64 * sizeof CLOSE];
  size_t outlen = 0;
  int closing = 0;
  for (;;) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) break;
    size_t reqlen = (size_t)(end - c->buf) + 4;
    closing = has_close(c->buf, reqlen);
    const char *resp = closing ? CLOSE : KEEP;
    size_t rl = closing ? sizeof CLOSE - 1 : sizeof KEEP - 1;
    if (outlen + rl > sizeof out) break;
    memcpy(out + outlen, resp, rl);
    outlen += rl;
    memmove(c->buf, c->buf + reqlen, c->len - reqlen);
    c->len -= reqlen;
    if (closing) break;
  }
  if (outlen > 0) {
    /* Responses are tiny: a short write on a fresh socket buffer does not happen in practice;
       treat one as a broken connection rather than buffering. */
    ssize_t w = send(c->fd, out, outlen, MSG_NOSIGNAL);
    if (w != (ssize_t)outlen) return -1;
  }
  if (c->len == BUF) return -1; /* a header larger than the buffer: not our client */
  return closing ? -1 : 0;
}

/* Listens on port: on addr (IPv4 or IPv6 text) when given; without one on [::] for both
 * families (not v6-only: the IPv6 benchmark rows reach the same server), or on 0.0.0.0 where the
 * namespace has no IPv6. Returns the socket, -1 on a socket error, -2 on a bad address. */
static int listen_on(int port, const char *addr) {
  int one = 1, zero = 0;
  if (!addr || strchr(addr, ':')) {
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
    if (addr && inet_pton(AF_INET6, addr, &sa6.sin6_addr) != 1) return -2;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      if (bind(fd, (struct sockaddr *)&sa6, sizeof sa6) == 0 && listen(fd, 4096) == 0) return fd;
      close(fd);
    }
    if (addr) return -1;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1) return -2;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 4096) == 0) return fd;
  close(fd);
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: httpd PORT [ADDRESS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  int one = 1;
  int ls = listen_on(port, argc > 2 ? argv[2] : NULL);
  if (ls == -2) {
    fprintf(stderr, "httpd: bad address %s\n", argv[2]);
    return 2;
  }
  if (ls < 0) {
    fprintf(stderr, "httpd: listen on port %d: %s\n", port, strerror(errno));
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("ready\n");
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *nc = malloc(sizeof *nc);
          if (!nc) {
            close(fd);
            continue;
          }
          nc->fd = fd;
          nc->len = 0;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      ssize_t r = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
      if (r > 0) {
        c->len += (size_t)r;
        if (serve(c) < 0) drop(ep, c);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        drop(ep, c);
      }
    }
  }
}
