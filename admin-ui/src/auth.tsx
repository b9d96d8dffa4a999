import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, session, setUnauthorizedHandler, unwrap, type Account } from './api/client';

interface Auth {
  /** `undefined` while the stored session is being checked. */
  account: Account | null | undefined;
  signIn: (username: string, password: string) => Promise<Account>;
  signOut: () => Promise<void>;
  /** True after an explicit sign-out (no "return to" page then). */
  signedOut: boolean;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  // Whether the HttpOnly session cookie is still good is the API's to say.
  const [account, setAccount] = useState<Account | null | undefined>(undefined);
  const [signedOut, setSignedOut] = useState(false);

  useEffect(() => {
    setUnauthorizedHandler(() => setAccount(null));
    unwrap(api.GET('/admin/v1/sessions/current')).then(
      (s) => {
        session.setCsrf(s.csrf_token);
        setAccount(s.account);
      },
      () => {
        session.clear();
        setAccount(null);
      },
    );
  }, []);

  const signIn = useCallback(async (username: string, password: string) => {
    const s = await unwrap(api.POST('/admin/v1/sessions', { body: { username, password, cookie: true } }));
    session.setCsrf(s.csrf_token);
    setSignedOut(false);
    setAccount(s.account);
    return s.account;
  }, []);

  const signOut = useCallback(async () => {
    try {
      await unwrap(api.DELETE('/admin/v1/sessions/current'));
    } catch {
      // Signed out locally either way.
    }
    session.clear();
    setSignedOut(true);
    setAccount(null);
  }, []);

  return <AuthContext.Provider value={{ account, signIn, signOut, signedOut }}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error('useAuth outside AuthProvider');
  return a;
}

/** The signed-in account (only under the signed-in layout). */
export function useAccount(): Account {
  const { account } = useAuth();
  if (!account) throw new Error('not signed in');
  return account;
}

export const isOperator = (a: Account) => a.role === 'operator';
