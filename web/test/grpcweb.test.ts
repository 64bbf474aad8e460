// grpc-web through the gateway against the real services: unary and
// server-streaming calls in binary and text mode, UNAUTHENTICATED without a
// token, and CORS granted only to the allowed origin.
//
// Env: IM_WEB_GATEWAY_URL (e.g. http://127.0.0.1:8080) and
// IM_WEB_ALLOWED_ORIGIN (an origin on the gateway's --cors_allowed_origins).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { RpcError } from "@protobuf-ts/runtime-rpc";
import {
  authed,
  login,
  makeClients,
  newClientMsgId,
  register,
  type Clients,
  type Session,
} from "../src/api";
import { DeviceKind } from "../src/gen/im/auth/v1/auth";
import { Direction } from "../src/gen/im/history/v1/history";
import type { ServerFrame } from "../src/gen/im/message/v1/message";
import { PresenceState } from "../src/gen/im/presence/v1/presence";

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (tests/steps/60-web.sh sets it)`);
  return value;
}

const gateway = requireEnv("IM_WEB_GATEWAY_URL");
const allowedOrigin = requireEnv("IM_WEB_ALLOWED_ORIGIN");
const password = "correct horse battery";
const suffix = `${process.pid}${Date.now() % 100000}`;

// Reads frames from a Subscribe stream until `until` accepts one (bounded
// by the call's deadline). Returns every frame read; the stream stays open.
async function readUntil(
  frames: AsyncIterator<ServerFrame>,
  until: (frame: ServerFrame) => boolean,
): Promise<ServerFrame[]> {
  const read: ServerFrame[] = [];
  for (;;) {
    const next = await frames.next();
    if (next.done) throw new Error("stream ended early");
    read.push(next.value);
    if (until(next.value)) return read;
  }
}

function entrySeqs(frames: ServerFrame[], conversationId: string): string[] {
  return frames.flatMap((f) =>
    f.frame.oneofKind === "entry" && f.frame.entry.conversationId === conversationId
      ? [f.frame.entry.seq]
      : [],
  );
}

describe("grpc-web through the gateway", () => {
  const binary: Clients = makeClients(gateway, "binary");
  const text: Clients = makeClients(gateway, "text");
  let alice: Session;
  let bob: Session;
  let conversationId: string;
  const aborts: AbortController[] = [];

  before(async () => {
    await register(binary, `alice_${suffix}`, password);
    await register(text, `bob_${suffix}`, password);
    alice = await login(binary, `alice_${suffix}`, password);
    bob = await login(text, `bob_${suffix}`, password);
    const direct = await binary.message.getOrCreateDirect(
      { userId: bob.userId },
      authed(alice),
    );
    conversationId = direct.response.conversation!.conversationId;
  });

  after(() => {
    for (const abort of aborts) abort.abort();
  });

  // MessageService.Subscribe for `who` from `cursors`; aborted after the
  // tests at the latest.
  function subscribe(
    clients: Clients,
    who: Session,
    cursors: Record<string, string>,
  ): { frames: AsyncIterator<ServerFrame>; abort: AbortController } {
    const abort = new AbortController();
    aborts.push(abort);
    const call = clients.message.subscribe(
      {
        resume: { cursors, replayUnlisted: false },
        device: { kind: DeviceKind.WEB, name: "node-test" },
      },
      { ...authed(who), abort: abort.signal, timeout: 30_000 },
    );
    // Errors surface through frames.next(); do not leave them unhandled.
    call.status.catch(() => undefined);
    return { frames: call.responses[Symbol.asyncIterator](), abort };
  }

  test("unary calls work in binary and text mode", async () => {
    for (const clients of [binary, text]) {
      const { response } = await clients.auth.whoAmI({}, authed(alice));
      assert.equal(response.user?.userId, alice.userId);
      assert.equal(response.user?.username, `alice_${suffix}`);
      assert.equal(response.sessionId, alice.sessionId);
    }
  });

  test("a call without a token is UNAUTHENTICATED (16)", async () => {
    await assert.rejects(async () => {
      await binary.auth.whoAmI({});
    }, (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, "UNAUTHENTICATED");
      return true;
    });
    // The same on the wire: a trailers-only answer with grpc-status 16.
    const response = await fetch(`${gateway}/im.history.v1.HistoryService/ListConversations`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("grpc-status"), "16");
    await assert.rejects(
      async () => {
        await binary.message.send(
          {
            conversationId,
            clientMsgId: newClientMsgId(),
            message: { text: "x", contentType: "", metadata: {} },
          },
          { meta: { authorization: "Bearer not-a-token" } },
        );
      },
      (error: unknown) => error instanceof RpcError && error.code === "UNAUTHENTICATED",
    );
  });

  for (const mode of ["binary", "text"] as const) {
    test(`Subscribe streams live entries and resumes from a cursor (${mode})`, async () => {
      const clients = mode === "binary" ? binary : text;
      const live = subscribe(clients, bob, {});
      await readUntil(live.frames, (f) => f.frame.oneofKind === "ready");

      const messageText = `live ${mode} ${newClientMsgId()}`;
      const sent = await binary.message.send(
        {
          conversationId,
          clientMsgId: newClientMsgId(),
          message: { text: messageText, contentType: "", metadata: {} },
        },
        authed(alice),
      );
      const seq = sent.response.ack!.seq;
      const frames = await readUntil(
        live.frames,
        (f) => f.frame.oneofKind === "entry" && f.frame.entry.seq === seq,
      );
      const entry = frames.at(-1)!;
      assert.equal(entry.frame.oneofKind, "entry");
      if (entry.frame.oneofKind === "entry") {
        assert.equal(entry.frame.entry.conversationId, conversationId);
        assert.equal(entry.frame.entry.senderId, alice.userId);
        assert.equal(
          entry.frame.entry.body.oneofKind === "message" && entry.frame.entry.body.message.text,
          messageText,
        );
      }
      live.abort.abort();

      // Reopened with the cursor just below it: replayed once, then Ready.
      const resumed = subscribe(clients, bob, { [conversationId]: String(BigInt(seq) - 1n) });
      const replay = await readUntil(resumed.frames, (f) => f.frame.oneofKind === "ready");
      assert.deepEqual(entrySeqs(replay, conversationId), [seq]);
      resumed.abort.abort();

      // Reopened at the cursor: nothing to replay.
      const caughtUp = subscribe(clients, bob, { [conversationId]: seq });
      const none = await readUntil(caughtUp.frames, (f) => f.frame.oneofKind === "ready");
      assert.deepEqual(entrySeqs(none, conversationId), []);
      caughtUp.abort.abort();
    });
  }

  test("history pages the conversation through the gateway", async () => {
    const { response } = await text.history.getHistory(
      { conversationId, anchorSeq: "0", direction: Direction.BEFORE, limit: 50 },
      authed(bob),
    );
    const seqs = response.entries.map((e) => BigInt(e.seq));
    assert.ok(seqs.length >= 2, `expected the sent messages, got ${seqs.length}`);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1n);
  });

  test("presence Subscribe streams a snapshot", async () => {
    const abort = new AbortController();
    aborts.push(abort);
    const call = binary.presence.subscribe(
      { userIds: [bob.userId] },
      { ...authed(alice), abort: abort.signal, timeout: 30_000 },
    );
    call.status.catch(() => undefined);
    const first = await call.responses[Symbol.asyncIterator]().next();
    assert.equal(first.done, false);
    const batch = first.value!;
    assert.equal(batch.snapshot, true);
    assert.equal(batch.presences.length, 1);
    assert.equal(batch.presences[0].userId, bob.userId);
    // They share a conversation, so alice may see bob's state.
    assert.notEqual(batch.presences[0].state, PresenceState.UNKNOWN);
    abort.abort();
  });

  test("CORS is granted to the allowed origin only", async () => {
    const preflight = (origin: string) =>
      fetch(`${gateway}/im.auth.v1.AuthService/Login`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
        },
      });
    const granted = await preflight(allowedOrigin);
    assert.equal(granted.status, 204);
    assert.equal(granted.headers.get("access-control-allow-origin"), allowedOrigin);
    const allowHeaders = granted.headers.get("access-control-allow-headers") ?? "";
    for (const name of ["authorization", "content-type", "x-grpc-web", "x-user-agent"]) {
      assert.ok(allowHeaders.includes(name), `${name} not in ${allowHeaders}`);
    }
    assert.match(granted.headers.get("access-control-expose-headers") ?? "", /grpc-status/);

    const denied = await preflight("http://evil.example.test");
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get("access-control-allow-origin"), null);
    assert.equal(denied.headers.get("access-control-allow-headers"), null);

    // An actual call from that origin is refused without a grant.
    const call = await fetch(`${gateway}/im.auth.v1.AuthService/WhoAmI`, {
      method: "POST",
      headers: {
        origin: "http://evil.example.test",
        "content-type": "application/grpc-web+proto",
        authorization: `Bearer ${alice.accessToken}`,
      },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(call.status, 403);
    assert.equal(call.headers.get("access-control-allow-origin"), null);
  });
});
