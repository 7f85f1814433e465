// One simulated host of an overlay test: a bpfnet daemon whose view of the endpoints on other
// hosts the test feeds, standing in for the cluster state's watch ({seq, op: remote-add|
// remote-remove|remote-replace, args} per stdin line; see daemon-harness.mjs).
import { serveDaemon } from './daemon-harness.mjs';

await serveDaemon((daemon) => ({
  'remote-add': (a) => daemon.remoteEndpoints.upsert(a),
  'remote-remove': (a) => daemon.remoteEndpoints.remove(a),
  'remote-replace': (a) => daemon.remoteEndpoints.replace(a),
}));
