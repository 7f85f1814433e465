import { behaviourSuite } from '../contract/behaviour-suite.js';

behaviourSuite('iptables');
