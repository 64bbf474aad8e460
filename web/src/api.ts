// grpc-web clients for the IM services through the gateway, plus the
// session (tokens) they authenticate with. Shared by the page and the tests.

import { GrpcWebFetchTransport } from "@protobuf-ts/grpcweb-transport";
import type { RpcOptions } from "@protobuf-ts/runtime-rpc";
import { AuthServiceClient } from "./gen/im/auth/v1/auth.client";
import { DeviceKind, type TokenPair } from "./gen/im/auth/v1/auth";
import { HistoryServiceClient } from "./gen/im/history/v1/history.client";
import { MessageServiceClient } from "./gen/im/message/v1/message.client";
import { PresenceServiceClient } from "./gen/im/presence/v1/presence.client";

export interface Session {
  userId: string;
  sessionId: string;
  username: string;
  accessToken: string;
  refreshToken: string;
  // Milliseconds since the epoch.
  accessExpiresAt: number;
}

export interface Clients {
  auth: AuthServiceClient;
  message: MessageServiceClient;
  history: HistoryServiceClient;
  presence: PresenceServiceClient;
}

// `baseUrl` is the gateway's origin, e.g. "http://127.0.0.1:8080";
// "binary" is application/grpc-web+proto, "text" the base64 variant.
export function makeClients(
  baseUrl: string,
  format: "binary" | "text" = "binary",
): Clients {
  const transport = new GrpcWebFetchTransport({ baseUrl, format });
  return {
    auth: new AuthServiceClient(transport),
    message: new MessageServiceClient(transport),
    history: new HistoryServiceClient(transport),
    presence: new PresenceServiceClient(transport),
  };
}

export function sessionFromTokens(tokens: TokenPair, username: string): Session {
  const expires = tokens.accessExpiresAt;
  return {
    userId: tokens.userId,
    sessionId: tokens.sessionId,
    username,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    accessExpiresAt: expires
      ? Number(expires.seconds) * 1000 + Math.floor(expires.nanos / 1e6)
      : 0,
  };
}

export async function login(
  clients: Clients,
  username: string,
  password: string,
): Promise<Session> {
  const { response } = await clients.auth.login({
    username,
    password,
    deviceName: "web",
    deviceKind: DeviceKind.WEB,
  });
  if (!response.tokens) throw new Error("login returned no tokens");
  return sessionFromTokens(response.tokens, username);
}

export async function register(
  clients: Clients,
  username: string,
  password: string,
): Promise<void> {
  await clients.auth.register({ username, password, displayName: "" });
}

// Call options carrying the bearer token.
export function authed(session: Session, extra: RpcOptions = {}): RpcOptions {
  return {
    ...extra,
    meta: { ...(extra.meta ?? {}), authorization: `Bearer ${session.accessToken}` },
  };
}

// Seqs and ids are decimal strings; compare them exactly.
export function compareSeq(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function newClientMsgId(): string {
  return globalThis.crypto.randomUUID();
}
