/**
 * An overlay network's VXLAN id: -o com.docker.network.driver.overlay.vxlanid_list=N when
 * given (one id: bpfnet networks have one IPv4 subnet), else derived from the network id,
 * which is the same on every host, so every host derives the same VNI. Docker hands ids
 * out from 4096 upwards; derived ones stay in that range too.
 */
import { invalid } from '../../errors.js';
import type { NetworkRecord } from '../../networks/model.js';

export const OverlayOption = { vxlanIdList: 'com.docker.network.driver.overlay.vxlanid_list' } as const;

export const VNI_MIN = 1;
export const VNI_MAX = 0xffffff;
const DERIVED_BASE = 4096;

/** The VNI of a -o value, or a moby-like error naming it. */
export function parseVni(text: string): number {
  const vni = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isInteger(vni) || vni < VNI_MIN || vni > VNI_MAX)
    throw invalid(`invalid value "${text}" for option ${OverlayOption.vxlanIdList}: expected one VXLAN id in ${VNI_MIN}-${VNI_MAX}`);
  return vni;
}

export function vniOf(net: Pick<NetworkRecord, 'id' | 'options'>): number {
  const given = net.options[OverlayOption.vxlanIdList];
  if (given !== undefined) return parseVni(given);
  return DERIVED_BASE + (parseInt(net.id.slice(0, 8), 16) % (VNI_MAX + 1 - DERIVED_BASE));
}
