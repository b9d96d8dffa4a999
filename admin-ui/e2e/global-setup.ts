import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startConfab, startStaticProxy, stopConfab } from './server';
import { startFakePush } from './fake-push';

export default async function globalSetup() {
  const bin = process.env.CONFAB_BIN;
  if (!bin) throw new Error('set CONFAB_BIN to a confab binary (e.g. target/debug/confab)');
  const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  // Xiaomi pushes (test pushes and the push worker's) go to a local fake.
  const push = await startFakePush();
  process.env.CONFAB_PUSH_XIAOMI_URL = push.url;
  process.env.CONFAB_PUSH_CA_FILE = push.caFile;
  const confab = await startConfab(bin, dist);
  let baseURL = confab.url;
  let proxy: Awaited<ReturnType<typeof startStaticProxy>> | undefined;
  const index = await fetch(`${confab.url}/console/`).then(
    async (r) => (r.ok ? r.text() : ''),
    () => '',
  );
  if (!index.includes('/console/assets/')) {
    // This binary does not serve the console: serve dist beside it.
    console.warn(`[e2e] ${bin} does not serve /console/; serving admin-ui/dist from a local proxy`);
    proxy = await startStaticProxy(dist, confab.url);
    baseURL = proxy.url;
  }
  process.env.E2E_BASE_URL = baseURL;
  process.env.E2E_API_URL = confab.url;
  process.env.E2E_OPERATOR_PASSWORD = confab.password;
  return async () => {
    proxy?.server.close();
    if (process.env.E2E_SERVER_LOG) console.log(confab.log());
    await stopConfab(confab);
    push.close();
  };
}
