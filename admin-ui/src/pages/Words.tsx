import { useRef, useState } from 'react';
import {
  Badge,
  Button,
  FileButton,
  Group,
  Paper,
  SegmentedControl,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useForm } from '@mantine/form';
import { api, unwrap, type WordAction, type WordRule } from '../api/client';
import { useQuery } from '../api/useQuery';
import { ConfirmButton, QueryView, notifyDone, notifyError } from '../components/common';
import { tr } from '../i18n';

/** Checks one word as the API does: 1 to 64 characters. */
export function validateWord(word: string): string | null {
  const w = word.trim();
  if (!w) return tr('Enter a word');
  if ([...w].length > 64) return tr('At most 64 characters');
  if (/[\r\n]/.test(w)) return tr('One word at a time (use import for many)');
  return null;
}

/** A word list: the app's (`appId`) or the global one. */
export function WordsPanel({ appId }: { appId?: string }) {
  const [pages, setPages] = useState<string[]>([]); // cursors of pages loaded after the first
  const list = useQuery(async () => {
    const load = (cursor?: string) =>
      appId
        ? unwrap(api.GET('/admin/v1/apps/{app_id}/words', { params: { path: { app_id: appId }, query: { limit: 200, cursor } } }))
        : unwrap(api.GET('/admin/v1/words', { params: { query: { limit: 200, cursor } } }));
    const first = await load();
    const items: WordRule[] = [...first.items];
    let next = first.next_cursor ?? null;
    for (const _ of pages) {
      if (!next) break;
      const p = await load(next);
      items.push(...p.items);
      next = p.next_cursor ?? null;
    }
    return { items, next };
  }, [appId, pages.length]);

  const change = async (body: { add?: WordRule[]; remove?: string[] }) => {
    const r = appId
      ? await unwrap(api.POST('/admin/v1/apps/{app_id}/words', { params: { path: { app_id: appId } }, body }))
      : await unwrap(api.POST('/admin/v1/words', { body }));
    list.reload();
    return r;
  };

  return (
    <Stack>
      <AddWord onAdd={(w) => change({ add: [w] })} />
      <ImportWords
        onImport={async (text, defaultAction) => {
          const params = { query: { default_action: defaultAction } };
          const opts = {
            body: text,
            bodySerializer: (b: string) => b,
            headers: { 'Content-Type': 'text/plain; charset=utf-8' },
          };
          const r = appId
            ? await unwrap(
                api.POST('/admin/v1/apps/{app_id}/words/import', {
                  params: { ...params, path: { app_id: appId } },
                  ...opts,
                }),
              )
            : await unwrap(api.POST('/admin/v1/words/import', { params, ...opts }));
          list.reload();
          return r;
        }}
      />
      <QueryView query={list} isEmpty={(d) => d.items.length === 0} empty={tr('The list is empty.')}>
        {(d) => (
          <>
            <Text size="sm" c="dimmed">
              {d.items.length === 1 ? tr('1 word') : tr('{count} words', { count: d.items.length })}
            </Text>
            <Table.ScrollContainer minWidth={360}>
              <Table className="data-table" striped verticalSpacing="xs" aria-label={tr('Words')}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>{tr('Word')}</Table.Th>
                    <Table.Th>{tr('Action')}</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {d.items.map((w) => (
                    <Table.Tr key={w.word} data-testid="word-row">
                      <Table.Td style={{ overflowWrap: 'anywhere' }}>{w.word}</Table.Td>
                      <Table.Td>
                        <Badge color={w.action === 'block' ? 'red' : 'yellow'} variant="light">
                          {tr(w.action)}
                        </Badge>
                      </Table.Td>
                      <Table.Td ta="right">
                        <ConfirmButton
                          label={tr('Remove')}
                          aria-label={tr('Remove {word}', { word: w.word })}
                          title={tr('Remove word')}
                          message={tr(w.action === 'block' ? 'Remove “{word}” from the list? Messages with it are no longer blocked.' : 'Remove “{word}” from the list? Messages with it are no longer masked.', { word: w.word })}
                          confirmLabel={tr('Remove')}
                          onConfirm={async () => {
                            await change({ remove: [w.word] });
                            notifyDone(tr('Removed {word}', { word: w.word }));
                          }}
                        />
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            {d.next && (
              <Button variant="default" onClick={() => setPages((p) => [...p, d.next!])}>
                {tr('Load more')}
              </Button>
            )}
          </>
        )}
      </QueryView>
    </Stack>
  );
}

function AddWord({ onAdd }: { onAdd: (w: WordRule) => Promise<unknown> }) {
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { word: '', action: 'block' as WordAction },
    validate: { word: validateWord },
  });
  const submit = form.onSubmit(async (v) => {
    setBusy(true);
    try {
      await onAdd({ word: v.word.trim(), action: v.action });
      notifyDone(tr(v.action === 'block' ? 'Added {word} (block)' : 'Added {word} (mask)', { word: v.word.trim() }));
      form.setFieldValue('word', '');
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  });
  return (
    <Paper withBorder p="md">
      <form onSubmit={submit} noValidate>
        <Stack gap="xs">
          <Title order={4}>{tr('Add a word')}</Title>
          <Group align="flex-start" wrap="wrap" gap="sm">
            <TextInput
              label={tr('Word')}
              placeholder={tr('spam')}
              style={{ flex: '1 1 200px' }}
              {...form.getInputProps('word')}
            />
            <Stack gap={4}>
              <Text size="sm" fw={500} id="word-action-label">
                {tr('Action')}
              </Text>
              <SegmentedControl
                aria-labelledby="word-action-label"
                data={[
                  { value: 'block', label: tr('Block') },
                  { value: 'mask', label: tr('Mask') },
                ]}
                {...form.getInputProps('action')}
              />
            </Stack>
            <Button type="submit" loading={busy} mt={{ base: 0, xs: 25 }}>
              {tr('Add')}
            </Button>
          </Group>
          <Text size="xs" c="dimmed">
            {tr('Block refuses a message containing the word; mask replaces it with asterisks. Matching ignores case, full and half width and characters inserted between letters.')}
          </Text>
        </Stack>
      </form>
    </Paper>
  );
}

function ImportWords({
  onImport,
}: {
  onImport: (text: string, defaultAction: WordAction) => Promise<{ imported: number; count: number }>;
}) {
  const [defaultAction, setDefaultAction] = useState<WordAction>('block');
  const [busy, setBusy] = useState(false);
  const reset = useRef<() => void>(null);
  const upload = async (file: File | null) => {
    if (!file) return;
    setBusy(true);
    try {
      if (file.size > 1024 * 1024) throw new Error(tr('The file is larger than 1 MiB; split it.'));
      const text = await file.text();
      if (!text.trim()) throw new Error(tr('The file is empty.'));
      const r = await onImport(text, defaultAction);
      notifyDone(tr('Imported {lines} lines; the list has {count} words', { lines: r.imported, count: r.count }));
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
      reset.current?.();
    }
  };
  return (
    <Paper withBorder p="md">
      <Stack gap="xs">
        <Title order={4}>{tr('Bulk import')}</Title>
        <Text size="xs" c="dimmed">
          {tr('A text file, one word per line, optionally followed by ",block" or ",mask"; blank lines and lines starting with # are skipped.')}
        </Text>
        <Group align="flex-end" wrap="wrap" gap="sm">
          <Select
            label={tr('Action of lines that name none')}
            data={[
              { value: 'block', label: tr('Block') },
              { value: 'mask', label: tr('Mask') },
            ]}
            value={defaultAction}
            onChange={(v) => v && setDefaultAction(v as WordAction)}
            allowDeselect={false}
            w={240}
          />
          <FileButton onChange={upload} accept="text/plain,.txt,.csv" resetRef={reset}>
            {(props) => (
              <Button {...props} variant="light" loading={busy}>
                {tr('Import from a text file…')}
              </Button>
            )}
          </FileButton>
        </Group>
      </Stack>
    </Paper>
  );
}
