import { expect, Page } from "@playwright/test";

export const PASSWORD = "casola-demo";
export const SCREENSHOTS = "screenshots";

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
