import AxeBuilder from "@axe-core/playwright";
import { expect, Locator, Page, test } from "@playwright/test";

export const PASSWORD = "casola-demo";
/** Folder for screenshots; scripts/test.sh gives the static app's run its own. */
export const SCREENSHOTS = process.env.CASOLA_E2E_SCREENSHOTS ?? "screenshots";

/** Signs in through the form and waits for the usage page. */
export async function signIn(page: Page, email: string): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/usage/);
  await expect(page.getByRole("heading", { name: "Usage", level: 1 })).toBeVisible();
}

/** Reads a summary card's value as a number ("15,000" is 15000). */
export async function cardNumber(page: Page, card: string): Promise<number> {
  const text = await page.locator(`[data-card="${card}"] .card-value`).innerText();
  return Number(text.replace(/,/g, ""));
}

/** Sums one numeric column of the model table (1-based, model is 1). */
export async function columnSum(page: Page, column: number): Promise<number> {
  const cells = await page.locator(`.model-table tbody tr > :nth-child(${column})`).allInnerTexts();
  return cells.reduce((sum, text) => sum + Number(text.replace(/,/g, "")), 0);
}

/** Waits until the page has hydrated: the chart has been redrawn at the
 *  width the layout gives it, which only the WASM client does. */
export async function waitForHydration(page: Page): Promise<void> {
  await expect
    .poll(async () => page.locator(".chart-svg svg").getAttribute("width"))
    .not.toBe("960");
}

/** WCAG 2.2 levels A and AA, as axe-core tags them. */
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"];

/** Runs axe-core on the page, or on the part `selector` matches, and
 *  fails listing each violated rule with the elements that break it. */
export async function expectNoAxeViolations(page: Page, selector?: string): Promise<void> {
  if (test.info().project.use.javaScriptEnabled === false) {
    await expectNoAxeViolationsInCopy(page, selector);
    return;
  }
  await expectNoViolations(page, selector);
}

/** axe-core is a script, and a page with JavaScript off runs none, so
 *  this serves the page's current HTML again at its own URL to a second
 *  page. The copy drops every <script> element and unwraps <noscript>, so
 *  it shows what a browser with JavaScript off shows, and no page script
 *  runs in it; only axe-core, which Playwright injects, runs there. */
async function expectNoAxeViolationsInCopy(page: Page, selector?: string): Promise<void> {
  const html = (await page.content())
    .replace(/<script\b[\s\S]*?<\/script>/gi, "")
    .replace(/<\/?noscript>/gi, "");
  const url = page.url();
  const context = await page.context().browser()!.newContext({
    baseURL: url,
    viewport: page.viewportSize(),
    javaScriptEnabled: true,
  });
  try {
    const copy = await context.newPage();
    await copy.route(url, (route) => route.fulfill({ status: 200, contentType: "text/html", body: html }));
    await copy.goto(url);
    await expect(copy.locator("script")).toHaveCount(0);
    await expectNoViolations(copy, selector);
  } finally {
    await context.close();
  }
}

async function expectNoViolations(page: Page, selector?: string): Promise<void> {
  let builder = new AxeBuilder({ page }).withTags(WCAG_TAGS);
  if (selector) builder = builder.include(selector);
  const results = await builder.analyze();
  const violations = results.violations.map(
    (violation) => `${violation.id} (${violation.impact}): ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`,
  );
  expect(violations, `axe-core violations on ${page.url()}`).toEqual([]);
  // An empty result from a page that failed to render would prove nothing.
  expect(results.passes.length).toBeGreaterThan(0);
}

/** Presses Tab until `target` has focus, as a keyboard user would reach
 *  it, and fails when it is not in the tab order within `limit` presses. */
export async function tabTo(page: Page, target: Locator, limit = 80): Promise<void> {
  for (let presses = 0; presses < limit; presses++) {
    if (await target.evaluate((element) => element === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  await expect(target, `not reached with ${limit} presses of Tab`).toBeFocused({ timeout: 1 });
}
