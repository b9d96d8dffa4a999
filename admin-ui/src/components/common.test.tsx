import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ConfirmButton, QueryView, SecretModal } from './common';
import { renderUi } from '../test/render';
import { validateWord } from '../pages/Words';
import { validatePassword } from '../pages/Accounts';
import { RELEASE_RE, VERSION_RE } from '../pages/GrayRules';

describe('ConfirmButton', () => {
  it('does nothing until confirmed', async () => {
    const onConfirm = vi.fn(async () => {});
    renderUi(<ConfirmButton label="Revoke" title="Revoke key" message="Sure?" onConfirm={onConfirm} />);
    await userEvent.click(screen.getByRole('button', { name: 'Revoke' }));
    const dialog = await screen.findByRole('dialog');
    await userEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(onConfirm).not.toHaveBeenCalled();
    await waitFor(() => expect(dialog).not.toBeInTheDocument());
    await userEvent.click(screen.getByRole('button', { name: 'Revoke' }));
    await userEvent.click(await screen.findByRole('button', { name: 'Revoke key' }));
    expect(onConfirm).toHaveBeenCalledOnce();
  });

  it('asks to type the name for the worst cases', async () => {
    const onConfirm = vi.fn(async () => {});
    renderUi(
      <ConfirmButton label="Delete" title="Delete app" message="Gone for good" typeToConfirm="chat" onConfirm={onConfirm} />,
    );
    await userEvent.click(screen.getByRole('button', { name: 'Delete' }));
    const confirm = await screen.findByRole('button', { name: 'Delete app' });
    expect(confirm).toBeDisabled();
    await userEvent.type(screen.getByLabelText(/to confirm/), 'chat');
    expect(confirm).toBeEnabled();
    await userEvent.click(confirm);
    expect(onConfirm).toHaveBeenCalledOnce();
  });
});

describe('QueryView', () => {
  const q = <T,>(over: Partial<{ data: T; error: Error; loading: boolean }>) => ({
    data: undefined,
    error: undefined,
    loading: false,
    reload: vi.fn(),
    ...over,
  });
  it('shows loading, error, empty and data states', () => {
    const { rerender } = renderUi(<QueryView query={q<number[]>({ loading: true })}>{() => 'data'}</QueryView>);
    expect(screen.getByLabelText('Loading')).toBeInTheDocument();
    rerender(
      <QueryView query={q<number[]>({ error: new Error('no app "x"') })}>{() => 'data'}</QueryView>,
    );
    expect(screen.getByRole('alert')).toHaveTextContent('no app "x"');
    rerender(
      <QueryView query={q<number[]>({ data: [] })} isEmpty={(d) => d.length === 0} empty="None yet.">
        {() => 'data'}
      </QueryView>,
    );
    expect(screen.getByText('None yet.')).toBeInTheDocument();
  });
});

describe('SecretModal', () => {
  it('shows the secret with a copy button while open', async () => {
    renderUi(<SecretModal secret="sk_123" title="App created" onClose={() => {}} />);
    expect(await screen.findByTestId('secret')).toHaveTextContent('sk_123');
    expect(screen.getByRole('button', { name: 'Copy' })).toBeInTheDocument();
  });
});

describe('form validation', () => {
  it('words', () => {
    expect(validateWord('')).toBe('Enter a word');
    expect(validateWord('  ')).toBe('Enter a word');
    expect(validateWord('x'.repeat(65))).toBe('At most 64 characters');
    expect(validateWord('敏感词')).toBeNull();
  });
  it('passwords', () => {
    expect(validatePassword('short')).toBe('At least 10 characters');
    expect(validatePassword('long enough!')).toBeNull();
  });
  it('gray rules', () => {
    expect(RELEASE_RE.test('canary-2.1_x')).toBe(true);
    expect(RELEASE_RE.test('has space')).toBe(false);
    expect(VERSION_RE.test('2.3.0')).toBe(true);
    expect(VERSION_RE.test('2.x')).toBe(false);
  });
});
