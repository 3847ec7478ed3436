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
