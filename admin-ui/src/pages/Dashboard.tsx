// Usage dashboards: an app's (tenant admins, the app's Dashboard tab) and a
// cell's (operators, the Platform page). Both read the same series shape
// from `/admin/v1/.../usage`; the data plane writes it every few seconds.
import { Card, Group, Paper, SegmentedControl, Select, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import type { ReactElement, ReactNode } from 'react';
import {
  Area,
  AreaChart,
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useSearchParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import { useQuery } from '../api/useQuery';
import { PageHeader, QueryView } from '../components/common';
import { listCells } from './Tenants';
import { lang, tr } from '../i18n';

type Usage = Schemas['AppUsage'];

/** The range picker's choices: how far back, and seconds per point. */
export const RANGES = {
  '1h': { ms: 3_600_000, step: 60 },
  '24h': { ms: 86_400_000, step: 900 },
  '7d': { ms: 7 * 86_400_000, step: 3_600 },
  '30d': { ms: 30 * 86_400_000, step: 86_400 },
} as const;
export type RangeKey = keyof typeof RANGES;

/** The query of a range ending now. */
export function rangeQuery(key: RangeKey, now = Date.now()) {
  const r = RANGES[key];
  return { from: new Date(now - r.ms).toISOString(), to: new Date(now).toISOString(), step: r.step };
}

/** The range kept in the URL (`?range=7d`) so that a view can be bookmarked. */
function useRange(): [RangeKey, (k: RangeKey) => void] {
  const [params, setParams] = useSearchParams();
  const raw = params.get('range');
  const key: RangeKey = raw && raw in RANGES ? (raw as RangeKey) : '24h';
  const set = (k: RangeKey) =>
    setParams(
      (p) => {
        p.set('range', k);
        return p;
      },
      { replace: true },
    );
  return [key, set];
}

function RangePicker({ value, onChange }: { value: RangeKey; onChange: (k: RangeKey) => void }) {
  return (
    <SegmentedControl
      aria-label={tr('Time range')}
      value={value}
      onChange={(v) => onChange(v as RangeKey)}
      data={[
        { value: '1h', label: tr('1 hour') },
        { value: '24h', label: tr('24 hours') },
        { value: '7d', label: tr('7 days') },
        { value: '30d', label: tr('30 days') },
      ]}
    />
  );
}

/** A point's time as the axis shows it. */
function tick(t: string, step: number): string {
  const d = new Date(t);
  const locale = lang() === 'zh' ? 'zh-CN' : 'en-GB';
  if (step >= 86_400) return d.toLocaleDateString(locale, { month: 'short', day: 'numeric' });
  if (step >= 3_600) return d.toLocaleString(locale, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return d.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString() : n.toFixed(1));

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Paper withBorder p="md" radius="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text size="xl" fw={700} data-testid={testId}>
        {value}
      </Text>
    </Paper>
  );
}

function ChartCard({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Card withBorder radius="md" p="md">
      <Title order={4} size="h5" mb="sm">
        {title}
      </Title>
      {children}
    </Card>
  );
}

const COLORS = {
  blue: '#228be6',
  teal: '#12b886',
  violet: '#7950f2',
  green: '#40c057',
  yellow: '#fab005',
  orange: '#fd7e14',
  red: '#fa5252',
  indigo: '#4c6ef5',
};

/** A chart of fixed height with the shared grid, axes and tooltip. */
function Chart({
  x,
  children,
}: {
  data: unknown[];
  x: string;
  children: (axes: ReactNode) => ReactElement;
}) {
  const axes = [
    <CartesianGrid key="g" strokeDasharray="3 3" vertical={false} />,
    <XAxis key="x" dataKey={x} tick={{ fontSize: 11 }} minTickGap={24} />,
    <YAxis key="y" tick={{ fontSize: 11 }} width={40} allowDecimals={false} />,
    <Tooltip key="t" />,
  ];
  return (
    <div style={{ width: '100%', height: 220 }}>
      <ResponsiveContainer width="100%" height="100%">
        {children(axes)}
      </ResponsiveContainer>
    </div>
  );
}

/** The stat cards and charts of one usage answer. */
export function UsageView({ usage, dau = true }: { usage: Usage; dau?: boolean }) {
  const points = usage.points.map((p) => ({
    ...p,
    time: tick(p.t, usage.step),
    error_rate: p.messages + p.errors + p.logins > 0 ? (100 * p.errors) / (p.messages + p.errors + p.logins) : 0,
    per_minute: (p.messages * 60) / usage.step,
  }));
  const days = usage.daily_active_users.map((d) => ({ ...d, day: d.day.slice(5) }));
  const latestDau = usage.daily_active_users.at(-1)?.users ?? 0;
  const t = usage.totals;
  const pushes = t.push_sent + t.push_retried + t.push_dead_token + t.push_dead_letter;
  return (
    <Stack gap="md">
      <SimpleGrid cols={{ base: 2, sm: 3, lg: 5 }}>
        <Stat label={tr('Messages')} value={fmt(t.messages)} testId="total-messages" />
        <Stat label={tr('Peak connections')} value={fmt(t.peak_connections)} testId="peak-connections" />
        {dau && <Stat label={tr('Active users today')} value={fmt(latestDau)} testId="dau-today" />}
        <Stat label={tr('Logins')} value={fmt(t.logins)} testId="total-logins" />
        <Stat label={tr('Pushes sent')} value={`${fmt(t.push_sent)} / ${fmt(pushes)}`} testId="total-pushes" />
        <Stat label={tr('Errors')} value={fmt(t.errors)} testId="total-errors" />
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <ChartCard title={tr('Messages')}>
          <Chart data={points} x="time">
            {(axes) => (
              <AreaChart data={points}>
                {axes}
                <Area type="monotone" dataKey="messages" name={tr('Messages')} stroke={COLORS.blue} fill={COLORS.blue} fillOpacity={0.2} isAnimationActive={false} />
              </AreaChart>
            )}
          </Chart>
        </ChartCard>
        <ChartCard title={tr('Connections (average)')}>
          <Chart data={points} x="time">
            {(axes) => (
              <LineChart data={points}>
                {axes}
                <Line type="monotone" dataKey="connections" name={tr('Connections')} stroke={COLORS.teal} dot={false} isAnimationActive={false} />
              </LineChart>
            )}
          </Chart>
        </ChartCard>
        {dau && (
          <ChartCard title={tr('Daily active users')}>
            <Chart data={days} x="day">
              {(axes) => (
                <BarChart data={days}>
                  {axes}
                  <Bar dataKey="users" name={tr('Active users')} fill={COLORS.violet} isAnimationActive={false} />
                </BarChart>
              )}
            </Chart>
          </ChartCard>
        )}
        <ChartCard title={tr('Pushes by outcome')}>
          <Chart data={points} x="time">
            {(axes) => (
              <BarChart data={points}>
                {axes}
                <Legend />
                <Bar stackId="p" dataKey="push_sent" name={tr('Accepted by vendor')} fill={COLORS.green} isAnimationActive={false} />
                <Bar stackId="p" dataKey="push_retried" name={tr('Retried')} fill={COLORS.yellow} isAnimationActive={false} />
                <Bar stackId="p" dataKey="push_dead_token" name={tr('Dead token')} fill={COLORS.orange} isAnimationActive={false} />
                <Bar stackId="p" dataKey="push_dead_letter" name={tr('Given up')} fill={COLORS.red} isAnimationActive={false} />
              </BarChart>
            )}
          </Chart>
        </ChartCard>
        <ChartCard title={tr('Error rate (%)')}>
          <Chart data={points} x="time">
            {(axes) => (
              <LineChart data={points}>
                {axes}
                <Line type="monotone" dataKey="error_rate" name={tr('Error rate (%)')} stroke={COLORS.red} dot={false} isAnimationActive={false} />
              </LineChart>
            )}
          </Chart>
        </ChartCard>
        <ChartCard title={tr('Logins')}>
          <Chart data={points} x="time">
            {(axes) => (
              <AreaChart data={points}>
                {axes}
                <Area type="monotone" dataKey="logins" name={tr('Logins')} stroke={COLORS.indigo} fill={COLORS.indigo} fillOpacity={0.2} isAnimationActive={false} />
              </AreaChart>
            )}
          </Chart>
        </ChartCard>
      </SimpleGrid>
    </Stack>
  );
}

const isEmptyUsage = (u: Usage) =>
  u.totals.messages + u.totals.logins + u.totals.errors + u.totals.push_sent + u.totals.push_retried +
    u.totals.push_dead_token + u.totals.push_dead_letter === 0 && u.totals.peak_connections === 0;

/** The app's Dashboard tab. */
export function DashboardTab({ appId }: { appId: string }) {
  const [range, setRange] = useRange();
  const usage = useQuery(
    () => unwrap(api.GET('/admin/v1/apps/{app_id}/usage', { params: { path: { app_id: appId }, query: rangeQuery(range) } })),
    [appId, range],
  );
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          {tr('Usage is written every few seconds; the latest minute may lag a little.')}
        </Text>
        <RangePicker value={range} onChange={setRange} />
      </Group>
      <QueryView
        query={usage}
        isEmpty={isEmptyUsage}
        empty={tr('No traffic in this range yet.')}
      >
        {(u) => <UsageView usage={u} />}
      </QueryView>
    </Stack>
  );
}

/** The operator's platform dashboard: one cell at a time. */
export function Platform() {
  const [range, setRange] = useRange();
  const [params, setParams] = useSearchParams();
  const cells = useQuery(listCells, []);
  const cell = params.get('cell') ?? 'default';
  const usage = useQuery(
    () => unwrap(api.GET('/admin/v1/cells/{cell_id}/usage', { params: { path: { cell_id: cell }, query: rangeQuery(range) } })),
    [cell, range],
  );
  return (
    <>
      <PageHeader title={tr('Platform dashboard')}>
        <Select
          aria-label={tr('Cell')}
          value={cell}
          allowDeselect={false}
          data={cells.data?.map((c) => c.cell_id) ?? [cell]}
          onChange={(v) =>
            v &&
            setParams(
              (p) => {
                p.set('cell', v);
                return p;
              },
              { replace: true },
            )
          }
          w={180}
        />
        <RangePicker value={range} onChange={setRange} />
      </PageHeader>
      <QueryView query={usage}>
        {(u) => (
          <Stack gap="md">
            <Text size="sm" c="dimmed" data-testid="cell-apps">
              {tr('Sums over the {apps} apps of cell {cell}.', { apps: u.apps, cell: u.cell_id })}
              {u.apps_unread > 0 && ' ' + tr('{n} apps without an active secret key are left out.', { n: u.apps_unread })}
            </Text>
            {isEmptyUsage(u) ? (
              <Text c="dimmed" ta="center" py="lg" data-testid="empty">
                {tr('No traffic in this range yet.')}
              </Text>
            ) : (
              <UsageView usage={u} />
            )}
          </Stack>
        )}
      </QueryView>
    </>
  );
}
