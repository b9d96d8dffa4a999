import { BrowserRouter, Navigate, Route, Routes, useLocation } from 'react-router';
import { Center, Loader } from '@mantine/core';
import { useAuth } from './auth';
import { tr } from './i18n';
import { Layout } from './Layout';
import { SignIn } from './pages/SignIn';
import { Home } from './pages/Home';
import { Tenants } from './pages/Tenants';
import { TenantPage } from './pages/TenantPage';
import { AppPage } from './pages/AppPage';
import { GlobalWords } from './pages/GlobalWords';
import { GrayRules } from './pages/GrayRules';
import { Cells } from './pages/Cells';
import { Accounts } from './pages/Accounts';
import { NotFound } from './pages/NotFound';
import { Platform } from './pages/Dashboard';
import { OperatorOnly } from './components/OperatorOnly';

function RequireAuth({ children }: { children: React.ReactNode }) {
  const { account, signedOut } = useAuth();
  const location = useLocation();
  if (account === undefined) {
    return (
      <Center h="100vh">
        <Loader aria-label={tr('Loading')} />
      </Center>
    );
  }
  if (account === null) {
    if (signedOut) return <Navigate to="/login" replace />;
    const next = location.pathname + location.search;
    return <Navigate to={`/login${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace />;
  }
  return <>{children}</>;
}

export function ConsoleRouter() {
  return (
    <BrowserRouter basename="/console">
      <Routes>
        <Route path="/login" element={<SignIn />} />
        <Route
          element={
            <RequireAuth>
              <Layout />
            </RequireAuth>
          }
        >
          <Route index element={<Home />} />
          <Route path="tenants" element={<OperatorOnly><Tenants /></OperatorOnly>} />
          <Route path="tenants/:tenantId" element={<TenantPage />} />
          <Route path="apps/:appId" element={<AppPage />} />
          <Route path="apps/:appId/:tab" element={<AppPage />} />
          <Route path="words" element={<OperatorOnly><GlobalWords /></OperatorOnly>} />
          <Route path="gray-rules" element={<OperatorOnly><GrayRules /></OperatorOnly>} />
          <Route path="cells" element={<OperatorOnly><Cells /></OperatorOnly>} />
          <Route path="platform" element={<OperatorOnly><Platform /></OperatorOnly>} />
          <Route path="accounts" element={<Accounts />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
