import { useState, type ReactNode } from 'react';
import {
  Alert,
  Badge,
  Button,
  Center,
  Code,
  Group,
  Loader,
  Modal,
  Stack,
  Text,
  TextInput,
  Title,
  type ButtonProps,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import type { Query } from '../api/useQuery';
import { lang, tr } from '../i18n';

/** The API's error message, in a notification. */
export function notifyError(e: unknown) {
  notifications.show({
    color: 'red',
    title: tr('Error'),
    message: e instanceof Error ? e.message : String(e),
    autoClose: 8000,
  });
}

export function notifyDone(message: string) {
  notifications.show({ color: 'green', message, autoClose: 3000 });
}

/** Loading, error (the API's message, with a retry) and empty states around a query. */
export function QueryView<T>({
  query,
  empty,
  isEmpty,
  children,
}: {
  query: Query<T>;
  empty?: ReactNode;
  isEmpty?: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (query.error) {
    return (
      <Alert color="red" title={tr('Could not load')} role="alert">
        <Stack gap="xs" align="flex-start">
          <Text size="sm">{query.error.message}</Text>
          <Button size="xs" variant="light" color="red" onClick={query.reload}>
            {tr('Retry')}
          </Button>
        </Stack>
      </Alert>
    );
  }
  if (query.data === undefined) {
    return (
      <Center py="xl" aria-busy="true">
        <Loader size="sm" aria-label={tr('Loading')} />
      </Center>
    );
  }
  if (isEmpty?.(query.data)) {
    return (
      <Text c="dimmed" ta="center" py="lg" data-testid="empty">
        {empty ?? tr('Nothing here yet.')}
      </Text>
    );
  }
  return <>{children(query.data)}</>;
}

export function PageHeader({ title, children }: { title: ReactNode; children?: ReactNode }) {
  return (
    <Group justify="space-between" mb="md" wrap="wrap" gap="sm">
      <Title order={2} style={{ overflowWrap: 'anywhere' }}>
        {title}
      </Title>
      {children && <Group gap="xs">{children}</Group>}
    </Group>
  );
}

export function StatusBadge({ status }: { status: string }) {
  const color = status === 'active' ? 'green' : status === 'suspended' ? 'orange' : 'gray';
  return (
    <Badge color={color} variant="light">
      {tr(status)}
    </Badge>
  );
}

/** A date as the browser's locale shows it. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <>—</>;
  const d = new Date(at);
  return (
    <time dateTime={at}>{Number.isNaN(d.getTime()) ? at : d.toLocaleString(lang() === 'zh' ? 'zh-CN' : undefined)}</time>
  );
}

/** A button that asks before doing something destructive. */
export function ConfirmButton({
  label,
  title,
  message,
  confirmLabel,
  typeToConfirm,
  onConfirm,
  ...buttonProps
}: {
  label: ReactNode;
  title: string;
  message: ReactNode;
  confirmLabel?: string;
  /** The user must type this text to enable the confirm button. */
  typeToConfirm?: string;
  onConfirm: () => Promise<unknown>;
} & ButtonProps & { 'aria-label'?: string }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [typed, setTyped] = useState('');
  const close = () => {
    setOpen(false);
    setTyped('');
  };
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
      close();
    } catch (e) {
      notifyError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Button color="red" variant="light" size="xs" {...buttonProps} onClick={() => setOpen(true)}>
        {label}
      </Button>
      <Modal opened={open} onClose={close} title={title} centered>
        <Stack>
          <Text size="sm">{message}</Text>
          {typeToConfirm && (
            <TextInput
              label={
                <>
                  {tr('Type the name to confirm:')} <Code>{typeToConfirm}</Code>
                </>
              }
              value={typed}
              onChange={(e) => setTyped(e.currentTarget.value)}
              data-autofocus
            />
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              {tr('Cancel')}
            </Button>
            <Button
              color="red"
              loading={busy}
              disabled={typeToConfirm !== undefined && typed !== typeToConfirm}
              onClick={confirm}
              data-autofocus={typeToConfirm ? undefined : true}
            >
              {confirmLabel ?? title}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

/** A secret shown once, with a copy button. Nothing keeps it after the modal closes. */
export function SecretModal({
  secret,
  title,
  details,
  onClose,
}: {
  secret: string | null;
  title: string;
  details?: ReactNode;
  onClose: () => void;
}) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title={title} centered size="lg">
      <Stack>
        {details}
        <Alert color="yellow" title={tr('Copy the secret now')}>
          {tr("This is the only time it is shown. Store it in your backend's secret store; Confab keeps it encrypted and never shows it again.")}
        </Alert>
        <Group gap="xs" wrap="nowrap" align="center">
          <Code block data-testid="secret" style={{ flex: 1, overflowWrap: 'anywhere', whiteSpace: 'pre-wrap' }}>
            {secret}
          </Code>
          <CopyTextButton value={secret ?? ''} variant="light">
            {(copied) => (copied ? tr('Copied') : tr('Copy'))}
          </CopyTextButton>
        </Group>
        <Group justify="flex-end">
          <Button onClick={onClose}>{tr('I have stored it')}</Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** Copies text: the Clipboard API, or (plain-HTTP origins lack it) a selected textarea. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A copy button: "Copied" for a moment, or an error to copy by hand. */
export function CopyTextButton({
  value,
  children,
  ...props
}: { value: string; children: (copied: boolean) => ReactNode } & Omit<ButtonProps, 'children'> & {
  'aria-label'?: string;
}) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      {...props}
      color={copied ? 'teal' : props.color}
      onClick={async () => {
        if (await copyText(value)) {
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        } else {
          notifyError(new Error(tr('Could not copy: select the text and copy it by hand.')));
        }
      }}
    >
      {children(copied)}
    </Button>
  );
}

/** An id in monospace with a copy button. */
export function IdText({ id }: { id: string }) {
  return (
    <Group gap={4} wrap="nowrap">
      <Code style={{ overflowWrap: 'anywhere' }}>{id}</Code>
      <CopyTextButton value={id} size="compact-xs" variant="subtle" aria-label={tr('Copy {id}', { id })}>
        {(copied) => (copied ? tr('Copied') : tr('Copy'))}
      </CopyTextButton>
    </Group>
  );
}
