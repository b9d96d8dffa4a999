import { afterEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { WebhookTab, validateWebhook } from './Webhook';
import { jsonResponse, renderUi } from '../test/render';

afterEach(() => vi.unstubAllGlobals());

const valid = { url: 'https://hooks.example.com/confab', events: ['after_send'], timeout_ms: 500, fail_mode: 'open' };

describe('validateWebhook', () => {
  it('accepts good settings', () => {
    expect(validateWebhook(valid)).toEqual({});
    expect(validateWebhook({ ...valid, url: 'http://127.0.0.1:9000/hook', timeout_ms: 50 })).toEqual({});
  });
  it('refuses what the API would refuse', () => {
    const e = validateWebhook({ url: 'ftp://x', events: [], timeout_ms: 49, fail_mode: '' });
    expect(Object.keys(e).sort()).toEqual(['events', 'fail_mode', 'timeout_ms', 'url']);
    expect(validateWebhook({ ...valid, url: 'not a url' }).url).toBeDefined();
    expect(validateWebhook({ ...valid, timeout_ms: 5001 }).timeout_ms).toBeDefined();
    expect(validateWebhook({ ...valid, timeout_ms: '' }).timeout_ms).toBeDefined();
    expect(validateWebhook({ ...valid, timeout_ms: 100.5 }).timeout_ms).toBeDefined();
  });
});

type Call = { method: string; path: string; body: unknown };

/** A fake admin API: no webhook at first; PUT creates it with a secret. */
function fakeApi() {
  const calls: Call[] = [];
  let hook: Record<string, unknown> | null = null;
  const fetch = vi.fn(async (req: Request) => {
    const path = new URL(req.url).pathname;
    const body = req.method === 'PUT' ? await req.json() : undefined;
    calls.push({ method: req.method, path, body });
    if (path.endsWith('/deliveries')) return jsonResponse(200, { items: [] });
    if (path.endsWith('/dead-letters')) {
      return jsonResponse(503, { error: { code: 'unavailable', message: 'store is down', request_id: 'r' } });
    }
    if (req.method === 'GET') {
      return hook
        ? jsonResponse(200, hook)
        : jsonResponse(404, { error: { code: 'not_found', message: 'no webhook', request_id: 'r' } });
    }
    if (req.method === 'PUT') {
      hook = { app_id: 'app_1', ...(body as object), created_at: 't', updated_at: 't1' };
      return jsonResponse(200, { ...hook, secret: 'whsec_0123' });
    }
    return jsonResponse(500, {});
  });
  vi.stubGlobal('fetch', fetch);
  return { calls };
}

describe('WebhookTab', () => {
  it('validates before saving, then shows the secret once; errors show the API message', async () => {
    const { calls } = fakeApi();
    renderUi(<WebhookTab appId="app_1" />);
    expect(await screen.findByTestId('no-webhook')).toBeInTheDocument();
    // The dead-letter list failed: its error shows the API's message.
    expect(await screen.findByText('store is down')).toBeInTheDocument();
    expect(await screen.findByText('No deliveries yet.')).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Create webhook' }));
    expect(screen.getByText('Enter an https:// or http:// URL')).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'PUT')).toHaveLength(0);

    await userEvent.type(screen.getByLabelText(/Endpoint URL/), 'https://hooks.example.com/in');
    await userEvent.click(screen.getByRole('checkbox', { name: 'before_send' }));
    await userEvent.click(screen.getByRole('button', { name: 'Create webhook' }));
    const dialog = await screen.findByRole('dialog', { name: 'Webhook signing secret' });
    expect(within(dialog).getByTestId('secret')).toHaveTextContent('whsec_0123');
    const put = calls.find((c) => c.method === 'PUT')!;
    expect(put.path).toBe('/admin/v1/apps/app_1/webhook');
    expect(put.body).toEqual({
      url: 'https://hooks.example.com/in',
      events: ['after_send', 'before_send'],
      timeout_ms: 500,
      fail_mode: 'open',
    });
    await userEvent.click(within(dialog).getByRole('button', { name: 'I have stored it' }));
    await waitFor(() => expect(screen.queryByText('whsec_0123')).toBeNull());
    expect(await screen.findByRole('button', { name: 'Rotate secret' })).toBeInTheDocument();
  });
});

describe('dead letters', () => {
  it('lists them and redelivers one by its event id', async () => {
    const posts: string[] = [];
    let dead = [
      { event_id: 'ev_1', event_type: 'after_send', payload: {}, attempts: 35, last_error: 'HTTP 500', created_at: 't' },
    ];
    const hook = {
      app_id: 'app_1',
      url: 'https://h.example.com/x',
      events: ['after_send'],
      timeout_ms: 500,
      fail_mode: 'open',
      created_at: 't',
      updated_at: 't',
    };
    vi.stubGlobal(
      'fetch',
      vi.fn(async (req: Request) => {
        const path = new URL(req.url).pathname;
        if (req.method === 'POST') {
          posts.push(path);
          dead = [];
          return new Response(null, { status: 202 });
        }
        if (path.endsWith('/deliveries')) return jsonResponse(200, { items: [] });
        if (path.endsWith('/dead-letters')) return jsonResponse(200, { items: dead });
        return jsonResponse(200, hook);
      }),
    );
    renderUi(<WebhookTab appId="app_1" />);
    const table = await screen.findByRole('table', { name: 'Dead letters' });
    expect(table).toHaveTextContent('HTTP 500');
    expect(table).toHaveTextContent('35');
    await userEvent.click(within(table).getByRole('button', { name: 'Redeliver ev_1' }));
    expect(await screen.findByText('No dead letters.')).toBeInTheDocument();
    expect(posts).toEqual(['/admin/v1/apps/app_1/webhook/dead-letters/ev_1/redeliver']);
  });
});
