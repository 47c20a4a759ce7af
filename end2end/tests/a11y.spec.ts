import { expect, Page, test } from "@playwright/test";
import { expectNoAxeViolations, SCREENSHOTS, signIn, tabTo, waitForHydration } from "./helpers";

// axe-core at WCAG 2.2 A and AA on every page and dialog, for an owner and
// a member. Tests tagged @no-js run again with JavaScript off. Nothing
// here changes billing state: dialogs are opened and dismissed, so the
// billing tests that follow still find the demo organization as seeded.

const hydrated = () => test.info().project.name === "hydrated";

/** Opens /billing and, with JavaScript on, waits for hydration. */
async function openBilling(page: Page): Promise<void> {
  await page.goto("/billing");
  await expect(page.getByRole("heading", { name: "Billing", level: 1 })).toBeVisible();
  if (hydrated()) await expect(page.locator(".billing-page")).toHaveAttribute("data-hydrated", "true");
}

test("axe: sign-in page @no-js", async ({ page }) => {
  await page.goto("/login");
  await expect(page.getByLabel("Email")).toBeVisible();
  await expectNoAxeViolations(page);
});

for (const email of ["owner@example.com", "member@example.com"]) {
  const role = email.split("@")[0];

  test(`axe: usage page as ${role} @no-js`, async ({ page }) => {
    await signIn(page, email);
    if (hydrated()) await waitForHydration(page);
    await expectNoAxeViolations(page);

    // The chart's data table, once opened, and a bar's tooltip.
    await page.getByText("Show data as a table").click();
    await expect(page.locator(".data-table")).toBeVisible();
    await page.locator(".bar-hit").first().focus();
    await expectNoAxeViolations(page);
  });

  test(`axe: billing page as ${role} @no-js`, async ({ page }) => {
    await signIn(page, email);
    await openBilling(page);
    // The billing tests change the cards, and the checks with JavaScript
    // off run after them, so only require that some card is listed.
    await expect(page.locator(".card-row").first()).toBeVisible();
    await expectNoAxeViolations(page);
  });
}

test("axe: API keys page as owner @no-js", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.goto("/api-keys");
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  await expectNoAxeViolations(page);
});

test("axe: API keys refusal as member @no-js", async ({ page }) => {
  await signIn(page, "member@example.com");
  await page.goto("/api-keys");
  await expect(page.getByRole("alert")).toBeVisible();
  await expectNoAxeViolations(page);
});

test("axe: empty usage page @no-js", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await page.getByLabel("Organization").selectOption({ label: "Empty Research Lab" });
  if (!hydrated()) await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.getByRole("heading", { name: /No jobs yet in/ })).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByLabel("Organization").selectOption({ label: "Demo GPU Lab" });
  if (!hydrated()) await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.locator(".model-table")).toBeVisible();
});

test("axe: remove and cancel dialogs", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  await page.getByRole("button", { name: "Remove Visa ending in 4242" }).click();
  await expect(page.getByRole("alertdialog")).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByRole("alertdialog").getByRole("button", { name: "Keep" }).click();

  await page.getByRole("button", { name: "Cancel Subscription" }).click();
  await expect(page.getByRole("alertdialog")).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByRole("alertdialog").getByRole("button", { name: "Keep" }).click();
  await expect(page.getByRole("alertdialog")).toHaveCount(0);
});

test("axe: Add Card dialog", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);
  await page.getByRole("button", { name: "Add Card" }).click();
  const dialog = page.getByRole("dialog", { name: "Add Card" });
  await expect(dialog.locator('input[placeholder="number"]')).toBeVisible();
  await expectNoAxeViolations(page);
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
});

test("remove dialog traps focus, closes on Escape, returns focus", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  const trash = page.getByRole("button", { name: "Remove Visa ending in 4242" });
  await tabTo(page, trash);
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("alertdialog");
  await expect(dialog).toBeVisible();
  const keep = dialog.getByRole("button", { name: "Keep" });
  const remove = dialog.getByRole("button", { name: "Remove card" });
  await expect(keep).toBeFocused();

  await page.keyboard.press("Tab");
  await expect(remove).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(keep).toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(remove).toBeFocused();

  await page.keyboard.press("Escape");
  await expect(dialog).toHaveCount(0);
  await expect(trash).toBeFocused();
  await expect(page.locator(".card-row")).toHaveCount(2);
});

test("Add Card dialog traps focus, closes on Escape, returns focus", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  const addCard = page.getByRole("button", { name: "Add Card" });
  await tabTo(page, addCard);
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Add Card" });
  const number = dialog.locator('input[placeholder="number"]');
  await expect(number).toBeFocused();

  // Tab past the last control (Save card) wraps to the first field.
  await tabTo(page, dialog.getByRole("button", { name: "Save card" }), 10);
  await page.keyboard.press("Tab");
  await expect(number).toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(dialog.getByRole("button", { name: "Save card" })).toBeFocused();

  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(addCard).toBeFocused();
});

// Screenshots at a phone's and a desktop's width in both colour schemes,
// with axe run on each, since dark colours and narrow layouts have their
// own contrast and reflow failures.
for (const colorScheme of ["light", "dark"] as const) {
  for (const width of [375, 1440]) {
    test(`layout at ${width} px, ${colorScheme}`, async ({ page }) => {
      await page.emulateMedia({ colorScheme });
      await page.setViewportSize({ width, height: 900 });
      await signIn(page, "owner@example.com");
      await waitForHydration(page);

      // The page itself never scrolls sideways; wide tables scroll inside.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      const menu = page.getByRole("button", { name: "Menu" });
      if (width < 720) {
        await expect(menu).toBeVisible();
        await expect(page.getByRole("link", { name: "Billing" })).toBeHidden();
      } else {
        await expect(menu).toBeHidden();
        await expect(page.getByRole("link", { name: "Billing" })).toBeVisible();
      }
      await expectNoAxeViolations(page);
      await page.screenshot({ path: `${SCREENSHOTS}/usage-${width}-${colorScheme}.png`, fullPage: true });

      if (width < 720) {
        await menu.click();
        await expect(menu).toHaveAttribute("aria-expanded", "true");
        await page.getByRole("link", { name: "Billing" }).click();
      } else {
        await page.getByRole("link", { name: "Billing" }).click();
      }
      await expect(page.locator(".billing-page")).toHaveAttribute("data-hydrated", "true");
      await expect(page.locator(".card-row")).toHaveCount(2);
      const billingOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(billingOverflow).toBeLessThanOrEqual(0);
      await expectNoAxeViolations(page);
      await page.screenshot({ path: `${SCREENSHOTS}/billing-${width}-${colorScheme}.png`, fullPage: true });
    });
  }
}

test("menu shows the links at 375 px without JavaScript @no-js", async ({ page }) => {
  test.skip(hydrated(), "the menu button works with JavaScript; this checks the fallback");
  await page.setViewportSize({ width: 375, height: 800 });
  await signIn(page, "member@example.com");
  await expect(page.getByRole("link", { name: "Billing" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Menu" })).toBeHidden();
  await page.screenshot({ path: `${SCREENSHOTS}/usage-375-no-js.png`, fullPage: true });
});
