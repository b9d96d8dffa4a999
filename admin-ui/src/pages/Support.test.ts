import { expect, it } from 'vitest';
import { validateCredentials } from './Push';
import { normaliseConv } from './Support';

it('checks push credentials before upload', () => {
  expect(validateCredentials('huawei', { app_id: '', app_secret: 's' })).toEqual({ app_id: 'Required' });
  expect(validateCredentials('huawei', { app_id: '1', app_secret: 's' })).toEqual({});
  const apns = validateCredentials('apns', { key_p8: 'nope', key_id: 'ABC123DEFG', team_id: 'x', topic: 'com.a' });
  expect(Object.keys(apns).sort()).toEqual(['key_p8', 'team_id']);
  expect(validateCredentials('fcm', { service_account_json: '{' })).toEqual({ service_account_json: 'Not valid JSON' });
  expect(
    validateCredentials('fcm', { service_account_json: '{"project_id":"p","client_email":"e","private_key":"k"}' }),
  ).toEqual({});
});

it('names a pair conversation with its ids sorted, as the API does', () => {
  expect(normaliseConv('p2p:bob:alice')).toBe('p2p:alice:bob');
  expect(normaliseConv('p2p:alice:bob')).toBe('p2p:alice:bob');
  expect(normaliseConv('group:g1')).toBe('group:g1');
});
