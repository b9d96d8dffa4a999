import { Text } from '@mantine/core';
import { PageHeader } from '../components/common';
import { WordsPanel } from './Words';

export function GlobalWords() {
  return (
    <>
      <PageHeader title="Global sensitive words" />
      <Text size="sm" c="dimmed" mb="md">
        Checked in every app, besides each app&apos;s own list.
      </Text>
      <WordsPanel />
    </>
  );
}
