/**
 * Runs the real `confab serve` for the tests: a fresh data directory, free
 * ports, credentials read from the first start's banner, SIGKILL/SIGTERM and
 * restart on the same directory and ports. Also mints user tokens with
 * node:crypto only — a tenant needs no Confab code to do it.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** sdk/typescript */
const packageRoot = resolve(here, '..', '..');

/** `CONFAB_BIN`, else `../../target/debug/confab` relative to sdk/typescript. */
export function confabBin(): string {
  return process.env.CONFAB_BIN ?? resolve(packageRoot, '..', '..', 'target', 'debug', 'confab');
}

export interface Credentials {
  appId: string;
  keyId: string;
  secret: string;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

export interface ServerOptions {
  /** Extra environment (e.g. CONFAB_IDLE_TIMEOUT_SECS). */
  env?: Record<string, string>;
}

/** One `confab serve` process and its data directory. */
export class ConfabServer {
  readonly dataDir: string;
  httpPort = 0;
  tcpPort = 0;
  credentials: Credentials | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  constructor(private readonly options: ServerOptions = {}) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'confab-sdk-test-'));
  }

  get url(): string {
    return `ws://127.0.0.1:${this.httpPort}/v1/connect`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the server (first call: picks ports and reads the credentials). */
  async start(): Promise<void> {
    const bin = confabBin();
    if (!existsSync(bin)) {
      throw new Error(`confab binary not found at ${bin}: build it (cargo build -p confab) or set CONFAB_BIN`);
    }
    if (!this.httpPort) {
      this.httpPort = await freePort();
      this.tcpPort = await freePort();
    }
    const child = spawn(bin, ['serve'], {
      env: {
        ...process.env,
        CONFAB_DATA_DIR: this.dataDir,
        CONFAB_HTTP_ADDR: `127.0.0.1:${this.httpPort}`,
        CONFAB_TCP_ADDR: `127.0.0.1:${this.tcpPort}`,
        RUST_LOG: 'warn',
        ...this.options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let exitedEarly = false;
    this.exited = new Promise((r) =>
      child.once('exit', () => {
        exitedEarly = true;
        if (this.child === child) this.child = undefined;
        r();
      }),
    );
    const seen: Partial<Credentials> = {};
    let stdoutBuf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      stdoutBuf += chunk;
      this.keepOutput(chunk);
      let nl: number;
      while ((nl = stdoutBuf.indexOf('\n')) >= 0) {
        const line = stdoutBuf.slice(0, nl).trim();
        stdoutBuf = stdoutBuf.slice(nl + 1);
        const m = /^(app id|key id|secret key):\s*(\S+)/.exec(line);
        if (m) {
          if (m[1] === 'app id') seen.appId = m[2];
          if (m[1] === 'key id') seen.keyId = m[2];
          if (m[1] === 'secret key') seen.secret = m[2];
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => this.keepOutput(chunk));

    const deadline = Date.now() + 20_000;
    while (!(await portOpen(this.httpPort))) {
      if (exitedEarly) throw new Error(`confab serve exited during start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`confab serve did not start:\n${this.output}`);
      await sleep(30);
    }
    if (!this.credentials) {
      const credDeadline = Date.now() + 3_000;
      while (!(seen.appId && seen.keyId && seen.secret) && Date.now() < credDeadline) await sleep(20);
      if (!(seen.appId && seen.keyId && seen.secret)) {
        throw new Error(`no credentials in the first start's banner:\n${this.output}`);
      }
      this.credentials = seen as Credentials;
    }
  }

  private keepOutput(chunk: string): void {
    this.output = (this.output + chunk).slice(-8_000);
  }

  /** SIGKILL (no goaway, no drain) and wait for the process to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: the server sends goaway, drains and exits. */
  async terminate(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    await this.exited;
  }

  /** Runs a `confab` CLI command on this data directory; returns stdout. */
  cli(args: string[]): string {
    const r = spawnSync(confabBin(), args, {
      env: { ...process.env, CONFAB_DATA_DIR: this.dataDir, RUST_LOG: 'warn' },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`confab ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Kills the server and removes its data. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Mints a user token with this server's app key. */
  token(userId: string, opts: { ttlSecs?: number; secret?: string; keyId?: string; appId?: string } = {}): string {
    const c = this.credentials;
    if (!c) throw new Error('server not started');
    return mintToken({
      appId: opts.appId ?? c.appId,
      keyId: opts.keyId ?? c.keyId,
      secret: opts.secret ?? c.secret,
      userId,
      ttlSecs: opts.ttlSecs ?? 3600,
    });
  }
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** An HS256 JWT as Confab expects it: header kid = key id; claims sub, app, iat, exp. */
export function mintToken(p: { appId: string; keyId: string; secret: string; userId: string; ttlSecs: number }): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: p.keyId }));
  const claims = b64url(JSON.stringify({ sub: p.userId, app: p.appId, iat: now, exp: now + p.ttlSecs }));
  const sig = createHmac('sha256', p.secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${sig}`;
}

/** A user id unique to this run, so tests sharing a server do not see each other. */
export function uid(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}
