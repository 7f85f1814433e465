import { sandboxModesSuite } from '../contract/sandbox-modes-suite.js';

sandboxModesSuite('iptables');
