/* XDP probe: counts packets on an interface's receive path and passes them on. */
#include "lib/probe.h"

SEC("xdp")
int probe_xdp(struct xdp_md *ctx)
{
	probe_count(PROBE_SLOT_XDP, (void *)(long)ctx->data, (void *)(long)ctx->data_end, ctx->ingress_ifindex);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
