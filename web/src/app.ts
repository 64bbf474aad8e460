// The web chat page. Everything a user or peer wrote is put on the page
// with textContent (never innerHTML), so message text is shown, not run.

import { RpcError } from "@protobuf-ts/runtime-rpc";
import {
  authed,
  compareSeq,
  login,
  makeClients,
  newClientMsgId,
  register,
  sessionFromTokens,
  type Session,
} from "./api";
import { DeviceKind } from "./gen/im/auth/v1/auth";
import { Direction, type ConversationSummary } from "./gen/im/history/v1/history";
import type { ServerFrame } from "./gen/im/message/v1/message";
import { ConversationKind, MemberEvent_Kind, type Entry } from "./gen/im/message/v1/types";
import { PresenceState } from "./gen/im/presence/v1/presence";

const clients = makeClients(location.origin, "binary");
const SESSION_KEY = "im.session";
const PAGE_SIZE = 30;
const TYPING_SEND_INTERVAL_MS = 3000;
const TYPING_SHOW_MS = 5000;

// ---- State ----

interface ConversationView {
  id: string;
  title: string;
  peerId: string; // direct conversations; "0" for groups
  lastSeq: string;
  unread: number;
  entries: Map<string, Entry>; // by seq
  oldestLoaded: string | null; // lowest seq fetched from history
  hasMoreBefore: boolean;
  loadingOlder: boolean;
  historyLoaded: boolean;
}

let session: Session | null = null;
let streamAbort: AbortController | null = null;
let presenceAbort: AbortController | null = null;
let presenceWatched = "";
const conversations = new Map<string, ConversationView>();
const usernames = new Map<string, string>();
const presence = new Map<string, PresenceState>();
const typingUntil = new Map<string, { userId: string; until: number }>();
let current: string | null = null;
let lastTypingSent = 0;
let refreshing: Promise<void> | null = null;

// ---- DOM helpers ----

function $(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

function el(tag: string, className?: string, text?: string): HTMLElement {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function showError(message: string): void {
  const box = $("error");
  box.textContent = message;
  box.hidden = message === "";
}

function describe(error: unknown): string {
  if (error instanceof RpcError) return `${error.code}: ${error.message}`;
  return String(error);
}

// ---- Session and cursors ----

function saveSession(): void {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

function loadSession(): Session | null {
  const raw = localStorage.getItem(SESSION_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

function cursorKey(): string {
  return `im.cursors.${session?.userId ?? "none"}`;
}

// Conversation id -> highest seq this device holds from the live stream.
function loadCursors(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(cursorKey()) ?? "{}");
  } catch {
    return {};
  }
}

function advanceCursor(conversationId: string, seq: string): void {
  const cursors = loadCursors();
  const old = cursors[conversationId];
  if (old === undefined || compareSeq(seq, old) > 0) {
    cursors[conversationId] = seq;
    localStorage.setItem(cursorKey(), JSON.stringify(cursors));
  }
}

// Refreshes the access token shortly before it expires (one at a time:
// refresh tokens are single-use).
async function ensureFreshToken(): Promise<void> {
  if (!session) throw new Error("not logged in");
  if (session.accessExpiresAt - Date.now() > 30_000) return;
  if (!refreshing) {
    refreshing = (async () => {
      const current = session!;
      const { response } = await clients.auth.refresh({
        refreshToken: current.refreshToken,
      });
      if (!response.tokens) throw new Error("refresh returned no tokens");
      session = sessionFromTokens(response.tokens, current.username);
      saveSession();
    })().finally(() => {
      refreshing = null;
    });
  }
  await refreshing;
}

async function opts() {
  await ensureFreshToken();
  return authed(session!);
}

// ---- Login screen ----

function showLogin(): void {
  $("login-view").hidden = false;
  $("chat-view").hidden = true;
}

function showChat(): void {
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  $("me").textContent = session?.username ?? "";
}

async function onLogin(create: boolean): Promise<void> {
  showError("");
  const username = ($("username") as HTMLInputElement).value.trim();
  const password = ($("password") as HTMLInputElement).value;
  try {
    if (create) await register(clients, username, password);
    session = await login(clients, username, password);
    saveSession();
    await startChat();
  } catch (error) {
    showError(describe(error));
  }
}

async function onLogout(): Promise<void> {
  try {
    if (session) await clients.auth.logout({}, await opts());
  } catch {
    // Logging out locally is what matters.
  }
  stopStreams();
  session = null;
  saveSession();
  conversations.clear();
  current = null;
  showLogin();
}

function stopStreams(): void {
  streamAbort?.abort();
  streamAbort = null;
  presenceAbort?.abort();
  presenceAbort = null;
  presenceWatched = "";
}

// ---- Chat ----

async function startChat(): Promise<void> {
  showChat();
  void runLiveStream();
  await refreshConversations();
}

function conversationTitle(view: ConversationView): string {
  if (view.peerId !== "0") return usernames.get(view.peerId) ?? `user ${view.peerId}`;
  return view.title || `group ${view.id}`;
}

function viewFor(summary: ConversationSummary): ConversationView {
  const conversation = summary.conversation!;
  let view = conversations.get(conversation.conversationId);
  if (!view) {
    view = {
      id: conversation.conversationId,
      title: conversation.title,
      peerId:
        conversation.kind === ConversationKind.DIRECT ? conversation.peerUserId : "0",
      lastSeq: conversation.lastSeq,
      unread: 0,
      entries: new Map(),
      oldestLoaded: null,
      hasMoreBefore: true,
      loadingOlder: false,
      historyLoaded: false,
    };
    conversations.set(view.id, view);
  }
  view.lastSeq = conversation.lastSeq;
  view.unread = view.id === current && !document.hidden ? 0 : Number(summary.unreadCount);
  return view;
}

async function refreshConversations(): Promise<void> {
  let pageToken = "";
  do {
    const { response } = await clients.history.listConversations(
      { pageToken, limit: 100 },
      await opts(),
    );
    for (const summary of response.conversations) {
      if (summary.conversation) viewFor(summary);
    }
    pageToken = response.nextPageToken;
  } while (pageToken);
  await resolveNames([...conversations.values()].map((c) => c.peerId));
  renderConversationList();
  watchPresence();
}

async function resolveNames(ids: string[]): Promise<void> {
  const missing = [...new Set(ids)].filter((id) => id !== "0" && !usernames.has(id));
  if (missing.length === 0) return;
  const { response } = await clients.auth.lookupUsers(
    { userIds: missing, usernames: [] },
    await opts(),
  );
  for (const user of response.users) usernames.set(user.userId, user.username);
}

function renderConversationList(): void {
  const list = $("conversation-list");
  const views = [...conversations.values()].sort((a, b) => compareSeq(b.id, a.id));
  list.replaceChildren(
    ...views.map((view) => {
      const item = el("li", view.id === current ? "conversation active" : "conversation");
      item.dataset.conversationId = view.id;
      const dot = el("span", "presence");
      const state = presence.get(view.peerId);
      if (view.peerId !== "0" && state === PresenceState.ONLINE) dot.classList.add("online");
      item.append(dot, el("span", "title", conversationTitle(view)));
      if (view.unread > 0) item.append(el("span", "unread", String(view.unread)));
      item.addEventListener("click", () => void openConversation(view.id));
      return item;
    }),
  );
}

async function openConversation(id: string): Promise<void> {
  current = id;
  const view = conversations.get(id);
  if (!view) return;
  $("conversation-title").textContent = conversationTitle(view);
  if (!view.historyLoaded) {
    await loadOlder(view);
    view.historyLoaded = true;
  }
  renderMessages(true);
  renderConversationList();
  await markRead(view);
}

// One page of history before the oldest entry held (or the newest page).
async function loadOlder(view: ConversationView): Promise<void> {
  if (view.loadingOlder || !view.hasMoreBefore) return;
  view.loadingOlder = true;
  try {
    const { response } = await clients.history.getHistory(
      {
        conversationId: view.id,
        anchorSeq: view.oldestLoaded ?? "0",
        direction: Direction.BEFORE,
        limit: PAGE_SIZE,
      },
      await opts(),
    );
    for (const entry of response.entries) addEntry(entry);
    view.hasMoreBefore = response.hasMore;
    if (response.entries.length > 0) {
      view.oldestLoaded = response.entries[0].seq;
    } else {
      view.hasMoreBefore = false;
    }
    await resolveNames(response.entries.map((e) => e.senderId));
  } finally {
    view.loadingOlder = false;
  }
}

function addEntry(entry: Entry): boolean {
  const view = conversations.get(entry.conversationId);
  if (!view) return false;
  if (view.entries.has(entry.seq)) return false; // never show one twice
  view.entries.set(entry.seq, entry);
  if (compareSeq(entry.seq, view.lastSeq) > 0) view.lastSeq = entry.seq;
  // Only history pages move the paging anchor (oldestLoaded).
  return true;
}

function displayName(userId: string): string {
  if (userId === session?.userId) return "you";
  return usernames.get(userId) ?? `user ${userId}`;
}

function entryText(entry: Entry): string {
  if (entry.body.oneofKind === "message") return entry.body.message.text;
  if (entry.body.oneofKind === "memberEvent") {
    const event = entry.body.memberEvent;
    const actor = displayName(entry.senderId);
    const names = event.userIds.map(displayName).join(", ");
    switch (event.kind) {
      case MemberEvent_Kind.CREATED:
        return `${actor} started the conversation`;
      case MemberEvent_Kind.ADDED:
        return `${actor} added ${names}`;
      case MemberEvent_Kind.REMOVED:
        return `${actor} removed ${names}`;
      case MemberEvent_Kind.LEFT:
        return `${actor} left`;
      case MemberEvent_Kind.ROLE_CHANGED:
        return `${actor} changed the role of ${names}`;
      default:
        return "membership changed";
    }
  }
  return "";
}

function renderMessages(scrollToBottom: boolean): void {
  const box = $("messages");
  const view = current ? conversations.get(current) : undefined;
  if (!view) {
    box.replaceChildren();
    return;
  }
  const entries = [...view.entries.values()].sort((a, b) => compareSeq(a.seq, b.seq));
  const previousHeight = box.scrollHeight;
  const previousTop = box.scrollTop;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(
    ...entries.map((entry) => {
      const mine = entry.senderId === session?.userId;
      const event = entry.body.oneofKind !== "message";
      const row = el("div", `message${mine ? " mine" : ""}${event ? " event" : ""}`);
      row.dataset.seq = entry.seq;
      row.dataset.clientMsgId = entry.clientMsgId;
      const sender = mine ? "me" : usernames.get(entry.senderId) ?? `user ${entry.senderId}`;
      if (!event) row.append(el("span", "sender", sender));
      row.append(el("span", "text", entryText(entry)));
      return row;
    }),
  );
  if (scrollToBottom || nearBottom) {
    box.scrollTop = box.scrollHeight;
  } else {
    // Keep the view still when older entries were prepended.
    box.scrollTop = previousTop + (box.scrollHeight - previousHeight);
  }
}

async function markRead(view: ConversationView): Promise<void> {
  if (view.lastSeq === "0" || document.hidden) return;
  view.unread = 0;
  renderConversationList();
  try {
    await clients.message.markRead(
      { conversationId: view.id, seq: view.lastSeq },
      await opts(),
    );
  } catch (error) {
    console.warn("markRead", describe(error));
  }
}

async function onSend(event: Event): Promise<void> {
  event.preventDefault();
  const input = $("composer-input") as HTMLInputElement;
  const text = input.value;
  if (!current || text.trim() === "") return;
  const conversationId = current;
  const clientMsgId = newClientMsgId();
  input.value = "";
  // A retry reuses clientMsgId, so a send that timed out is stored once.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const { response } = await clients.message.send(
        { conversationId, clientMsgId, message: { text, contentType: "", metadata: {} } },
        await opts(),
      );
      const ack = response.ack;
      if (ack) {
        addEntry({
          conversationId,
          seq: ack.seq,
          senderId: session!.userId,
          clientMsgId,
          sentAt: ack.sentAt,
          body: { oneofKind: "message", message: { text, contentType: "", metadata: {} } },
        });
        if (current === conversationId) renderMessages(true);
      }
      return;
    } catch (error) {
      if (error instanceof RpcError && error.code !== "UNAVAILABLE" && error.code !== "DEADLINE_EXCEEDED") {
        showError(describe(error));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
    }
  }
  showError("send failed; check the connection");
}

async function onTyping(): Promise<void> {
  if (!current || Date.now() - lastTypingSent < TYPING_SEND_INTERVAL_MS) return;
  lastTypingSent = Date.now();
  try {
    await clients.message.setTyping({ conversationId: current }, await opts());
  } catch {
    // Typing is best effort.
  }
}

async function onNewChat(event: Event): Promise<void> {
  event.preventDefault();
  showError("");
  const input = $("new-chat-username") as HTMLInputElement;
  const name = input.value.trim();
  if (!name) return;
  try {
    const { response } = await clients.auth.lookupUsers(
      { userIds: [], usernames: [name] },
      await opts(),
    );
    const user = response.users[0];
    if (!user) {
      showError(`no user ${name}`);
      return;
    }
    usernames.set(user.userId, user.username);
    const direct = await clients.message.getOrCreateDirect(
      { userId: user.userId },
      await opts(),
    );
    const conversation = direct.response.conversation!;
    viewFor({ conversation, readSeq: "0", unreadCount: "0", myRole: 0 });
    input.value = "";
    renderConversationList();
    watchPresence();
    await openConversation(conversation.conversationId);
  } catch (error) {
    showError(describe(error));
  }
}

// ---- Live stream (MessageService.Subscribe) with resume ----

async function runLiveStream(): Promise<void> {
  streamAbort?.abort();
  const abort = new AbortController();
  streamAbort = abort;
  let backoff = 250;
  while (!abort.signal.aborted && session) {
    try {
      const call = clients.message.subscribe(
        {
          resume: { cursors: loadCursors(), replayUnlisted: true },
          device: { kind: DeviceKind.WEB, name: "web" },
        },
        { ...(await opts()), abort: abort.signal },
      );
      for await (const frame of call.responses) {
        backoff = 250;
        await handleFrame(frame);
      }
      await call.status;
    } catch (error) {
      if (abort.signal.aborted) return;
      setStatus("reconnecting");
      if (error instanceof RpcError && error.code === "UNAUTHENTICATED") {
        try {
          if (session) session.accessExpiresAt = 0;
          await ensureFreshToken();
        } catch {
          await onLogout();
          return;
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

function setStatus(text: string): void {
  $("status").textContent = text;
  $("status").dataset.state = text;
}

async function handleFrame(frame: ServerFrame): Promise<void> {
  const f = frame.frame;
  switch (f.oneofKind) {
    case "entry": {
      const entry = f.entry;
      if (!conversations.has(entry.conversationId)) await refreshConversations();
      await resolveNames([entry.senderId]);
      const view = conversations.get(entry.conversationId);
      // Entries up to the listed last_seq are already in its unread count
      // (a replay after a reload, or the entry that made us list it).
      const beyondListed = view !== undefined && compareSeq(entry.seq, view.lastSeq) > 0;
      const added = addEntry(entry);
      advanceCursor(entry.conversationId, entry.seq);
      if (!view || !added) return;
      if (entry.conversationId === current && !document.hidden) {
        renderMessages(false);
        await markRead(view);
      } else if (beyondListed && entry.senderId !== session?.userId) {
        view.unread += 1;
        renderConversationList();
      }
      return;
    }
    case "typing": {
      if (f.typing.userId === session?.userId) return;
      typingUntil.set(f.typing.conversationId, {
        userId: f.typing.userId,
        until: Date.now() + TYPING_SHOW_MS,
      });
      renderTyping();
      return;
    }
    case "replayTruncated": {
      // Entries were skipped on the stream; page them from history.
      const view = conversations.get(f.replayTruncated.conversationId);
      if (view) {
        view.hasMoreBefore = true;
        view.oldestLoaded = null;
        view.historyLoaded = false;
        if (view.id === current) await openConversation(view.id);
      }
      return;
    }
    case "ready":
      setStatus("live");
      return;
    case "error":
      console.warn("stream error frame", f.error.code, f.error.message);
      return;
    default:
      return;
  }
}

function renderTyping(): void {
  const box = $("typing");
  const typing = current ? typingUntil.get(current) : undefined;
  if (typing && typing.until > Date.now()) {
    box.textContent = `${usernames.get(typing.userId) ?? "someone"} is typing…`;
  } else {
    box.textContent = "";
  }
}

// ---- Presence (PresenceService.Subscribe) ----

function watchPresence(): void {
  const peers = [...new Set([...conversations.values()].map((c) => c.peerId))]
    .filter((id) => id !== "0")
    .sort();
  const key = peers.join(",");
  if (key === presenceWatched || peers.length === 0) return;
  presenceWatched = key;
  presenceAbort?.abort();
  const abort = new AbortController();
  presenceAbort = abort;
  void (async () => {
    while (!abort.signal.aborted && session) {
      try {
        const call = clients.presence.subscribe(
          { userIds: peers },
          { ...(await opts()), abort: abort.signal },
        );
        for await (const batch of call.responses) {
          for (const p of batch.presences) presence.set(p.userId, p.state);
          renderConversationList();
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
}

// ---- Wiring ----

function wire(): void {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void onLogin(false);
  });
  $("register-button").addEventListener("click", () => void onLogin(true));
  $("logout-button").addEventListener("click", () => void onLogout());
  $("composer").addEventListener("submit", (event) => void onSend(event));
  $("composer-input").addEventListener("input", () => void onTyping());
  $("new-chat").addEventListener("submit", (event) => void onNewChat(event));
  $("messages").addEventListener("scroll", () => {
    const box = $("messages");
    const view = current ? conversations.get(current) : undefined;
    if (view && box.scrollTop < 40 && view.hasMoreBefore && !view.loadingOlder) {
      void loadOlder(view).then(() => renderMessages(false));
    }
  });
  document.addEventListener("visibilitychange", () => {
    const view = current ? conversations.get(current) : undefined;
    if (view && !document.hidden) void markRead(view);
  });
  setInterval(renderTyping, 1000);
}

async function main(): Promise<void> {
  wire();
  session = loadSession();
  if (!session) {
    showLogin();
    return;
  }
  try {
    await startChat();
  } catch (error) {
    showError(describe(error));
    // Only a rejected session means logging in again; other failures
    // (a service restarting) keep it.
    if (error instanceof RpcError && error.code === "UNAUTHENTICATED") {
      session = null;
      saveSession();
      showLogin();
    }
  }
}

void main();
