// A file system of its own for a part that writes thousands of files (upload, drift).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchError, undo } from './processes.mjs';
import { say } from './report.mjs';

/**
 * ext4 on an image made for the part (its inode tables written by mkfs, not
 * by a kernel thread during the runs), mounted at `<tmp>/<name>-disk`, owned by
 * the deploy user, and dropped whole when the part is over (drop(); on any
 * exit, the undo stack). The root file system here is shared with everything
 * else on the machine, and a mass delete there (anyone's: the previous part's
 * or bench run's own clean-up among them) made the next minutes' file
 * creations cost 2 to 4 s of kernel CPU (recently_deleted() under
 * ext4_create): runs begun then measured the allocator, tagflip and its peers
 * alike. Dropping the image frees one inode, not thousands. `size` is
 * truncate's (sparse: only what is written takes room).
 */
export function freshDisk(ctx, name, size) {
  const image = path.join(ctx.tmp, `${name}-disk.img`);
  const root = path.join(ctx.tmp, `${name}-disk`);
  const must = (command, args) => {
    const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) throw new BenchError(`${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  };
  fs.mkdirSync(root, { mode: 0o755 });
  // Unmounted, the directory is empty; without an image of its own it holds the runs' trees.
  const drop = () => {
    if (spawnSync('mountpoint', ['-q', root]).status === 0 && spawnSync('umount', [root]).status !== 0) spawnSync('umount', ['-l', root]);
    fs.rmSync(image, { force: true });
    fs.rmSync(root, { recursive: true, force: true });
  };
  undo.push(drop);
  try {
    must('truncate', ['-s', size, image]);
    must('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    must('mount', ['-o', 'loop', image, root]);
  } catch (error) {
    // A machine without loop devices (a container) still runs the part, as before, and says so.
    fs.rmSync(image, { force: true });
    say(`${name}: no file system of its own (${error.message}); writing to ${root} on the root file system, where a recent mass delete slows file creation`);
  }
  fs.chownSync(root, ctx.ids.uid, ctx.ids.gid);
  return {
    root,
    drop: () => {
      const at = undo.indexOf(drop);
      if (at >= 0) undo.splice(at, 1);
      drop();
    },
  };
}
