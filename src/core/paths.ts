/** Where things live under deploy-path (SPEC, "Layout on a host"). */

export function releasePath(deployPath: string, release: string): string {
  return `${deployPath}/releases/${release}`;
}

export function manifestPath(deployPath: string, release: string): string {
  return `${deployPath}/.tagflip/releases/${release}.json`;
}

export function sharedPath(deployPath: string): string {
  return `${deployPath}/shared`;
}

export function dataPath(deployPath: string): string {
  return `${deployPath}/data`;
}

/**
 * data-path as messages name it, so that `<label>/current` is a path the user
 * finds: relative to deploy-path when inside it (`data` by default), else absolute.
 */
export function dataLabel(deployPath: string, data: string): string {
  return data.startsWith(`${deployPath}/`) ? data.slice(deployPath.length + 1) : data;
}
