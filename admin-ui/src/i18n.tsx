// English and Simplified Chinese. The English text is the key; `tr()` returns
// the current language's text, with `{name}` placeholders filled in.
import { SegmentedControl } from '@mantine/core';
import { createContext, useContext, useState, type ReactNode } from 'react';
import { zh } from './i18n-zh';

export type Lang = 'en' | 'zh';
const STORAGE_KEY = 'confab.lang';

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'zh') return saved;
  } catch {
    // storage unavailable
  }
  return typeof navigator !== 'undefined' && navigator.language?.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

let current: Lang = initialLang();

export function lang(): Lang {
  return current;
}

export function tr(en: string, vars?: Record<string, string | number>): string {
  const text = current === 'zh' ? (zh[en] ?? en) : en;
  return vars ? text.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m)) : text;
}

const LangContext = createContext<{ lang: Lang; setLang: (l: Lang) => void }>({
  lang: current,
  setLang: () => {},
});

/** Re-renders everything under it (by key) when the language changes. */
export function LangProvider({ children }: { children: (lang: Lang) => ReactNode }) {
  const [value, setValue] = useState<Lang>(current);
  const setLang = (l: Lang) => {
    current = l;
    try {
      localStorage.setItem(STORAGE_KEY, l);
    } catch {
      // not kept
    }
    document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
    setValue(l);
  };
  if (typeof document !== 'undefined') document.documentElement.lang = value === 'zh' ? 'zh-CN' : 'en';
  return <LangContext.Provider value={{ lang: value, setLang }}>{children(value)}</LangContext.Provider>;
}

export function LangSwitch() {
  const { lang, setLang } = useContext(LangContext);
  return (
    <SegmentedControl
      size="xs"
      aria-label="Language / 语言"
      value={lang}
      onChange={(v) => setLang(v as Lang)}
      data={[
        { value: 'en', label: 'EN' },
        { value: 'zh', label: '中文' },
      ]}
    />
  );
}
