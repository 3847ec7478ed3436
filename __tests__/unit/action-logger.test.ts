import { describe, expect, test } from '@jest/globals';
import { ActionLogger } from '../../src/action/action.js';
import { captureStdout, runnerView } from '../support/runner-commands.js';

// The GitHub logger, as the runner reads it: what it writes to stdout.
const stdout = captureStdout();

const TOKEN = 'tagflip-0123456789abcdef0123456789abcdef';
const HOSTILE = ['::add-mask::hostile', '::error::hostile', '::set-output name=status::hostile', '::stop-commands::x', '::x::', `  ::warning::hostile`, '##[error]hostile'];

describe('ActionLogger', () => {
  test('plain lines go out inside a stop-commands block; tagflip’s own commands close it first', () => {
    const logger = new ActionLogger(TOKEN);
    logger.startGroup('build · local');
    HOSTILE.forEach((line) => logger.info(line));
    logger.warning('a warning');
    logger.info('more output');
    logger.endGroup();
    logger.error('build failed');
    expect(stdout.text.split('\n')).toEqual([
      '::group::build · local',
      `::stop-commands::${TOKEN}`,
      ...HOSTILE,
      `::${TOKEN}::`,
      '::warning::a warning',
      `::stop-commands::${TOKEN}`,
      'more output',
      `::${TOKEN}::`,
      '::endgroup::',
      '::error::build failed',
      '',
    ]);
    expect(runnerView(stdout.text)).toEqual({
      obeyed: ['::group::build · local', `::stop-commands::${TOKEN}`, '::warning::a warning', `::stop-commands::${TOKEN}`, '::endgroup::', '::error::build failed'],
      openBlock: '',
    });
  });

  test('commands() closes an open block once, and does nothing when none is open', () => {
    const logger = new ActionLogger(TOKEN);
    logger.commands();
    logger.info('x');
    logger.commands();
    logger.commands();
    expect(stdout.text).toBe(`::stop-commands::${TOKEN}\nx\n::${TOKEN}::\n`);
  });

  test('each logger has a fresh random token', () => {
    const tokens = [new ActionLogger(), new ActionLogger()].map((logger) => {
      stdout.text = '';
      logger.info('x');
      return stdout.text.split('\n')[0];
    });
    expect(tokens[0]).toMatch(/^::stop-commands::tagflip-[0-9a-f]{32}$/);
    expect(tokens[0]).not.toBe(tokens[1]);
  });

  test('hasSaid: an error annotated already, as it is or as annotations joined by "; "', () => {
    const logger = new ActionLogger(TOKEN);
    expect(logger.errorCount).toBe(0);
    logger.error('web1: build failed; fix the build');
    logger.error('NEEDS ATTENTION: web1 is on v2');
    expect(logger.errorCount).toBe(2);
    expect(logger.hasSaid('web1: build failed; fix the build')).toBe(true);
    expect(logger.hasSaid('web1: build failed; fix the build; NEEDS ATTENTION: web1 is on v2')).toBe(true);
    expect(logger.hasSaid('web1: build failed')).toBe(false);
    expect(logger.hasSaid('web1: build failed; fix the build; something else')).toBe(false);
    expect(logger.hasSaid('web2: build failed; fix the build')).toBe(false);
    // A fleet's line carries its host as "host | "; the host's error in the result does not.
    logger.error('deploy@web2 | NEEDS ATTENTION: web2 is on v1');
    expect(logger.hasSaid('web2: build failed; fix the build; NEEDS ATTENTION: web2 is on v1')).toBe(false);
    expect(logger.hasSaid('web1: build failed; fix the build; NEEDS ATTENTION: web2 is on v1')).toBe(true);
  });
});

describe('ActionLogger: control characters from hosts', () => {
  test('escaped in every kind of line, colours kept; a line with a secret and a control character is masked before it is escaped', () => {
    const logger = new ActionLogger(TOKEN);
    logger.addSecrets(['pass\u0001word']);
    logger.startGroup('build \u001b]0;x\u0007');
    logger.info('\u001b[32mgreen\u001b[0m \u001b[2Jclear \u001b]0;title\u0007');
    logger.info('echo pass\u0001word');
    logger.warning('\rfake');
    expect(stdout.text.split('\n')).toEqual([
      '::add-mask::pass\u0001word',
      '::group::build \\x1b]0;x\\x07',
      `::stop-commands::${TOKEN}`,
      '\u001b[32mgreen\u001b[0m \\x1b[2Jclear \\x1b]0;title\\x07',
      'echo ***',
      `::${TOKEN}::`,
      '::warning::\\x0dfake',
      '',
    ]);
  });
});
