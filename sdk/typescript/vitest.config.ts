import { defineConfig } from 'vitest/config';

// Node 20 has no global WebSocket unless started with --experimental-websocket
// (Node ≥ 22 has one by default). The `node` project runs everything the way
// the SDK works on plain Node 20 (the `ws` package); the `global-websocket`
// project runs the messaging suite again on the WHATWG WebSocket that browsers
// also have. Vitest takes execArgv per pool, not per project, so that project
// uses the `threads` pool and the flag goes to that pool's workers.
const globalWebSocketFlag = '--experimental-websocket';
const canRunGlobalWebSocket = process.allowedNodeEnvironmentFlags.has(globalWebSocketFlag);

export default defineConfig({
  test: {
    // Each test file starts its own `confab serve`; two at a time suits a small machine.
    poolOptions: {
      forks: { maxForks: 2, minForks: 1 },
      threads: { maxThreads: 2, minThreads: 1, execArgv: [globalWebSocketFlag] },
    },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true as const, test: { name: 'node', pool: 'forks', include: ['test/**/*.test.ts'] } },
      ...(canRunGlobalWebSocket
        ? [
            {
              extends: true as const,
              test: {
                name: 'global-websocket',
                pool: 'threads' as const,
                include: ['test/messaging.test.ts', 'test/transport.test.ts'],
                env: { CONFAB_TEST_GLOBAL_WEBSOCKET: '1' },
              },
            },
          ]
        : []),
    ],
  },
});
