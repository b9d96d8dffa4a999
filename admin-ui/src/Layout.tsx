import { Anchor, AppShell, Badge, Burger, Button, Group, NavLink, ScrollArea, Text } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Link, Outlet, useLocation } from 'react-router';
import { isOperator, useAccount, useAuth } from './auth';
import { LangSwitch, tr } from './i18n';

export function Layout() {
  const account = useAccount();
  const { signOut } = useAuth();
  const location = useLocation();
  const [opened, { toggle, close }] = useDisclosure();
  const operator = isOperator(account);

  const links = operator
    ? [
        { to: '/platform', label: tr('Platform dashboard') },
        { to: '/tenants', label: tr('Tenants') },
        { to: '/cells', label: tr('Cells') },
        { to: '/words', label: tr('Global words') },
        { to: '/gray-rules', label: tr('Gray release') },
        { to: '/accounts', label: tr('Accounts') },
      ]
    : [
        { to: `/tenants/${account.tenant_id}`, label: tr('Apps') },
        { to: '/accounts', label: tr('Accounts') },
      ];

  const active = (to: string) => location.pathname === to || location.pathname.startsWith(`${to}/`);

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <a href="#main" className="skip-link">
        {tr('Skip to content')}
      </a>
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={tr('Toggle navigation')} />
            <Anchor component={Link} to="/" c="inherit" underline="never" fw={700} size="lg">
              {tr('Confab console')}
            </Anchor>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <LangSwitch />
            <Text size="sm" visibleFrom="md" data-testid="whoami">
              {account.username}
            </Text>
            <Badge variant="light" visibleFrom="md">
              {operator ? tr('operator') : tr('tenant admin')}
            </Badge>
            <Button
              size="xs"
              variant="default"
              onClick={() => signOut()}
            >
              {tr('Sign out')}
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label={tr('Main navigation')}>
        <ScrollArea>
          {links.map((l) => (
            <NavLink
              key={l.to}
              component={Link}
              to={l.to}
              label={l.label}
              active={active(l.to)}
              onClick={close}
            />
          ))}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main id="main" style={{ minWidth: 0 }}>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
