import { defineConfig } from "@playwright/test";

// The server is started by scripts/test.sh, which sets CASOLA_E2E_URL: the
// casola server for the hydrated and no-js projects, the static host of
// the single-page app for the spa project.
const baseURL = process.env.CASOLA_E2E_URL ?? "http://127.0.0.1:3100";

// Debian's chromium: Playwright's own browser download is impossible here.
// The flags keep it from reaching out to the network, which is closed.
const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    baseURL,
    browserName: "chromium",
    headless: true,
    launchOptions,
    viewport: { width: 1440, height: 900 },
    timezoneId: "America/New_York",
    locale: "en-US",
    acceptDownloads: true,
  },
  projects: [
    { name: "hydrated", use: { javaScriptEnabled: true } },
    { name: "no-js", use: { javaScriptEnabled: false }, grep: /@no-js/ },
    // The static single-page app (`make spa`), which calls the server on
    // another origin; run alone against its own server by scripts/test.sh.
    { name: "spa", use: { javaScriptEnabled: true }, grep: /@spa/ },
  ],
});
