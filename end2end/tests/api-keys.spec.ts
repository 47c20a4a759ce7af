import { expect, test } from "@playwright/test";
import { signIn, SCREENSHOTS } from "./helpers";

test("owner creates a key, sees it once, and revokes it", async ({ page, request }) => {
  await signIn(page, "owner@example.com");
  await page.getByRole("link", { name: "API keys" }).click();
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();

  const name = `e2e key ${Date.now()}`;
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = page.locator(".new-key .secret");
  await expect(secret).toHaveText(/^csk_/);
  const key = await secret.innerText();
  await page.screenshot({ path: `${SCREENSHOTS}/api-keys-owner.png`, fullPage: true });

  // The key works for the ingestion API until it is revoked.
  const batch = {
    jobs: [{ id: `e2e-${Date.now()}`, model: "e2e", status: "queued", submitted_at: new Date().toISOString(), gpu_count: 1 }],
  };
  const accepted = await request.post("/api/v1/jobs", { data: batch, headers: { Authorization: `Bearer ${key}` } });
  expect(accepted.status()).toBe(200);

  await page.getByRole("button", { name: `Revoke key ${name}` }).click();
  await expect(page.getByRole("row", { name: new RegExp(name) })).toContainText("Revoked");
  const rejected = await request.post("/api/v1/jobs", { data: batch, headers: { Authorization: `Bearer ${key}` } });
  expect(rejected.status()).toBe(401);
});

test("member has no API keys page @no-js", async ({ page }) => {
  await signIn(page, "member@example.com");
  await expect(page.getByRole("link", { name: "API keys" })).toHaveCount(0);
  const response = await page.goto("/api-keys");
  expect(response?.status()).toBe(403);
  await expect(page.getByRole("alert")).toContainText("Only owners of Demo GPU Lab can do this");
});
