// The calls the page makes, over gRPC-Web (connect-web) or REST (fetch), with
// one error shape for both: SpaceONE's code ("ERROR_X") and its text. Token and
// Domain are SpaceONE's; Session (logout, "your sessions") is tokengate's own.
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";
import {
  AuthenticationResponseSchema,
  type AuthenticationResponse,
} from "./gen/spaceone/api/core/v1/handler_pb";
import { Domain } from "./gen/spaceone/api/identity/v1/domain_pb";
import {
  IssueTokenRequestSchema,
  Token,
  TokenInfoSchema,
  type TokenInfo,
} from "./gen/spaceone/api/identity/v1/token_pb";
import {
  EndSessionsResponseSchema,
  ListSessionsResponseSchema,
  Session,
  type SessionInfo,
} from "./gen/tokengate/session/v1/session_pb";

export type { SessionInfo };

export type Protocol = "grpc-web" | "rest";

export const PROTOCOL_LABEL: Record<Protocol, string> = {
  "grpc-web": "gRPC-Web",
  rest: "REST",
};

export interface Login {
  domainId: string;
  userId: string;
  password: string;
  /** Access-token lifetime in seconds; 0 = the server's default. */
  timeout: number;
}

/** A failed call: SpaceONE's code and text, and where it came from. */
export class ApiError extends Error {
  constructor(
    /** "ERROR_AUTHENTICATION_FAILURE", or NETWORK_ERROR when no answer could be read. */
    readonly code: string,
    /** The text after "ERROR_X: ". */
    readonly text: string,
    /** "gRPC-Web: unauthenticated (16)" or "REST: HTTP 401". */
    readonly status: string,
    /** ErrorInfo.reason from the status details, when the server sent it. */
    readonly reason: string | undefined,
  ) {
    super(`${code}: ${text}`);
    this.name = "ApiError";
  }
}

const CALL_TIMEOUT_MS = 10_000;

/** Splits SpaceONE's "ERROR_X: text" message. */
function splitMessage(message: string): { code: string; text: string } {
  const m = /^(ERROR_[A-Z0-9_]+): ?([\s\S]*)$/.exec(message);
  return m ? { code: m[1], text: m[2] } : { code: "ERROR_UNKNOWN", text: message };
}

const NETWORK_TEXT =
  "The browser got no readable answer. Either the server is down, or it did not allow " +
  "this page's origin (CORS: add it to [cors] allowed_origins). The browser console says which.";

export interface Api {
  readonly protocol: Protocol;
  issue(login: Login): Promise<TokenInfo>;
  /** Spends the refresh token for a new pair. */
  refresh(refreshToken: string): Promise<TokenInfo>;
  /** The domain's public JWK (JSON text) that verifies its access tokens. */
  getPublicKey(domainId: string): Promise<AuthenticationResponse>;
  /** Logout: ends the session of the refresh token on the server (Session.revoke). */
  revoke(refreshToken: string): Promise<void>;
  /** The caller's live sessions, the current one marked (Session.list). */
  listSessions(accessToken: string): Promise<SessionInfo[]>;
  /** Ends every session but the caller's (Session.end_others); how many ended. */
  endOtherSessions(accessToken: string): Promise<number>;
}

export function createApi(protocol: Protocol, baseUrl: string): Api {
  const base = baseUrl.replace(/\/+$/, "");
  return protocol === "grpc-web" ? grpcWebApi(base) : restApi(base);
}

function issueRequest(login: Login) {
  return create(IssueTokenRequestSchema, {
    domainId: login.domainId,
    userId: login.userId,
    credentials: { password: login.password },
    timeout: login.timeout,
  });
}

// --- gRPC-Web -------------------------------------------------------------

function grpcWebApi(baseUrl: string): Api {
  // Binary gRPC-Web (application/grpc-web+proto). Paths are
  // /<package>.<Service>/<method> with the proto's lower-case method names.
  const transport = createGrpcWebTransport({ baseUrl });
  const token = createClient(Token, transport);
  const domain = createClient(Domain, transport);
  const sessions = createClient(Session, transport);
  const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` }, timeoutMs: CALL_TIMEOUT_MS });
  const call = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw fromConnectError(ConnectError.from(e));
    }
  };
  return {
    protocol: "grpc-web",
    issue: (login) => call(() => token.issue(issueRequest(login), { timeoutMs: CALL_TIMEOUT_MS })),
    // SpaceONE's own metadata key for the refresh token.
    refresh: (refreshToken) =>
      call(() => token.refresh({}, { headers: { token: refreshToken }, timeoutMs: CALL_TIMEOUT_MS })),
    getPublicKey: (domainId) =>
      call(() => domain.get_public_key({ domainId }, { timeoutMs: CALL_TIMEOUT_MS })),
    revoke: async (refreshToken) => {
      await call(() => sessions.revoke({}, { headers: { token: refreshToken }, timeoutMs: CALL_TIMEOUT_MS }));
    },
    listSessions: async (accessToken) => (await call(() => sessions.list({}, bearer(accessToken)))).sessions,
    endOtherSessions: async (accessToken) =>
      (await call(() => sessions.end_others({}, bearer(accessToken)))).ended,
  };
}

function fromConnectError(err: ConnectError): ApiError {
  const codeName = Code[err.code] ?? String(err.code);
  const status = `gRPC-Web: ${codeName.replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase())} (${err.code})`;
  // fetch() itself failed: no status was read (CORS refusal or no server).
  if (err.cause instanceof TypeError && !err.metadata.has("grpc-status")) {
    return new ApiError("NETWORK_ERROR", NETWORK_TEXT, `gRPC-Web: ${err.cause.message}`, undefined);
  }
  const { code, text } = splitMessage(err.rawMessage);
  let reason: string | undefined;
  try {
    reason = err.findDetails(ErrorInfoSchema)[0]?.reason;
  } catch {
    reason = undefined;
  }
  return new ApiError(reason && code === "ERROR_UNKNOWN" ? reason : code, text, status, reason);
}

// --- REST -----------------------------------------------------------------

function restApi(baseUrl: string): Api {
  const post = async (path: string, body: JsonValue, headers: Record<string, string> = {}) => {
    let res: Response;
    try {
      res = await fetch(baseUrl + path, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (e) {
      throw new ApiError("NETWORK_ERROR", NETWORK_TEXT, `REST: ${String(e)}`, undefined);
    }
    const answer: unknown = await res.json().catch(() => null);
    if (!res.ok) throw fromRestError(res.status, answer);
    return answer as JsonValue;
  };
  return {
    protocol: "rest",
    async issue(login) {
      // The same generated message, rendered with proto field names
      // (domain_id, user_id, credentials) as SpaceONE's REST clients send.
      const body = toJson(IssueTokenRequestSchema, issueRequest(login), { useProtoFieldName: true });
      return fromJson(TokenInfoSchema, await post("/identity/v1/token/issue", body), {
        ignoreUnknownFields: true,
      });
    },
    async refresh(refreshToken) {
      const answer = await post("/identity/v1/token/refresh", {}, {
        authorization: `Bearer ${refreshToken}`,
      });
      return fromJson(TokenInfoSchema, answer, { ignoreUnknownFields: true });
    },
    async getPublicKey(domainId) {
      const answer = await post("/identity/v1/domain/get-public-key", { domain_id: domainId });
      return fromJson(AuthenticationResponseSchema, answer, { ignoreUnknownFields: true });
    },
    async revoke(refreshToken) {
      await post("/tokengate/session/v1/revoke", {}, { authorization: `Bearer ${refreshToken}` });
    },
    async listSessions(accessToken) {
      const answer = await post("/tokengate/session/v1/list", {}, { authorization: `Bearer ${accessToken}` });
      return fromJson(ListSessionsResponseSchema, answer, { ignoreUnknownFields: true }).sessions;
    },
    async endOtherSessions(accessToken) {
      const answer = await post("/tokengate/session/v1/end-others", {}, { authorization: `Bearer ${accessToken}` });
      return fromJson(EndSessionsResponseSchema, answer, { ignoreUnknownFields: true }).ended;
    },
  };
}

/** google.rpc.Status as JSON: {code, message: "ERROR_X: text", details: [ErrorInfo]}. */
function fromRestError(httpStatus: number, answer: unknown): ApiError {
  const body = (answer ?? {}) as { message?: unknown; details?: unknown };
  const message = typeof body.message === "string" ? body.message : `HTTP ${httpStatus}`;
  const { code, text } = splitMessage(message);
  const details = Array.isArray(body.details) ? body.details : [];
  const info = details.find(
    (d): d is { reason: string } =>
      typeof d === "object" && d !== null && String((d as Record<string, unknown>)["@type"]).endsWith("google.rpc.ErrorInfo"),
  );
  const reason = info?.reason;
  return new ApiError(reason && code === "ERROR_UNKNOWN" ? reason : code, text, `REST: HTTP ${httpStatus}`, reason);
}
