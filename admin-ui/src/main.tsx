import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { MantineProvider, createTheme } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import './app.css';
import { AuthProvider } from './auth';
import { ConsoleRouter } from './routes';
import { LangProvider } from './i18n';

const theme = createTheme({ primaryColor: 'blue', defaultRadius: 'md' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="light">
      <Notifications position="bottom-right" limit={3} />
      <AuthProvider>
        <LangProvider>{(lang) => <ConsoleRouter key={lang} />}</LangProvider>
      </AuthProvider>
    </MantineProvider>
  </StrictMode>,
);
