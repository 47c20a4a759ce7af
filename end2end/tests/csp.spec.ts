import { expect, Page, test } from "@playwright/test";
import { signIn, waitForHydration } from "./helpers";

/** Collects every Content-Security-Policy violation the page reports:
 *  Chromium's console errors and the `securitypolicyviolation` events. */
async function recordViolations(page: Page): Promise<() => Promise<string[]>> {
  const fromConsole: string[] = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) fromConsole.push(message.text());
  });
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { casolaCspViolations: string[] }).casolaCspViolations = seen;
    document.addEventListener("securitypolicyviolation", (event) => {
      seen.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  return async () => {
    const fromEvents = await page.evaluate(
      () => (window as unknown as { casolaCspViolations?: string[] }).casolaCspViolations ?? [],
    );
    return [...fromConsole, ...fromEvents];
  };
}

test("pages hydrate under the Content-Security-Policy", async ({ page }) => {
  const violations = await recordViolations(page);

  const login = await page.goto("/login");
  const policy = login!.headers()["content-security-policy"];
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+'/);
  expect(policy).not.toContain("'unsafe-inline' 'wasm");

  await signIn(page, "owner@example.com");
  await waitForHydration(page);
  expect(await violations(), "on /usage").toEqual([]);

  await page.goto("/billing");
  await expect(page.locator(".billing-page")).toHaveAttribute("data-hydrated", "true");
  // Opening Add Card loads Stripe.js from its configured origin.
  await page.getByRole("button", { name: "Add Card" }).click();
  await expect(page.locator('#card-element input[placeholder="number"]')).toBeVisible();
  await page.locator("#add-card-cancel").click();
  expect(await violations(), "on /billing").toEqual([]);

  await page.goto("/api-keys");
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  expect(await violations(), "on /api-keys").toEqual([]);
});

test("server function call without the CSRF token is rejected", async ({ page }) => {
  await signIn(page, "member@example.com");

  // page.request shares the browser's cookies but not the page's token.
  const response = await page.request.post("/api/session", {
    headers: { origin: new URL(page.url()).origin },
  });
  expect(response.status()).toBe(403);
  expect(await response.text()).toContain("CSRF");

  const fromPage = await page.evaluate(async () => (await fetch("/api/session", { method: "POST" })).status);
  expect(fromPage, "the page's own fetch carries the token").toBe(200);
});
