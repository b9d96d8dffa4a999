/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// The built page's Content-Security-Policy (a <meta>, so it holds whoever serves
// the files; a server header may add frame-ancestors). Scripts and API calls
// only from the console's own origin; Mantine sets styles inline.
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

function csp(): Plugin {
  return {
    name: 'confab-csp',
    apply: 'build', // the dev server injects inline scripts (React refresh)
    transformIndexHtml: (html) => html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`),
  };
}

// The admin API during `npm run dev` / `npm run preview`: a running `confab serve`.
const api = process.env.CONFAB_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/console/',
  plugins: [react(), csp()],
  server: { proxy: { '/admin/v1': api } },
  preview: { proxy: { '/admin/v1': api } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Deterministic output (committed; CI rebuilds and diffs it).
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    css: false,
    // jsdom + user-event on a loaded 2-core machine take seconds per test.
    testTimeout: 20_000,
  },
});
