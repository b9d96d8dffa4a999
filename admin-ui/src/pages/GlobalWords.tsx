import { Text } from '@mantine/core';
import { PageHeader } from '../components/common';
import { WordsPanel } from './Words';
import { tr } from '../i18n';

export function GlobalWords() {
  return (
    <>
      <PageHeader title={tr('Global sensitive words')} />
      <Text size="sm" c="dimmed" mb="md">
        {tr("Checked in every app, besides each app's own list.")}
      </Text>
      <WordsPanel />
    </>
  );
}
