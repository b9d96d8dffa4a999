import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { zh } from './i18n-zh';
import { tr } from './i18n';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f) ? [p] : [];
  });
}

/** The first argument of every tr('…') / tr("…") with a literal string. */
function keys(): string[] {
  const found = new Set<string>();
  for (const file of sources(join(__dirname))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/\btr\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g)) {
      found.add((m[1] ?? m[2]).replace(/\\(.)/g, '$1'));
    }
  }
  return [...found];
}

// Examples in input boxes, the same in both languages.
const UNTRANSLATED = new Set(['canary', 'spam', 'cn-east-1']);

describe('Simplified Chinese', () => {
  afterEach(() => localStorage.clear());
  it('has every text the console shows', () => {
    const all = keys();
    expect(all.length).toBeGreaterThan(150);
    const missing = all.filter((k) => !(k in zh) && !UNTRANSLATED.has(k));
    expect(missing).toEqual([]);
  });
  it('keeps the placeholders of each text', () => {
    for (const [en, text] of Object.entries(zh)) {
      const ph = (s: string) => [...s.matchAll(/\{\w+\}/g)].map((m) => m[0]).sort();
      expect(ph(text), en).toEqual(ph(en));
    }
  });
  it('fills placeholders', () => {
    expect(tr('Tenant {name} created', { name: 'acme' })).toBe('Tenant acme created');
  });
});
