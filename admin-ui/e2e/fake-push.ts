// A local fake of Xiaomi MiPush for the push tests: HTTPS (HTTP/2 or 1.1)
// on 127.0.0.1 with a certificate from a CA made here with openssl; confab
// trusts it through CONFAB_PUSH_CA_FILE and sends to it through
// CONFAB_PUSH_XIAOMI_URL. It answers as MiPush does: the app secret in
// `authorization` (`key=<secret>`, else HTTP 401), then by the form's
// `registration_id`: FAKE_PUSH.goodToken is accepted, FAKE_PUSH.failToken
// is refused for good (HTTP 400, code 10017), any other is an invalid
// regId (code 20301).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FAKE_PUSH = {
  secret: 'mi-e2e-secret',
  goodToken: 'e2e-good-token',
  failToken: 'e2e-fail-token',
};

export interface FakePush {
  url: string;
  caFile: string;
  close: () => void;
}

function certificates(dir: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=confab e2e push CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'leaf.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  ssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '2', '-extfile', 'leaf.ext');
}

export async function startFakePush(): Promise<FakePush> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-e2e-push-'));
  certificates(dir);
  const server: Http2SecureServer = createSecureServer(
    { key: readFileSync(join(dir, 'leaf.key')), cert: readFileSync(join(dir, 'leaf.pem')), allowHTTP1: true },
    (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const answer = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        if (req.url !== '/v3/message/regid') return answer(404, { result: 'error', reason: 'no such API' });
        if (req.headers.authorization !== `key=${FAKE_PUSH.secret}`)
          return answer(401, { result: 'error', code: 22006, reason: 'invalid app secret' });
        const token = new URLSearchParams(body).get('registration_id');
        if (token === FAKE_PUSH.goodToken) return answer(200, { result: 'ok', code: 0 });
        if (token === FAKE_PUSH.failToken)
          return answer(400, { result: 'error', code: 10017, reason: 'message payload is not acceptable' });
        return answer(200, { result: 'error', code: 20301, reason: 'Invalid regId' });
      });
    },
  );
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: join(dir, 'ca.pem'),
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
