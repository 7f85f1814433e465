/* What every bpfnet program includes: kernel types (CO-RE), helpers and the
 * constants vmlinux.h cannot carry because they are macros. */
#ifndef BPFNET_LIB_COMMON_H
#define BPFNET_LIB_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* A BPF-to-BPF call with its own stack frame: branches that never run together (the two
 * families) then do not add their locals into one frame past the 512-byte limit. */
#define BPFNET_NOINLINE static __attribute__((noinline))

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

/* "Not ours: carry on." With tcx this lets the next program on the hook run (TCX_NEXT) and,
 * after the last one, passes the packet; TC_ACT_OK would end the chain here. */
#define TC_PASS TC_ACT_UNSPEC

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_ALEN 6
#define ETH_HLEN 14

/* The datapath's clock for flow expiry: CLOCK_MONOTONIC at tick resolution (a few ms), which
 * the daemon compares with CLOCK_MONOTONIC too. bpf_ktime_get_ns reads the clock source on
 * every call — a TSC read that a virtual machine may trap (read_tsc was 1.7 % of all CPU time
 * under short connections here, half of it under the datapath); the coarse clock reads the time
 * the last tick stored. Timeouts are whole seconds: a tick early or late changes nothing. */
#define dp_now() bpf_ktime_get_coarse_ns()

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#endif
