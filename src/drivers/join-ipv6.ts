/**
 * IPv6 in a namespace a driver joins an endpoint with an IPv6 address into: switched on (an
 * earlier network, run or datapath may have switched it off, and then an IPv6 route is refused)
 * and router advertisements ignored (the routes are the driver's). Written only inside the
 * namespace the joiner gave for this endpoint, never the host's.
 */
import { writeSysctls } from '../system/sysctl.js';

export async function enableJoinIPv6(endpointId: string, netnsPath: string): Promise<void> {
  await writeSysctls({ netnsPath }, {
    'net.ipv6.conf.all.disable_ipv6': '0',
    'net.ipv6.conf.default.disable_ipv6': '0',
    'net.ipv6.conf.all.accept_ra': '0',
    'net.ipv6.conf.default.accept_ra': '0',
  }).catch((err: Error) => {
    throw new Error(`could not enable IPv6 in ${netnsPath} for endpoint ${endpointId.slice(0, 12)}: ${err.message}`);
  });
}
