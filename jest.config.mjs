export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['**/__tests__/**/*.test.ts'],
  testTimeout: 60000,
  // Stops the run with one line when sshd, a tool or root is missing.
  globalSetup: './__tests__/support/prerequisites.mjs',
  // Once every test has ended, exit. In one CI run of the whole suite a TCP
  // socket that a cut connection had left (reset by the other side, never read
  // again) kept Jest waiting after its results were written; each file alone
  // exits cleanly under --detectOpenHandles. Until that socket is found, a
  // finished run must not hang CI.
  forceExit: true,
};
