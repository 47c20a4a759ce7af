import { expect, Page, Request, test } from "@playwright/test";
import { SCREENSHOTS, signIn, tabTo } from "./helpers";

// These tests run in order against the demo organization, whose owner
// starts with two cards (Visa 4242, Mastercard 4444 as the default) and an
// active subscription in the Stripe stand-in.
test.describe.configure({ mode: "serial" });

const NEW_CARD = "4000056655665556";

/** Opens /billing and waits until the page has hydrated. */
async function openBilling(page: Page): Promise<void> {
  await page.goto("/billing");
  await expect(page.getByRole("heading", { name: "Billing", level: 1 })).toBeVisible();
  await expect(page.locator(".billing-page")).toHaveAttribute("data-hydrated", "true");
}

function cardRow(page: Page, last4: string) {
  return page.locator(`.card-row[data-last4="${last4}"]`);
}

test("billing renders without JavaScript @no-js", async ({ page }) => {
  await signIn(page, "member@example.com");
  await page.goto("/billing");

  await expect(page.getByRole("heading", { name: "Billing", level: 1 })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Subscription" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Recent invoices" })).toBeVisible();
  await expect(page.getByText(/^Only owners can manage billing for Demo GPU Lab:/)).toBeVisible();
  await expect(page.getByRole("button", { name: "Add Card" })).toHaveCount(0);
});

test("member sees billing without controls @spa", async ({ page }) => {
  await signIn(page, "member@example.com");
  await openBilling(page);

  await expect(page.getByText(/^Only owners can manage billing for Demo GPU Lab:/)).toBeVisible();
  await expect(page.locator(".card-row")).toHaveCount(2);
  await expect(page.locator('[data-field="status"]')).toHaveText("active");
  await expect(page.getByRole("button", { name: "Add Card" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /^Remove / })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /^Make / })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Cancel Subscription" })).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Billing audit log" })).toHaveCount(0);
  await page.screenshot({ path: `${SCREENSHOTS}/billing-member.png`, fullPage: true });
});

test("owner sees cards, subscription and audit log @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  await expect(page.locator(".card-row")).toHaveCount(2);
  await expect(cardRow(page, "4444").locator(".star.filled")).toBeVisible();
  await expect(cardRow(page, "4242").locator(".star.filled")).toHaveCount(0);
  await expect(page.locator('[data-field="plan"]')).toHaveText("Casola Pro");
  await expect(page.locator('[data-field="price"]')).toHaveText("$49.00 / month");
  await expect(page.getByRole("heading", { name: "Billing audit log" })).toBeVisible();
  await page.screenshot({ path: `${SCREENSHOTS}/billing-owner.png`, fullPage: true });
});

test("Add Card sends no card number to our server @spa", async ({ page, baseURL }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  // The static app's requests go to its own host and to the server.
  const ownOrigins = [baseURL!, process.env.CASOLA_E2E_API_URL ?? baseURL!].map((url) => new URL(url).origin);
  const sent: Request[] = [];
  page.on("request", (request) => {
    if (ownOrigins.includes(new URL(request.url()).origin)) sent.push(request);
  });

  await page.getByRole("button", { name: "Add Card" }).click();
  const form = page.locator("#card-element");
  await form.locator('input[placeholder="number"]').fill(NEW_CARD);
  await form.locator('input[placeholder="exp_month"]').fill("10");
  await form.locator('input[placeholder="exp_year"]').fill("32");
  await form.locator('input[placeholder="cvc"]').fill("123");
  await form.locator('input[placeholder="postal_code"]').fill("10001");
  await page.screenshot({ path: `${SCREENSHOTS}/billing-add-card.png` });
  await page.getByRole("button", { name: "Save card" }).click();

  await expect(cardRow(page, "5556")).toBeVisible();
  await expect(page.locator(".card-row")).toHaveCount(3);
  expect(sent.length).toBeGreaterThan(0);
  for (const request of sent) {
    const text = `${request.url()} ${request.postData() ?? ""} ${JSON.stringify(request.headers())}`;
    expect(text, request.url()).not.toContain(NEW_CARD);
    expect(text, request.url()).not.toContain(NEW_CARD.slice(0, 12));
  }
});

test("owner stars the new card @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  await page.getByRole("button", { name: "Make Visa ending in 5556 the default" }).click();
  await expect(cardRow(page, "5556").locator(".star.filled")).toBeVisible();
  await expect(cardRow(page, "4444").locator(".star.filled")).toHaveCount(0);
});

test("owner removes a card after confirming @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  await page.getByRole("button", { name: "Remove Visa ending in 4242" }).click();
  const dialog = page.getByRole("alertdialog");
  await expect(dialog).toContainText("Remove the Visa card ending in 4242?");
  await dialog.getByRole("button", { name: "Keep" }).click();
  await expect(cardRow(page, "4242")).toBeVisible();

  await page.getByRole("button", { name: "Remove Visa ending in 4242" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Remove card" }).click();
  await expect(cardRow(page, "4242")).toHaveCount(0);
  await expect(page.locator(".card-row")).toHaveCount(2);
});

test("owner cancels the subscription @spa", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);

  await page.getByRole("button", { name: "Cancel Subscription" }).click();
  const dialog = page.getByRole("alertdialog");
  await expect(dialog).toContainText("The downgrade is immediate");
  await page.screenshot({ path: `${SCREENSHOTS}/billing-cancel-confirm.png` });
  await dialog.getByRole("button", { name: "Cancel Subscription now" }).click();

  await expect(page.locator('[data-field="plan"]')).toHaveText("Free");
  await expect(page.locator(".card-row")).toHaveCount(0);
  await expect(page.getByText("No cards on file.")).toBeVisible();
  await page.screenshot({ path: `${SCREENSHOTS}/billing-owner-canceled.png`, fullPage: true });
});

/** Adds a card with the keyboard alone: Tab to Add Card, type into the
 *  card fields in tab order, Tab to Save card, press Enter. */
async function addCardByKeyboard(page: Page, number: string): Promise<void> {
  await tabTo(page, page.getByRole("button", { name: "Add Card" }));
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Add Card" });
  await expect(dialog.locator('input[placeholder="number"]')).toBeFocused();
  const fields: Array<[string, string]> = [
    ["number", number],
    ["exp_month", "10"],
    ["exp_year", "32"],
    ["cvc", "123"],
    ["postal_code", "10001"],
  ];
  for (const [placeholder, value] of fields) {
    // The stand-in's form moves to the next field by itself after a full
    // expiry month, so Tab only when focus is still on the previous one.
    await tabTo(page, dialog.locator(`input[placeholder="${placeholder}"]`), 1);
    await page.keyboard.type(value);
  }
  await tabTo(page, dialog.getByRole("button", { name: "Save card" }), 3);
  await page.keyboard.press("Enter");
  await expect(cardRow(page, number.slice(-4))).toBeVisible();
}

// Continues from the cancelled subscription above: no cards, Free plan.
test("keyboard alone adds, stars, removes and cancels", async ({ page }) => {
  await signIn(page, "owner@example.com");
  await openBilling(page);
  await expect(page.locator(".card-row")).toHaveCount(0);

  await addCardByKeyboard(page, NEW_CARD);
  await openBilling(page);
  await addCardByKeyboard(page, "4242424242424242");
  await openBilling(page);
  await expect(page.locator(".card-row")).toHaveCount(2);

  // Star: the pressed button goes away, so focus moves to the Cards heading.
  await tabTo(page, page.getByRole("button", { name: "Make Visa ending in 4242 the default" }));
  await page.keyboard.press("Enter");
  await expect(cardRow(page, "4242").locator(".star.filled")).toBeVisible();
  await expect(cardRow(page, "5556").locator(".star.filled")).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Cards" })).toBeFocused();

  // Remove: Tab from Keep reaches the confirming button.
  await tabTo(page, page.getByRole("button", { name: "Remove Visa ending in 5556" }));
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("alertdialog");
  await expect(dialog.getByRole("button", { name: "Keep" })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(dialog.getByRole("button", { name: "Remove card" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(cardRow(page, "5556")).toHaveCount(0);
  await expect(page.locator(".card-row")).toHaveCount(1);
  await expect(page.getByRole("heading", { name: "Cards" })).toBeFocused();

  // Subscribe again, so there is a subscription to cancel.
  await tabTo(page, page.getByRole("button", { name: "Subscribe" }));
  await page.keyboard.press("Enter");
  await expect(page.locator('[data-field="status"]')).toHaveText("active");

  await tabTo(page, page.getByRole("button", { name: "Cancel Subscription" }));
  await page.keyboard.press("Enter");
  await expect(page.getByRole("alertdialog")).toContainText("The downgrade is immediate");
  await expect(page.getByRole("alertdialog").getByRole("button", { name: "Keep" })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Cancel Subscription now" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator('[data-field="plan"]')).toHaveText("Free");
  await expect(page.locator(".card-row")).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Subscription" })).toBeFocused();

  // Leave one card, so the checks with JavaScript off, which run after
  // these tests, see a card row with its buttons.
  await openBilling(page);
  await addCardByKeyboard(page, NEW_CARD);
});
