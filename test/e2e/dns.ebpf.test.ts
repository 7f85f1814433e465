import { dnsSuite } from '../contract/dns-suite.js';

dnsSuite('ebpf');
