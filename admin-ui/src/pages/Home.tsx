import { Navigate } from 'react-router';
import { isOperator, useAccount } from '../auth';

/** Operators start at the tenants, a tenant admin at its own tenant's apps. */
export function Home() {
  const account = useAccount();
  return <Navigate to={isOperator(account) ? '/tenants' : `/tenants/${account.tenant_id}`} replace />;
}
