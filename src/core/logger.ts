/** Where a run reports progress; the action and the CLI each provide one. */
export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  startGroup(name: string): void;
  endGroup(): void;
}

/** A logger that discards everything (tests, quiet callers). */
export const silentLogger: Logger = {
  info: () => undefined,
  warning: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  startGroup: () => undefined,
  endGroup: () => undefined,
};

/**
 * With several hosts at once their lines interleave: prefix each with its
 * host, and leave log groups to the fleet (GitHub's groups cannot interleave).
 */
export function hostLogger(logger: Logger, host: string): Logger {
  const prefix = (message: string) => (message.startsWith(`${host}: `) ? message : `${host} | ${message}`);
  return {
    info: (message) => logger.info(prefix(message)),
    warning: (message) => logger.warning(prefix(message)),
    error: (message) => logger.error(prefix(message)),
    debug: (message) => logger.debug(prefix(message)),
    startGroup: (name) => logger.info(prefix(`── ${name}`)),
    endGroup: () => undefined,
  };
}

/** A function that replaces every given secret in a text by ***. */
export function secretMasker(secrets: readonly string[]): (text: string) => string {
  // Longest first: a secret that contains a shorter one is replaced whole.
  const ordered = [...new Set(secrets.filter((secret) => secret !== ''))].sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((masked, secret) => masked.split(secret).join('***'), text);
}

/**
 * The CLI has no runner to mask secrets for it: everything it logs, streamed
 * build output included, passes through this first.
 */
export function maskingLogger(logger: Logger, secrets: readonly string[]): Logger {
  const mask = secretMasker(secrets);
  return {
    info: (message) => logger.info(mask(message)),
    warning: (message) => logger.warning(mask(message)),
    error: (message) => logger.error(mask(message)),
    debug: (message) => logger.debug(mask(message)),
    startGroup: (name) => logger.startGroup(mask(name)),
    endGroup: () => logger.endGroup(),
  };
}
