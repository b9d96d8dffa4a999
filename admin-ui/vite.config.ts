/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The admin API during `npm run dev` / `npm run preview`: a running `confab serve`.
const api = process.env.CONFAB_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/console/',
  plugins: [react()],
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
  },
});
