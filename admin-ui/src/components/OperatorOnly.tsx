import { Alert } from '@mantine/core';
import type { ReactNode } from 'react';
import { isOperator, useAccount } from '../auth';
import { tr } from '../i18n';

/** Pages only an operator may open (the API refuses the rest anyway). */
export function OperatorOnly({ children }: { children: ReactNode }) {
  const account = useAccount();
  if (!isOperator(account)) {
    return (
      <Alert color="orange" title={tr('Not available')} role="alert">
        {tr('Only an operator can open this page.')}
      </Alert>
    );
  }
  return <>{children}</>;
}
