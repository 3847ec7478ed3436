import { InputError } from './errors.js';
import type { FrontEnd } from './front-end.js';
import { checkHostKeyPolicy, parseFingerprints, parseKnownHostsInput } from './host-key-policy.js';
import type { HostFingerprint, KnownHostEntry } from './host-keys.js';
import { type HostResolution, type HostTarget, type SshHost, USER, parseHosts, parseJumpHost, parsePort } from './host-targets.js';
import { type EnvVar, parseHookEnv } from './hook-env.js';
import { buildsRelease, parseStages } from './stages.js';
import {
  COMMANDS,
  type Command,
  type InputName,
  type RawInputs,
  type RunContext,
  oneLine,
  parseBoolean,
  parseCount,
  parseDataPath,
  parseDeployPath,
  parseDriftIgnore,
  parseRef,
  parseRelease,
  parseRepository,
  parseRollbackTo,
  parseScript,
  parseSeconds,
  parseSharedPaths,
  parseUpload,
  parseUploadExclude,
  printable,
} from './inputs.js';
import { type SshAuth, parseAuth } from './ssh-auth.js';

export interface Settings {
  command: Command;
  /** Which front end gave the inputs, so that advice names them as its user writes them. */
  frontEnd: FrontEnd;
  /** Every host of the step, in the order given. */
  targets: HostTarget[];
  /** A bastion to reach the hosts through (the jump-host input), or null. */
  jumpHost: SshHost | null;
  maxParallel: number;
  /** Shell run after the flip (e.g. a reload), and the health check after it. */
  activate: string;
  verify: string;
  /** How a host without an IdentityFile of its own logs in; null when no host is reached over SSH, or every one has its own. */
  auth: SshAuth | null;
  knownHosts: KnownHostEntry[];
  hostFingerprints: HostFingerprint[];
  insecureIgnoreHostKey: boolean;
  deployPath: string;
  release: string;
  repository: string;
  ref: string;
  /** Absolute path on the runner of the tree or file to ship ('' for none); read by readUpload before connecting. */
  upload: string;
  /** gitignore-style lines left out of the upload (.git/ always is). */
  uploadExclude: string[];
  build: string;
  /** Paths inside each release that live in shared/ instead (SPEC step 7). */
  sharedDirs: string[];
  sharedFiles: string[];
  /** Shell that migrates a copy of the data (SPEC step 8); '' for none. */
  migrate: string;
  /** Run before the data copy; exit 0: the data is up to date, no copy, no migration ('' for none). */
  migrateCheck: string;
  dataPath: string;
  rollbackData: boolean;
  /** env, then secret-env (those marked secret); no name twice. */
  env: EnvVar[];
  commandTimeout: number;
  connectTimeout: number;
  lockTimeout: number;
  keepReleases: number;
  /** With rollback: the release to go to; '' for the previous one. */
  rollbackTo: string;
  /** Rebuild a complete release that is not current even when its source is unchanged (never the current one). */
  forceBuild: boolean;
  /** With deploy: the first `canary` hosts flip and pass activate and verify before the others (0: all at once); stages.ts. */
  canary: number;
  /** Seconds to wait after the canary passed before verify runs on it again (0: no second verify). */
  canaryWait: number;
  /** With status: compare the current release with the content recorded at the end of its build, leaving out driftIgnore's paths. */
  drift: boolean;
  driftIgnore: string[];
  /** Record each release's content at the end of its build (deploy). */
  driftRecord: boolean;
  dryRun: boolean;
  actor: string;
  runUrl: string;
}

/** Turn raw inputs into validated settings, or throw an InputError naming the input. */
export function parseSettings(raw: RawInputs, context: RunContext = {}): Settings {
  const get = (name: InputName): string => (raw[name] ?? '').trim();

  const command = (get('command') || 'deploy') as Command;
  if (!COMMANDS.includes(command)) {
    throw new InputError('command', `'${printable(command)}' is not a command`, COMMANDS.map((name) => `'${name}'`).join(', '));
  }

  const port = get('port') ? parsePort('port', get('port')) : null;
  const user = get('user');
  if (user && !USER.test(user)) {
    throw new InputError('user', `'${printable(user)}' is not a valid login name`, 'letters, digits, _ . - (at most 32, not starting with - or a digit)');
  }
  const privateKey = raw['private-key'] ?? '';
  const passphrase = raw['passphrase'] ?? '';
  const knownHostsText = raw['known-hosts'] ?? '';
  const resolution: HostResolution = {
    sshConfig: context.sshConfig,
    localUser: context.localUser,
    passphrase,
    agent: Boolean(context.sshAgent),
    frontEnd: context.frontEnd,
    // An input that is given replaces what ssh-config says about every host.
    identity: !privateKey.trim(),
    knownHosts: !knownHostsText.trim(),
    proxyJump: !get('jump-host'),
  };
  const targets = parseHosts(get('hosts'), user, port, resolution);
  const jumpHost = parseJumpHost(get('jump-host'), user, port, resolution);
  if (jumpHost && targets[0].kind === 'local') {
    throw new InputError('jump-host', "is set, but hosts is 'local', which needs no SSH", "no jump-host with 'local', or SSH hosts");
  }

  const insecureIgnoreHostKey = parseBoolean('insecure-ignore-host-key', get('insecure-ignore-host-key'), false);
  // The CLI's ~/.ssh/known_hosts stands in for known-hosts only when host-fingerprint is not given either.
  const knownHosts = parseKnownHostsInput((knownHostsText.trim() || get('host-fingerprint')) ? knownHostsText : (context.defaultKnownHosts ?? ''));
  const sshHosts = targets.filter((target) => target.kind === 'ssh');
  const bastions = [...(jumpHost ? [jumpHost] : []), ...sshHosts.flatMap((target) => (target.jump ? [target.jump] : []))];
  const sshTargets = [...sshHosts, ...bastions.filter((bastion, index) => bastions.findIndex((other) => other.label === bastion.label) === index)];
  const hostFingerprints = parseFingerprints(get('host-fingerprint'), sshTargets);
  const auth = sshTargets.some((target) => !target.auth) ? parseAuth(privateKey, passphrase, context) : null;
  for (const target of sshTargets) checkHostKeyPolicy(target, knownHosts, hostFingerprints, insecureIgnoreHostKey);

  // Only a deploy (or a prepare) names a release; the other commands work on what is there.
  const builds = buildsRelease(command);
  const release = builds ? parseRelease(get('release'), context) : '';
  const repository = parseRepository(get('repository'));
  const ref = builds ? parseRef(get('ref') || release) : '';
  const upload = builds ? parseUpload(get('upload'), repository, context.workspace) : '';

  const deployPath = parseDeployPath(get('deploy-path'));
  const migrate = parseScript('migrate', raw['migrate'] ?? '');
  const migrateCheck = parseScript('migrate-check', raw['migrate-check'] ?? '');
  if (migrateCheck && !migrate) {
    throw new InputError('migrate-check', 'is set, but migrate is not: it decides whether the data needs migrating', 'migrate set as well, or no migrate-check');
  }
  const shared = parseSharedPaths(raw['shared-dirs'] ?? '', raw['shared-files'] ?? '');
  return {
    command,
    frontEnd: context.frontEnd ?? 'action',
    targets,
    jumpHost,
    maxParallel: parseCount('max-parallel', get('max-parallel'), 16, 256, 'hosts worked on at once'),
    activate: parseScript('activate', raw['activate'] ?? ''),
    verify: parseScript('verify', raw['verify'] ?? ''),
    auth,
    knownHosts,
    hostFingerprints,
    insecureIgnoreHostKey,
    deployPath,
    release,
    repository,
    ref,
    upload,
    uploadExclude: upload ? parseUploadExclude(raw['upload-exclude'] ?? '') : [],
    build: parseScript('build', raw['build'] ?? ''),
    sharedDirs: shared.dirs,
    sharedFiles: shared.files,
    migrate,
    migrateCheck,
    dataPath: parseDataPath(get('data-path'), deployPath),
    rollbackData: parseBoolean('rollback-data', get('rollback-data'), true),
    env: parseHookEnv(raw['env'] ?? '', raw['secret-env'] ?? ''),
    commandTimeout: parseSeconds('command-timeout', get('command-timeout'), 3600, 7 * 24 * 3600),
    connectTimeout: parseSeconds('connect-timeout', get('connect-timeout'), 30, 600),
    lockTimeout: parseSeconds('lock-timeout', get('lock-timeout'), 300, 24 * 3600, 0),
    keepReleases: parseCount('keep-releases', get('keep-releases'), 5),
    rollbackTo: parseRollbackTo(get('rollback-to')),
    forceBuild: parseBoolean('force-build', get('force-build'), false),
    ...parseStages(command, get('canary'), get('canary-wait'), targets.length, Boolean((raw['verify'] ?? '').trim())),
    drift: command === 'status' && parseBoolean('drift', get('drift'), false),
    driftIgnore: command === 'status' ? parseDriftIgnore(raw['drift-ignore'] ?? '') : [],
    driftRecord: parseBoolean('drift-record', get('drift-record'), true),
    dryRun: parseBoolean('dry-run', get('dry-run'), false),
    actor: oneLine(context.actor ?? ''),
    runUrl: oneLine(context.runUrl ?? ''),
  };
}
