import { InputError } from '../core/errors.js';

/**
 * The `upload` input cannot be shipped: missing, empty, unreadable, a hostile
 * archive entry, or a file that changed while being sent. It is an InputError
 * (the input is named) so it is refused before anything reaches a host.
 */
export class UploadError extends InputError {
  constructor(
    problem: string,
    expected: string,
    /** The file or archive entry at fault, relative to the upload, when there is one. */
    readonly entry?: string,
  ) {
    super('upload', problem, expected);
    this.name = 'UploadError';
  }
}

const READABLE = 'files and directories the runner can read';

export function unreadable(path: string, error: unknown): UploadError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  const problem = code === 'ENOENT' ? 'disappeared while being read' : code === 'ELOOP' ? 'became a symlink while being read' : `cannot be read (${code})`;
  return new UploadError(`'${path}' ${problem}`, READABLE, path);
}
