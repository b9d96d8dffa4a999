import { useState } from 'react';
import { Alert, Button, Center, Group, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { useForm } from '@mantine/form';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { useAuth } from '../auth';
import { LangSwitch, tr } from '../i18n';

export function SignIn() {
  const { account, signIn } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { username: '', password: '' },
    validate: {
      username: (v) => (v.trim() ? null : tr('Enter your user name')),
      password: (v) => (v ? null : tr('Enter your password')),
    },
  });
  const next = params.get('next');
  const target = next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
  if (account) return <Navigate to={target} replace />;

  const submit = form.onSubmit(async ({ username, password }) => {
    setBusy(true);
    setError(undefined);
    try {
      await signIn(username.trim(), password);
      navigate(target, { replace: true });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  });

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={400} component="main">
        <form onSubmit={submit} noValidate>
          <Stack>
            <Group justify="space-between" wrap="nowrap" align="center">
              <Title order={2}>{tr('Sign in to Confab')}</Title>
              <LangSwitch />
            </Group>
            {error && (
              <Alert color="red" role="alert" data-testid="signin-error">
                {error}
              </Alert>
            )}
            <TextInput label={tr('User name')} autoComplete="username" autoFocus {...form.getInputProps('username')} />
            <PasswordInput label={tr('Password')} autoComplete="current-password" {...form.getInputProps('password')} />
            <Button type="submit" loading={busy} fullWidth>
              {tr('Sign in')}
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
