// The web page in Debian's Chromium (driven by playwright-core), served by
// the gateway in front of the real services: two users chat live in both
// directions, a reload loses and duplicates nothing, markup in a message is
// shown as text and never runs, and older history pages in on scrolling up.
//
// Env: IM_WEB_GATEWAY_URL (the gateway serving web/dist),
// IM_WEB_TEST_OUTPUT (screenshots on failure; default web/test-output),
// IM_CHROMIUM (default /usr/bin/chromium).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { authed, makeClients, newClientMsgId, type Session } from "../src/api";

const gateway = process.env.IM_WEB_GATEWAY_URL;
if (!gateway) throw new Error("IM_WEB_GATEWAY_URL must be set (tests/steps/60-web.sh sets it)");
const outputDir =
  process.env.IM_WEB_TEST_OUTPUT ?? new URL("../test-output", import.meta.url).pathname;
const suffix = `${process.pid}${Date.now() % 100000}`;
const password = "correct horse battery";
const xss = "<img src=x onerror=alert(1)>";

interface User {
  name: string;
  context: BrowserContext;
  page: Page;
  dialogs: string[];
  pageErrors: string[];
}

let browser: Browser;
const users: User[] = [];

async function openUser(name: string): Promise<User> {
  // A fresh context each: its own localStorage, cookies and cache.
  const context = await browser.newContext();
  const page = await context.newPage();
  const user: User = { name, context, page, dialogs: [], pageErrors: [] };
  page.on("dialog", (dialog) => {
    user.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => user.pageErrors.push(String(error)));
  await page.goto(gateway!);
  users.push(user);
  return user;
}

async function createAccount(user: User): Promise<void> {
  await user.page.fill("#username", user.name);
  await user.page.fill("#password", password);
  await user.page.click("#register-button");
  await user.page.waitForSelector("#chat-view:not([hidden])");
  await user.page.waitForSelector('#status[data-state="live"]');
}

async function send(user: User, text: string): Promise<void> {
  await user.page.fill("#composer-input", text);
  await user.page.click("#send-button");
}

async function openConversationWith(user: User, peer: string): Promise<void> {
  const item = user.page.locator("#conversation-list li", { hasText: peer });
  await item.waitFor();
  await item.click();
  await user.page.waitForFunction(
    (title) => document.getElementById("conversation-title")?.textContent === title,
    peer,
  );
}

interface ShownEntry {
  seq: string;
  text: string;
  event: boolean; // a membership event rather than a message
}

// The shown entries' seqs and texts, in page order.
async function shownEntries(user: User): Promise<ShownEntry[]> {
  return user.page.$$eval("#messages .message", (rows) =>
    rows.map((row) => ({
      seq: (row as HTMLElement).dataset.seq ?? "",
      text: row.querySelector(".text")?.textContent ?? "",
      event: row.classList.contains("event"),
    })),
  );
}

async function waitForText(user: User, text: string): Promise<void> {
  await user.page.waitForFunction(
    (wanted) =>
      [...document.querySelectorAll("#messages .message .text")].some(
        (node) => node.textContent === wanted,
      ),
    text,
  );
}

// Each text exactly once, seqs strictly increasing by one.
function assertNoLossNoDuplicate(shown: ShownEntry[], expected: string[]): void {
  for (const text of expected) {
    assert.equal(
      shown.filter((m) => m.text === text).length,
      1,
      `"${text}" should be shown exactly once: ${JSON.stringify(shown)}`,
    );
  }
  const seqs = shown.map((m) => BigInt(m.seq));
  for (let i = 1; i < seqs.length; i++) {
    assert.equal(seqs[i], seqs[i - 1] + 1n, `gap or repeat: ${JSON.stringify(shown)}`);
  }
}

describe("web chat in Chromium", () => {
  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.IM_CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      // Playwright gives each launch a fresh temporary --user-data-dir.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  });

  after(async () => {
    await browser?.close();
  });

  test("two users chat live, survive a reload, and markup stays text", async (t) => {
    try {
      const alice = await openUser(`alice_w${suffix}`);
      const bob = await openUser(`bob_w${suffix}`);
      await createAccount(alice);
      await createAccount(bob);

      // Alice opens a direct conversation with bob and writes first.
      await alice.page.fill("#new-chat-username", bob.name);
      await alice.page.click("#new-chat-button");
      await alice.page.waitForFunction(
        (title) => document.getElementById("conversation-title")?.textContent === title,
        bob.name,
      );
      await send(alice, "hello bob");
      await waitForText(alice, "hello bob");

      // Bob's list learns about it live, with an unread count (the
      // server's: entries past his read marker, the creation event too),
      // which grows by one with each further message.
      const bobItem = bob.page.locator("#conversation-list li", { hasText: alice.name });
      const badge = bobItem.locator(".unread");
      await badge.waitFor();
      const unread = Number(await badge.textContent());
      assert.ok(unread >= 1, `unread badge ${unread}`);
      await send(alice, "are you there?");
      await bob.page.waitForFunction(
        ([name, wanted]) =>
          [...document.querySelectorAll("#conversation-list li")].some(
            (li) =>
              li.textContent?.includes(name) &&
              li.querySelector(".unread")?.textContent === wanted,
          ),
        [alice.name, String(unread + 1)] as const,
      );
      await openConversationWith(bob, alice.name);
      await waitForText(bob, "are you there?");
      // Reading clears the badge.
      await badge.waitFor({ state: "detached" });

      // Both directions, live.
      await send(bob, "hi alice");
      await waitForText(alice, "hi alice");
      await send(alice, "how are you?");
      await waitForText(bob, "how are you?");

      // Markup is shown literally and never runs.
      await send(alice, xss);
      await waitForText(bob, xss);
      await waitForText(alice, xss);
      for (const user of [alice, bob]) {
        assert.equal(await user.page.locator("#messages img").count(), 0);
      }

      // Bob reloads: still logged in, resumes from his cursors.
      await bob.page.reload();
      await bob.page.waitForSelector('#status[data-state="live"]');
      await openConversationWith(bob, alice.name);
      await waitForText(bob, xss);
      // A message sent after the reload arrives live.
      await send(alice, "after reload");
      await waitForText(bob, "after reload");
      await send(bob, "still here");
      await waitForText(alice, "still here");

      const expected = ["hello bob", "are you there?", "hi alice", "how are you?", xss, "after reload", "still here"];
      for (const user of [alice, bob]) {
        const shown = await shownEntries(user);
        assertNoLossNoDuplicate(shown, expected);
        assert.deepEqual(
          shown.filter((m) => !m.event).map((m) => m.text),
          expected,
          `${user.name} sees the conversation in order`,
        );
        assert.deepEqual(user.dialogs, [], `${user.name}: a dialog opened (script ran)`);
        assert.deepEqual(user.pageErrors, [], `${user.name}: page errors`);
        assert.equal(await user.page.locator("#messages img").count(), 0);
      }

      // Older history pages in when scrolling up: with more entries than
      // one page, a fresh load shows the newest page only.
      const session = JSON.parse(
        (await alice.page.evaluate(() => localStorage.getItem("im.session"))) ?? "{}",
      ) as Session;
      const conversationId = await alice.page.$eval(
        "#conversation-list li.active",
        (li) => (li as HTMLElement).dataset.conversationId ?? "",
      );
      const clients = makeClients(gateway!);
      const backlog: string[] = [];
      for (let i = 1; i <= 40; i++) {
        const text = `backlog ${i}`;
        await clients.message.send(
          {
            conversationId,
            clientMsgId: newClientMsgId(),
            message: { text, contentType: "", metadata: {} },
          },
          authed(session),
        );
        backlog.push(text);
      }
      await bob.page.reload();
      await bob.page.waitForSelector('#status[data-state="live"]');
      await openConversationWith(bob, alice.name);
      await waitForText(bob, "backlog 40");
      const firstPage = await shownEntries(bob);
      assert.ok(
        !firstPage.some((m) => m.text === "hello bob"),
        "the first page should not reach back to the start",
      );
      const everything = [...expected, ...backlog];
      await bob.page.waitForFunction(
        (count) => {
          const box = document.getElementById("messages")!;
          box.scrollTop = 0;
          box.dispatchEvent(new Event("scroll"));
          return document.querySelectorAll("#messages .message:not(.event)").length >= count;
        },
        everything.length,
        { polling: 250 },
      );
      const all = await shownEntries(bob);
      assertNoLossNoDuplicate(all, everything);
      assert.deepEqual(
        all.filter((m) => !m.event).map((m) => m.text),
        everything,
      );
    } catch (error) {
      mkdirSync(outputDir, { recursive: true });
      for (const user of users) {
        const path = `${outputDir}/${user.name}.png`;
        await user.page.screenshot({ path, fullPage: true }).catch(() => undefined);
        t.diagnostic(`screenshot: ${path}`);
      }
      throw error;
    }
  });
});
