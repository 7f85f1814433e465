/* What handlers return: a TC verdict, or DROP(reason) for the entry program's one exit
 * (tc_exit in nat.h) to count, so no path can drop a packet uncounted. */
#ifndef BPFNET_LIB_VERDICT_H
#define BPFNET_LIB_VERDICT_H

#include "../shared/drop_reasons.h"

#define DROP_BASE (-1000)
#define DROP(reason) (DROP_BASE - (int)(reason))

#endif
