/**
 * The version of tagflip, from package.json: ncc inlines it into the bundle.
 * A module of its own, because its import attribute keeps ncc's asset
 * relocator from reading the module it stands in, and cli-help.ts needs the
 * relocator to ship action.yml as dist/cli/action.yml.
 */
import packageJson from '../../package.json' with { type: 'json' };

export const VERSION: string = packageJson.version;
