/**
 * The drivers a daemon knows, by name. Each driver brings its capabilities; the services ask
 * those (does the datapath forward for it? does a sandbox on it have a namespace?) instead of
 * comparing names, so a new driver is one registration and not a dozen branches.
 */
import { forbidden, notFound, ServiceError } from '../errors.js';
import type { Driver } from './driver.js';

export class DriverRegistry {
  readonly #drivers = new Map<string, Driver>();

  constructor(drivers: readonly Driver[] = []) {
    for (const d of drivers) this.register(d);
  }

  /** Adds a driver; a second driver under a taken name is a programming error. */
  register(driver: Driver): void {
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(driver.name)) throw new Error(`driver name "${driver.name}" is not a valid driver name`);
    if (this.#drivers.has(driver.name)) throw new Error(`driver "${driver.name}" is already registered`);
    this.#drivers.set(driver.name, driver);
  }

  names(): string[] {
    return [...this.#drivers.keys()];
  }

  has(name: string): boolean {
    return this.#drivers.has(name);
  }

  /** The driver of a stored network or a request; an unknown one gets moby's 404 ("plugin "X" not found"). */
  get(name: string): Driver {
    const d = this.#drivers.get(name);
    if (!d) throw notFound(`plugin "${name}" not found`);
    return d;
  }

  /** The driver a user asks for in `network create`: known, and one users may create networks of. */
  forNewNetwork(name: string): Driver {
    const d = this.get(name);
    if (!d.capabilities.userNetworks) throw forbidden(`only one instance of "${name}" network is allowed`);
    return d;
  }
}

/** The error a driver's `exclusive` capability describes. */
export function exclusiveError(driver: Driver): ServiceError | undefined {
  const rule = driver.capabilities.exclusive;
  return rule ? new ServiceError(rule.status, rule.message) : undefined;
}
