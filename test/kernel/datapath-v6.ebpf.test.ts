import { datapathV6Suite } from '../contract/datapath-v6-suite.js';

datapathV6Suite('ebpf', { antiSpoofing: true, loopback6: true });
