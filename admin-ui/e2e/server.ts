// Starts a real `confab serve` (binary from CONFAB_BIN) on free ports with a
// temporary data directory, and reads the operator's password from its
// first-start output.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';

export interface Confab {
  url: string;
  password: string;
  dataDir: string;
  proc: ChildProcess;
  log: () => string;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = netServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startConfab(bin: string, consoleDir?: string): Promise<Confab> {
  if (!existsSync(bin)) throw new Error(`CONFAB_BIN ${bin} does not exist (build it: cargo build -p confab)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'confab-console-e2e-'));
  const [http, tcp, grpc] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONFAB_DATA_DIR: dataDir,
    CONFAB_HTTP_ADDR: `127.0.0.1:${http}`,
    CONFAB_TCP_ADDR: `127.0.0.1:${tcp}`,
    CONFAB_GRPC_ADDR: `127.0.0.1:${grpc}`,
    CONFAB_LOG_FORMAT: 'json',
    // Usage counters reach the dashboards twice a second (default 10 s).
    CONFAB_USAGE_FLUSH_MS: '500',
  };
  if (consoleDir) env.CONFAB_CONSOLE_DIR = consoleDir;
  const proc = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited: number | null = null;
  proc.on('exit', (code) => (exited = code ?? -1));
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 60_000;
  let password: string | undefined;
  for (;;) {
    if (exited !== null) throw new Error(`confab serve exited (${exited}):\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`confab serve did not start in 60 s:\n${out}`);
    }
    password ??= /^\s*console:\s+user \S+ \/ password (\S+)\s*$/m.exec(out)?.[1];
    if (password) {
      try {
        const r = await fetch(`${url}/admin/v1/me`);
        if (r.status === 401) break;
      } catch {
        // not listening yet
      }
    }
    await sleep(100);
  }
  return { url, password, dataDir, proc, log: () => out };
}

export async function stopConfab(c: Confab) {
  if (c.proc.exitCode === null) {
    c.proc.kill('SIGTERM');
    await Promise.race([new Promise((r) => c.proc.once('exit', r)), sleep(10_000)]);
    if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
  rmSync(c.dataDir, { recursive: true, force: true });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/**
 * Fallback when the binary does not serve /console/ yet: dist under /console/
 * (SPA fallback to index.html) and /admin/v1 proxied to confab.
 */
export async function startStaticProxy(dist: string, api: string): Promise<{ url: string; server: Server }> {
  const root = resolve(dist);
  const target = new URL(api);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/admin/')) {
      const up = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
      return;
    }
    if (!path.startsWith('/console')) return void res.writeHead(404).end();
    const rel = normalize(decodeURIComponent(path.slice('/console'.length))).replace(/^\/+/, '');
    let file = join(root, rel);
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) file = join(root, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  const port = await freePort();
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${port}`, server };
}
