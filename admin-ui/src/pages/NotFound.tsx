import { Button, Stack, Text, Title } from '@mantine/core';
import { Link } from 'react-router';
import { tr } from '../i18n';

export function NotFound() {
  return (
    <Stack align="flex-start">
      <Title order={2}>{tr('Not found')}</Title>
      <Text>{tr('There is no such page in the console.')}</Text>
      <Button component={Link} to="/">
        {tr('Home')}
      </Button>
    </Stack>
  );
}
