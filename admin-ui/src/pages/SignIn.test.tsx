import { afterEach, expect, it, vi } from 'vitest';
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router';
import { AuthProvider } from '../auth';
import { SignIn } from './SignIn';
import { jsonResponse, renderUi } from '../test/render';

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

it("validates before submitting, then shows the API's message", async () => {
  const fetch = vi.fn(async (_req: Request) =>
    jsonResponse(401, { error: { code: 'unauthorized', message: 'wrong user name or password', request_id: 'r' } }),
  );
  vi.stubGlobal('fetch', fetch);
  renderUi(
    <AuthProvider>
      <Routes>
        <Route path="/login" element={<SignIn />} />
      </Routes>
    </AuthProvider>,
    { route: '/login' },
  );
  await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  expect(screen.getByText('Enter your user name')).toBeInTheDocument();
  // Only the check of an existing session cookie, no sign-in.
  expect(fetch.mock.calls.map(([r]) => r.method)).toEqual(['GET']);
  await userEvent.type(screen.getByLabelText('User name'), 'admin');
  await userEvent.type(screen.getByLabelText('Password'), 'nope');
  await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  expect(await screen.findByRole('alert')).toHaveTextContent('wrong user name or password');
  expect(sessionStorage.length).toBe(0);
  // A browser sign-in asks for the HttpOnly cookie.
  const signIn = fetch.mock.calls.find(([r]) => r.method === 'POST')![0];
  expect(await signIn.clone().json()).toMatchObject({ username: 'admin', cookie: true });
});
