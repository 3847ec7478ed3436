/** Where a run reports progress; the action and the CLI each provide one. */
export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  startGroup(name: string): void;
  endGroup(): void;
  /**
   * Values this log must never show. Whoever masks whole lines (the CLI's
   * maskingLogger, the runner's ::add-mask::) cannot mask a secret that a cut
   * split in two; so a host's output line that is cut is masked with these
   * before it is cut (remote/line-splitter.ts).
   */
  readonly secrets?: readonly string[];
  /**
   * When the writer behind this log is full (a slow reader of its pipe): a
   * promise that resolves once it has drained; undefined otherwise. A host's
   * output waits for it, so that what a host prints is not held in memory.
   */
  backlog?(): Promise<void> | undefined;
}

/**
 * The backlog of a stream the log is written to: while it wants a 'drain'
 * (write() returned false), one promise for every reader that asks, resolved by
 * the drain, or by the stream's close (an error, say, which is the stream's
 * own to report).
 */
export function writerBacklog(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean }): () => Promise<void> | undefined {
  let drained: Promise<void> | undefined;
  return () => {
    if (!stream.writableNeedDrain) return undefined;
    drained ??= new Promise<void>((resolve) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', done);
        drained = undefined;
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
    });
    return drained;
  };
}

/** What every wrapper of a logger passes on unchanged: its secrets and its writer's backlog. */
function passOn(logger: Logger): Pick<Logger, 'secrets' | 'backlog'> {
  return { secrets: logger.secrets, backlog: () => logger.backlog?.() };
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
    ...passOn(logger),
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
    ...passOn(logger),
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
    ...passOn(logger),
    secrets: [...(logger.secrets ?? []), ...secrets],
    info: (message) => logger.info(mask(message)),
    warning: (message) => logger.warning(mask(message)),
    error: (message) => logger.error(mask(message)),
    debug: (message) => logger.debug(mask(message)),
    startGroup: (name) => logger.startGroup(mask(name)),
    endGroup: () => logger.endGroup(),
  };
}
