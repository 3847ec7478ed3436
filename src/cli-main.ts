import { runCli } from './cli/cli.js';
import { writerBacklog } from './core/logger.js';

void runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stderrBacklog: writerBacklog(process.stderr),
}).then((code) => {
  process.exitCode = code;
});
