import { ipv6Suite } from '../contract/ipv6-suite.js';

ipv6Suite('ebpf');
