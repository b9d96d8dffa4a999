import { expect, it } from 'vitest';
import { groupCheck, normaliseGroupId } from './Groups';

it('takes a group id with or without the conversation prefix', () => {
  expect(normaliseGroupId('group:team-42')).toBe('team-42');
  expect(normaliseGroupId('team-42')).toBe('team-42');
});

it('checks a group id before the lookup', () => {
  expect(groupCheck('team-42')).toBeNull();
  expect(groupCheck('group:a.b@c_d')).toBeNull();
  expect(groupCheck('two words')).not.toBeNull();
  expect(groupCheck('x'.repeat(65))).not.toBeNull();
  expect(groupCheck('')).not.toBeNull();
});
