import { datapathV6Suite } from '../contract/datapath-v6-suite.js';

// Docker's ip6tables rules do no anti-spoofing, and cannot DNAT ::1 (its userland proxy serves [::1] bindings).
datapathV6Suite('iptables', { antiSpoofing: false, loopback6: false });
