import { expect, test } from "@playwright/test";
import { cardNumber, columnSum, signIn, SCREENSHOTS, tabTo, waitForHydration } from "./helpers";

const RANGES: Array<[string, string, number]> = [
  ["1h", "Last hour", 60],
  ["6h", "Last 6 hours", 6],
  ["24h", "Last 24 hours", 24],
  ["7d", "Last 7 days", 7],
  ["30d", "Last 30 days", 30],
  ["90d", "Last 90 days", 90],
];

test("signed-out visit goes to sign-in and back @no-js @spa", async ({ page }) => {
  // The static app's first calls fetch a CSRF token together. The server
  // must reject none of them for a token that a later fetch replaced.
  const rejected: string[] = [];
  page.on("response", (response) => {
    if (response.status() === 403) rejected.push(response.url());
  });
  await page.goto("/usage?range=30d");
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel("Email").fill("member@example.com");
  await page.getByLabel("Password").fill("casola-demo");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/usage\?range=30d/);
  await expect(page.getByLabel("Time range")).toHaveValue("30d");
  expect(rejected).toEqual([]);
});

test("wrong password keeps the email @no-js @spa", async ({ page }) => {
  await page.goto("/login");
  await page.getByLabel("Email").fill("owner@example.com");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("The email address or password is incorrect.");
  await expect(page.getByLabel("Email")).toHaveValue("owner@example.com");
});

test("every range draws its buckets and agrees with the table @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await waitForHydration(page);
  // A marker on window survives client-side navigation but not a reload.
  await page.evaluate(() => ((window as any).__noReload = true));

  for (const [value, label, buckets] of RANGES) {
    await page.getByLabel("Time range").selectOption({ label });
    await expect(page).toHaveURL(new RegExp(`range=${value}`));
    await expect(page.locator(".bar-hit")).toHaveCount(buckets);
    expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

    const total = await cardNumber(page, "total");
    if (total > 0) {
      expect(await columnSum(page, 2)).toBe(total);
      expect(await columnSum(page, 3)).toBe(await cardNumber(page, "completed"));
      expect(await columnSum(page, 4)).toBe(await cardNumber(page, "failed"));
    }
    await page.screenshot({ path: `${SCREENSHOTS}/usage-${value}.png`, fullPage: true });
  }
});

test("the last bar is marked as still filling and has a tooltip @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=24h");
  await waitForHydration(page);
  const last = page.locator(".bar-hit").last();
  await expect(last).toHaveClass(/partial/);

  await last.hover();
  const tooltip = last.getByRole("tooltip");
  await expect(tooltip).toBeVisible();
  await expect(tooltip).toContainText("still filling");
  await expect(tooltip).toContainText("Completed:");
  await expect(tooltip).toContainText("Failed:");

  const first = page.locator(".bar-hit").first();
  await first.focus();
  await expect(first.getByRole("tooltip")).toBeVisible();
  await page.screenshot({ path: `${SCREENSHOTS}/usage-tooltip.png` });
});

test("table sorts by every column and shows it in the URL @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=90d&models=all");
  await waitForHydration(page);

  const models = () => page.locator(".model-table tbody th").allInnerTexts();
  await page.getByRole("link", { name: "Model", exact: true }).click();
  await expect(page).toHaveURL(/sort=model&dir=asc/);
  const ascending = await models();
  expect(ascending).toEqual([...ascending].sort());

  await page.getByRole("link", { name: "Model", exact: true }).click();
  await expect(page).toHaveURL(/sort=model&dir=desc/);
  const descending = await models();
  expect(descending).toEqual([...ascending].reverse());

  for (const column of ["Jobs", "Completed", "Failed", "Success Rate", "Compute Time"]) {
    await page.getByRole("link", { name: column, exact: true }).click();
    await expect(page.getByRole("columnheader", { name: column, exact: false }).first()).toHaveAttribute(
      "aria-sort",
      "descending",
    );
  }

  // Jobs, most first, is the default order, so the URL leaves it out.
  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  await expect(page).toHaveURL(/\/usage\?range=90d&models=all$/);
  const jobs = await page.locator(".model-table tbody tr > :nth-child(2)").allInnerTexts();
  const numbers = jobs.map((t) => Number(t.replace(/,/g, "")));
  expect(numbers).toEqual([...numbers].sort((a, b) => b - a));
});

test("table folds models past the top 20 @no-js @spa", async ({ page }) => {
  await signIn(page, "member@example.com");
  await page.goto("/usage?range=7d&sort=model&dir=asc");
  const rows = page.locator(".model-table tbody tr");
  await expect(rows).toHaveCount(21);
  const folded = rows.last();
  await expect(folded).toHaveClass("folded-row");
  const total = await cardNumber(page, "total");
  expect(await columnSum(page, 2)).toBe(total);
  expect(await columnSum(page, 3)).toBe(await cardNumber(page, "completed"));
  expect(await columnSum(page, 4)).toBe(await cardNumber(page, "failed"));

  // The first 20 by the chosen sort, then the rest as one row.
  const first = await page.locator(".model-table tbody tr:not(.folded-row) th").allInnerTexts();
  expect(first).toEqual([...first].sort());
  const more = await folded.locator("th").innerText();
  const hidden = Number(more.match(/^([\d,]+) more models$/)![1].replace(/,/g, ""));

  await page.getByRole("link", { name: `Show all ${20 + hidden} models` }).click();
  await expect(page).toHaveURL(/sort=model&dir=asc&models=all/);
  await expect(rows).toHaveCount(20 + hidden);
  await expect(page.locator(".model-table .folded-row")).toHaveCount(0);
  expect(await columnSum(page, 2)).toBe(total);

  // A new range keeps the whole list.
  await page.getByLabel("Time range").selectOption({ label: "Last 30 days" });
  if (test.info().project.name === "no-js") {
    await page.getByRole("button", { name: "Apply" }).click();
  }
  await expect(page).toHaveURL(/range=30d.*models=all/);
  await page.getByRole("link", { name: "Show the top 20 models" }).click();
  await expect(page).not.toHaveURL(/models=all/);
  await expect(rows).toHaveCount(21);
});

test("CSV download holds the visible range", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=7d&tz=UTC");
  const total = await cardNumber(page, "total");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download CSV" }).click(),
  ]);
  expect(download.suggestedFilename()).toBe("casola-usage-demo-7d.csv");
  const path = await download.path();
  const text = require("fs").readFileSync(path, "utf8") as string;
  const lines = text.trim().split("\n");
  expect(lines[0]).toBe("bucket_start,bucket_end,time_zone,model,jobs,completed,failed,gpu_ms");
  const jobs = lines.slice(1).reduce((sum, line) => sum + Number(line.split(",")[4]), 0);
  expect(jobs).toBe(total);
});

test("bad query string names the value @no-js", async ({ page }) => {
  await signIn(page, "member@example.com");
  const response = await page.goto("/usage?range=2w");
  expect(response?.status()).toBe(400);
  await expect(page.getByRole("alert")).toContainText('Unknown range "2w"');
  await expect(page.getByRole("alert")).toContainText("1h, 6h, 24h, 7d, 30d, 90d");
  await page.screenshot({ path: `${SCREENSHOTS}/usage-bad-range-${test.info().project.name}.png` });
});

test("range form works without JavaScript @no-js", async ({ page }) => {
  test.skip(test.info().project.name !== "no-js", "the Apply button shows only without JavaScript");
  await signIn(page, "owner@example.com");
  await page.getByLabel("Time range").selectOption("1h");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/range=1h/);
  await expect(page.locator(".bar-hit")).toHaveCount(60);
  expect(await cardNumber(page, "total")).toBeGreaterThanOrEqual(0);
  await page.screenshot({ path: `${SCREENSHOTS}/usage-no-js.png`, fullPage: true });
});

test("empty organization shows the explanation @no-js @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.getByLabel("Organization").selectOption({ label: "Empty Research Lab" });
  if (test.info().project.name === "no-js") {
    await page.getByRole("button", { name: "Switch" }).click();
  }
  await expect(page.getByRole("heading", { name: /No jobs yet in/ })).toBeVisible();
  expect(await cardNumber(page, "total")).toBe(0);
  await expect(page.locator(".model-table")).toHaveCount(0);
  await page.screenshot({ path: `${SCREENSHOTS}/usage-empty-${test.info().project.name}.png`, fullPage: true });
  // Switch back so later tests see the demo organization.
  await page.getByLabel("Organization").selectOption({ label: "Demo GPU Lab" });
  if (test.info().project.name === "no-js") {
    await page.getByRole("button", { name: "Switch" }).click();
  }
  await expect(page.locator(".model-table")).toBeVisible();
});

test("member sees usage and the data credit @spa", async ({ page }) => {
  await signIn(page, "member@example.com");
  await expect(page.locator(".data-credit")).toContainText("Microsoft Philly trace");
  await expect(page.getByText("Signed in as member@example.com (member)")).toBeVisible();
  await page.screenshot({ path: `${SCREENSHOTS}/usage-member.png`, fullPage: true });
});

test("sign-out ends the session @no-js @spa", async ({ page }) => {
  await signIn(page, "admin@example.com");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login\?error=signed_out/);
  await page.goto("/usage");
  await expect(page).toHaveURL(/\/login/);
});

test("failed load offers retry and slow load shows progress", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await waitForHydration(page);
  const summary = "**/api/usage/summary";

  // The server's response when its database is unreachable.
  await page.route(summary, (route) =>
    route.fulfill({
      status: 503,
      contentType: "application/json",
      headers: { serverfnerror: "/api/usage/summary" },
      body: JSON.stringify({ Unavailable: "The database is unavailable right now. Try again in a few seconds." }),
    }),
  );
  await page.getByLabel("Time range").selectOption({ label: "Last hour" });
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("Usage could not be loaded");
  await expect(alert).toContainText("The database is unavailable right now");
  await page.screenshot({ path: `${SCREENSHOTS}/usage-load-failed.png` });

  // A slow network: the retry shows progress, then the data.
  await page.unroute(summary);
  await page.route(summary, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await route.continue();
  });
  await page.getByRole("link", { name: "Retry" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Loading usage" })).toBeVisible();
  await expect(page.locator(".bar-hit")).toHaveCount(60);
});

test("walks back three weeks with the arrows and forward again", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=7d&tz=UTC");
  await waitForHydration(page);
  const label = page.locator(".window-label");
  await expect(page.locator(".window-nav [aria-disabled=true]")).toHaveText("Later →");
  const labels = [await label.innerText()];

  for (let step = 0; step < 3; step++) {
    await page.getByRole("link", { name: "← Earlier" }).click();
    await expect(label).not.toHaveText(labels[labels.length - 1]);
    labels.push(await label.innerText());
    await expect(page.locator(".bar-hit")).toHaveCount(7);
    await expect(page.locator(".bar-hit.partial")).toHaveCount(0);
  }
  await expect(page).toHaveURL(/end=\d{4}-\d{2}-\d{2}/);
  await expect(page.locator('[data-card="total"] .card-change')).toContainText("vs previous 7 days");
  await page.screenshot({ path: `${SCREENSHOTS}/usage-past-window.png`, fullPage: true });

  for (let step = 2; step >= 0; step--) {
    await page.getByRole("link", { name: "Later →" }).click();
    await expect(label).toHaveText(labels[step]);
  }
  await expect(page).not.toHaveURL(/end=/);
});

test("custom range from the date inputs @no-js", async ({ page }) => {
  await signIn(page, "owner@example.com");
  const day = (offset: number) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10);
  await page.goto("/usage?tz=UTC");
  await page.getByLabel("From").fill(day(4));
  await page.getByLabel("To").fill(day(2));
  await page.getByRole("button", { name: "Show custom range" }).click();
  await expect(page).toHaveURL(/range=custom/);
  await expect(page).toHaveURL(new RegExp(`from=${day(4)}`));
  await expect(page).toHaveURL(new RegExp(`to=${day(2)}`));
  await expect(page.locator(".bar-hit")).toHaveCount(3);
  await expect(page.getByLabel("Time range")).toHaveValue("custom");
  await expect(page.locator('[data-card="total"] .card-change')).toContainText("vs previous 3 days");
});

test("keyboard switches range and keeps focus @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await waitForHydration(page);
  const range = page.getByLabel("Time range");
  await expect(range).toHaveValue("7d");

  await tabTo(page, range);
  await page.keyboard.press("ArrowDown");
  await expect(page).toHaveURL(/range=30d/);
  await expect(page.locator(".bar-hit")).toHaveCount(30);
  await expect(range).toBeFocused();
  await page.keyboard.press("ArrowUp");
  await expect(page).toHaveURL(/range=7d/);
  await expect(page.locator(".bar-hit")).toHaveCount(7);
  await expect(range).toBeFocused();
});

test("keyboard sorts the table and keeps focus", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await waitForHydration(page);
  const model = page.getByRole("link", { name: "Model", exact: true });

  await tabTo(page, model);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/sort=model&dir=asc/);
  await expect(page.getByRole("columnheader", { name: "Model" })).toHaveAttribute("aria-sort", "ascending");
  await expect(model).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/sort=model&dir=desc/);
  await expect(page.getByRole("columnheader", { name: "Model" })).toHaveAttribute("aria-sort", "descending");
});

test("chart bars share one tab stop and arrow keys move", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=24h");
  await waitForHydration(page);
  const bars = page.locator(".bar-hit");
  await expect(bars).toHaveCount(24);
  await expect(page.locator('.bar-hit[tabindex="0"]')).toHaveCount(1);

  await tabTo(page, bars.first());
  await expect(bars.first().getByRole("tooltip")).toBeVisible();
  await page.keyboard.press("ArrowRight");
  await expect(bars.nth(1)).toBeFocused();
  await expect(bars.nth(1).getByRole("tooltip")).toBeVisible();
  await expect(bars.first().getByRole("tooltip")).toBeHidden();
  await page.keyboard.press("End");
  await expect(bars.last()).toBeFocused();
  await expect(bars.last().getByRole("tooltip")).toContainText("still filling");
  await page.keyboard.press("Home");
  await expect(bars.first()).toBeFocused();

  // The bar last visited is the one Tab returns to, and one Tab leaves.
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Tab");
  await expect(bars.nth(1)).not.toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(bars.nth(1)).toBeFocused();
  await expect(page.locator('.bar-hit[tabindex="0"]')).toHaveCount(1);
});

test("chart data table matches the cards @no-js", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/usage?range=7d");
  const toggle = page.getByText("Show data as a table");
  await tabTo(page, toggle);
  await page.keyboard.press("Enter");
  const table = page.getByRole("table", { name: "Completed and failed jobs per period" });
  await expect(table).toBeVisible();
  await expect(table.locator("tbody tr")).toHaveCount(7);

  const column = async (n: number) =>
    (await table.locator(`tbody tr > :nth-child(${n})`).allInnerTexts()).reduce(
      (sum, text) => sum + Number(text.replace(/,/g, "")),
      0,
    );
  expect(await column(2)).toBe(await cardNumber(page, "completed"));
  expect(await column(3)).toBe(await cardNumber(page, "failed"));
  await expect(page.locator(".chart figcaption .visually-hidden")).toContainText("7 buckets from");
});
