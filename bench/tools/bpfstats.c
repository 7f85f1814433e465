/*
 * Where the datapath's time goes: the kernel's run-time statistics of chosen BPF programs over an
 * interval. Statistics are switched on with BPF_ENABLE_STATS, which lasts as long as this process
 * holds the descriptor it returns (no sysctl: nothing outside the process changes), and each
 * program's run count and run time are read before and after SECONDS.
 *
 * Prints one JSON object: {"seconds": S, "progs": [{"id", "name", "runs", "ns"}, ...]}, the
 * deltas over the interval, one per program id given.
 *
 * usage: bpfstats SECONDS PROG_ID...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROGS 64

static int sys_bpf(int cmd, union bpf_attr *attr)
{
  return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

struct sample {
  uint32_t id;
  int fd;
  char name[BPF_OBJ_NAME_LEN];
  uint64_t runs, ns;
};

static int read_stats(struct sample *s)
{
  struct bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = (uint32_t)s->fd;
  attr.info.info_len = sizeof(info);
  attr.info.info = (uint64_t)(uintptr_t)&info;
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
    return -1;
  memcpy(s->name, info.name, sizeof(s->name));
  s->runs = info.run_cnt;
  s->ns = info.run_time_ns;
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 3 || argc - 2 > MAX_PROGS) {
    fprintf(stderr, "usage: bpfstats SECONDS PROG_ID... (at most %d ids)\n", MAX_PROGS);
    return 2;
  }
  double seconds = atof(argv[1]);
  if (!(seconds > 0 && seconds <= 3600)) {
    fprintf(stderr, "bpfstats: SECONDS must be in (0, 3600]\n");
    return 2;
  }
  int n = argc - 2;
  static struct sample before[MAX_PROGS], after[MAX_PROGS];
  for (int i = 0; i < n; i++) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = (uint32_t)strtoul(argv[i + 2], NULL, 10);
    int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (fd < 0) {
      fprintf(stderr, "bpfstats: program %s: %s\n", argv[i + 2], strerror(errno));
      return 1;
    }
    before[i].id = after[i].id = attr.prog_id;
    before[i].fd = after[i].fd = fd;
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.enable_stats.type = BPF_STATS_RUN_TIME;
  int stats = sys_bpf(BPF_ENABLE_STATS, &attr);
  if (stats < 0) {
    fprintf(stderr, "bpfstats: BPF_ENABLE_STATS: %s\n", strerror(errno));
    return 1;
  }
  for (int i = 0; i < n; i++)
    if (read_stats(&before[i]) < 0) {
      fprintf(stderr, "bpfstats: program %u: %s\n", before[i].id, strerror(errno));
      return 1;
    }
  struct timespec ts = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
  for (int i = 0; i < n; i++)
    if (read_stats(&after[i]) < 0) {
      fprintf(stderr, "bpfstats: program %u: %s\n", after[i].id, strerror(errno));
      return 1;
    }
  close(stats);
  printf("{\"seconds\":%g,\"progs\":[", seconds);
  for (int i = 0; i < n; i++)
    printf("%s{\"id\":%u,\"name\":\"%s\",\"runs\":%llu,\"ns\":%llu}", i ? "," : "", after[i].id, after[i].name,
           (unsigned long long)(after[i].runs - before[i].runs), (unsigned long long)(after[i].ns - before[i].ns));
  printf("]}\n");
  return 0;
}
