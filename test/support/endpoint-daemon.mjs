// A bpfnet daemon whose service layer a test drives for endpoints of namespaces bpfnet does
// not own ({seq, op: create|join|leave|delete, args} per stdin line; see daemon-harness.mjs).
import { serveDaemon } from './daemon-harness.mjs';

await serveDaemon((daemon) => ({
  create: (a) => daemon.networks.createEndpoint(a),
  join: (a) => daemon.networks.foreign.join(a.id, a),
  leave: (a) => daemon.networks.foreign.leave(a.id),
  delete: (a) => daemon.networks.foreign.delete(a.id),
}));
