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
 * A host's step becomes a line "host | ── step", said before the step's first
 * line: a step that prints nothing shows nothing.
 */
export function hostLogger(logger: Logger, host: string): Logger {
  const prefix = (message: string) => (message.startsWith(`${host}: `) ? message : `${host} | ${message}`);
  let step: string | null = null;
  const line = (write: (message: string) => void) => (message: string) => {
    if (step !== null) logger.info(prefix(`── ${step}`));
    step = null;
    write(prefix(message));
  };
  return {
    info: line((message) => logger.info(message)),
    warning: line((message) => logger.warning(message)),
    error: line((message) => logger.error(message)),
    debug: (message) => logger.debug(prefix(message)),
    startGroup: (name) => {
      step = name;
    },
    endGroup: () => {
      step = null;
    },
  };
}

/**
 * Log groups as a reader expects them, whatever order callers open and close
 * them in (the steps of one host, the phases of a fleet, a step that starts
 * as another ends): never nested, never empty. A group is shown from its
 * first line, so one with nothing in it is not shown at all; opening a group
 * ends the one that is shown; ending one when none is shown says nothing.
 * Debug lines count as lines only where they are shown.
 */
export function tidyGroups(logger: Logger, debugShown: boolean): Logger {
  let waiting: string | null = null;
  let shown = false;
  const end = () => {
    if (shown) logger.endGroup();
    shown = false;
  };
  const show = () => {
    if (waiting === null) return;
    logger.startGroup(waiting);
    waiting = null;
    shown = true;
  };
  const line = (write: (message: string) => void) => (message: string) => {
    show();
    write(message);
  };
  return {
    info: line((message) => logger.info(message)),
    warning: line((message) => logger.warning(message)),
    error: line((message) => logger.error(message)),
    debug: (message) => {
      if (debugShown) show();
      logger.debug(message);
    },
    startGroup: (name) => {
      end();
      waiting = name;
    },
    endGroup: () => {
      waiting = null;
      end();
    },
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
