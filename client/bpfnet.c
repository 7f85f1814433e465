/*
 * bpfnet's thin client, what bin/bpfnet starts: it hands the command line and environment to
 * the daemon (POST /bpfnet/cli on the API socket), which runs it with the same TypeScript CLI
 * (src/cli/remote.ts) and streams back stdout, stderr and the exit status as frames. A command
 * takes a few milliseconds instead of Node's ~100 ms start-up.
 *
 * Whenever the daemon does not run the command (it must run in this process: `bpfnet daemon`,
 * a prompt; the daemon is unreachable, older, or busy), this process becomes the Node CLI
 * (dist/src/cli/bundle/bpfnet.js next to this binary's tree) with the same arguments, so every
 * command and every error message stays the Node CLI's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SOCKET "/run/bpfnet.sock"
#define FRAME_STDOUT 1
#define FRAME_STDERR 2
#define FRAME_EXIT 3

/* ---- the Node CLI, for everything the daemon does not run ---- */

static _Noreturn void run_node_cli(char **argv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("bpfnet: /proc/self/exe");
		exit(127);
	}
	self[n] = '\0';
	/* ROOT/build/bin/bpfnet -> ROOT */
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(self, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	char bundle[PATH_MAX + 64];
	snprintf(bundle, sizeof(bundle), "%s/dist/src/cli/bundle/bpfnet.js", self);

	const char *node = getenv("BPFNET_NODE");
	if (!node || !*node)
		node = "node";
	int argc = 0;
	while (argv[argc])
		argc++;
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		exit(127);
	args[0] = (char *)node;
	args[1] = bundle;
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	execvp(node, args);
	fprintf(stderr, "bpfnet: cannot start %s: %s\n", node, strerror(errno));
	exit(127);
}

/* ---- the request ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			exit(1);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string; bytes above 0x7f pass as they are (the daemon refuses a body that is not UTF-8). */
static void put_json_string(struct buf *b, const char *s)
{
	put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char esc[2] = {'\\', (char)*c};
			put(b, esc, 2);
		} else if (*c < 0x20) {
			char esc[7];
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			put(b, esc, 6);
		} else {
			put(b, c, 1);
		}
	}
	put(b, "\"", 1);
}

static void put_json_list(struct buf *b, char **items)
{
	put(b, "[", 1);
	for (int i = 0; items[i]; i++) {
		if (i)
			put(b, ",", 1);
		put_json_string(b, items[i]);
	}
	put(b, "]", 1);
}

/* The socket named by -H/--host before the command, else $BPFNET_HOST, else the default; NULL when not unix://. */
static const char *socket_path(char **argv)
{
	const char *host = NULL;
	for (int i = 1; argv[i]; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break; /* the command */
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-H") || !strcmp(a, "--host")) {
			if (!argv[i + 1])
				return NULL;
			host = argv[++i];
		} else if (!strncmp(a, "--host=", 7)) {
			host = a + 7;
		} else if (!strncmp(a, "-H", 2)) {
			host = a + 2;
		}
	}
	if (!host || !*host)
		host = getenv("BPFNET_HOST");
	if (!host || !*host)
		return DEFAULT_SOCKET;
	if (!strncmp(host, "unix://", 7))
		host += 7;
	return host[0] == '/' ? host : NULL;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return -1;
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- the reply ---- */

struct reader {
	int fd;
	char buf[65536];
	size_t start, end;
};

/* More bytes into the buffer; 0 at the end of the reply. */
static ssize_t fill(struct reader *r)
{
	if (r->start == r->end)
		r->start = r->end = 0;
	if (r->end == sizeof(r->buf)) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	for (;;) {
		ssize_t n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			r->end += (size_t)n;
		return n;
	}
}

/* The status of the reply's first line once its headers are in; -1 when they never come. */
static int read_status(struct reader *r)
{
	for (;;) {
		char *eoh = memmem(r->buf, r->end, "\r\n\r\n", 4);
		if (eoh) {
			int status = -1;
			if (r->end > 12 && !strncmp(r->buf, "HTTP/1.", 7))
				status = atoi(r->buf + 9);
			r->start = (size_t)(eoh + 4 - r->buf);
			return status;
		}
		if (r->end == sizeof(r->buf) || fill(r) <= 0)
			return -1;
	}
}

/* Copies frames to stdout and stderr until the exit frame; its status, or 1 when the reply ends without one. */
static int relay(struct reader *r)
{
	for (;;) {
		while (r->end - r->start < 8)
			if (fill(r) <= 0)
				goto cut;
		const unsigned char *h = (const unsigned char *)r->buf + r->start;
		int stream = h[0];
		uint32_t left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		r->start += 8;
		if (stream == FRAME_EXIT) {
			char status[16] = "";
			if (left >= sizeof(status))
				goto cut;
			while (r->end - r->start < left)
				if (fill(r) <= 0)
					goto cut;
			memcpy(status, r->buf + r->start, left);
			return atoi(status);
		}
		int out = stream == FRAME_STDERR ? STDERR_FILENO : STDOUT_FILENO;
		while (left > 0) {
			if (r->start == r->end && fill(r) <= 0)
				goto cut;
			size_t n = r->end - r->start < left ? r->end - r->start : left;
			if (write_all(out, r->buf + r->start, n) < 0)
				return 1;
			r->start += n;
			left -= (uint32_t)n;
		}
	}
cut:
	fprintf(stderr, "bpfnet: the daemon ended the command before its exit status\n");
	return 1;
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *path = socket_path(argv);
	if (!path || getenv("BPFNET_NODE_CLI"))
		run_node_cli(argv);
	int fd = connect_unix(path);
	if (fd < 0)
		run_node_cli(argv); /* it says what is wrong, as it always has */

	struct buf body = {0};
	puts_(&body, "{\"Args\":");
	put_json_list(&body, argv + 1);
	puts_(&body, ",\"Env\":");
	put_json_list(&body, environ);
	puts_(&body, "}");
	char head[256];
	int hn = snprintf(head, sizeof(head),
			  "POST /bpfnet/cli HTTP/1.0\r\nHost: bpfnet\r\nUser-Agent: bpfnet-thin-client\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			  body.len);
	signal(SIGPIPE, SIG_IGN); /* a daemon gone mid-request is an error below, not a signal */
	if (write_all(fd, head, (size_t)hn) < 0 || write_all(fd, body.p, body.len) < 0) {
		close(fd);
		signal(SIGPIPE, SIG_DFL);
		run_node_cli(argv);
	}
	free(body.p);
	/* Output to a closed pipe ends this process as it ends a Go program (`bpfnet ps | head -1`). */
	signal(SIGPIPE, SIG_DFL);

	static struct reader r;
	r.fd = fd;
	int status = read_status(&r);
	if (status != 200) {
		close(fd);
		run_node_cli(argv);
	}
	return relay(&r);
}
