// The login page: issue over gRPC-Web or REST, show the access token's
// claims and a countdown, refresh on a button and automatically before the
// access token expires, show SpaceONE's error code and text on failure.
// "Your sessions" lists where the user is signed in and signs out the
// others; "Log out" ends the session on the server, not only in the page.
import "./style.css";
import {
  ApiError,
  createApi,
  PROTOCOL_LABEL,
  type Api,
  type Login,
  type Protocol,
  type SessionInfo,
} from "./api";
import { decodeJwt, verifyJwt, type Jwt } from "./jwt";
import type { TokenInfo } from "./gen/spaceone/api/identity/v1/token_pb";

const DEFAULT_SERVER = import.meta.env.VITE_TOKENGATE_URL || "http://127.0.0.1:50051";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const form = $<HTMLFormElement>("login-form");
const server = $<HTMLInputElement>("server");
const domainId = $<HTMLInputElement>("domain-id");
const userId = $<HTMLInputElement>("user-id");
const password = $<HTMLInputElement>("password");
const timeout = $<HTMLInputElement>("timeout");
const loginButton = $<HTMLButtonElement>("login");
const refreshButton = $<HTMLButtonElement>("refresh");
const autoRefresh = $<HTMLInputElement>("auto-refresh");

interface Session {
  who: string;
  tokens: TokenInfo;
  access: Jwt;
  /** Local clock times (ms): the server's lifetimes counted from receipt, so a skewed browser clock does not matter. */
  accessExpiresAt: number;
  accessLifetime: number;
  refreshExpiresAt: number;
  refreshes: number;
  timer?: number;
}

let session: Session | undefined;
let busy = false;

// --- settings from the address bar (?server=…&domain=…&user=…&protocol=rest)

{
  const q = new URLSearchParams(location.search);
  server.value = q.get("server") ?? DEFAULT_SERVER;
  domainId.value = q.get("domain") ?? "domain-dev";
  userId.value = q.get("user") ?? "admin@example.com";
  timeout.value = q.get("timeout") ?? "0";
  if (q.get("protocol") === "rest") setProtocol("rest");
  $("page-origin").textContent = location.origin;
}

function protocol(): Protocol {
  const checked = form.querySelector<HTMLInputElement>('input[name="protocol"]:checked');
  return checked?.value === "rest" ? "rest" : "grpc-web";
}

function setProtocol(p: Protocol) {
  const input = form.querySelector<HTMLInputElement>(`input[name="protocol"][value="${p}"]`);
  if (input) input.checked = true;
}

/** Every call uses the toggle's current protocol: flip it and the next refresh goes the other way. */
function api(): Api {
  return createApi(protocol(), server.value.trim());
}

// --- events and errors

function event(kind: string, text: string) {
  const li = document.createElement("li");
  li.dataset.kind = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("events").prepend(li);
}

function showError(e: unknown) {
  const err =
    e instanceof ApiError ? e : new ApiError("ERROR_CLIENT", e instanceof Error ? e.message : String(e), "page", undefined);
  $("error-code").textContent = err.code;
  $("error-text").textContent = err.text;
  $("error-status").textContent = err.status;
  $("error-reason").textContent = err.reason ? ` · ErrorInfo.reason ${err.reason}` : "";
  $("error").hidden = false;
  console.warn(`tokengate call failed: ${err.code}: ${err.text} (${err.status})`);
}

function clearError() {
  $("error").hidden = true;
}

// --- session

function claimRows(claims: Record<string, unknown>) {
  const body = $("claims").querySelector("tbody")!;
  body.replaceChildren(
    ...Object.entries(claims).map(([name, value]) => {
      const tr = document.createElement("tr");
      tr.dataset.claim = name;
      const th = document.createElement("th");
      th.textContent = name;
      const td = document.createElement("td");
      td.textContent = typeof value === "string" ? value : JSON.stringify(value);
      if ((name === "exp" || name === "iat") && typeof value === "number") {
        const when = document.createElement("span");
        when.className = "muted";
        when.textContent = ` (${new Date(value * 1000).toLocaleString()})`;
        td.append(when);
      }
      tr.append(th, td);
      return tr;
    }),
  );
}

function lifetimeMs(jwt: Jwt): number {
  const { iat, exp } = jwt.claims;
  return typeof iat === "number" && typeof exp === "number" ? (exp - iat) * 1000 : 0;
}

/** When to refresh: a quarter of the lifetime before expiry, between 1 s and 60 s ahead. */
function refreshMargin(lifetime: number): number {
  return Math.min(60_000, Math.max(1_000, lifetime / 4));
}

function startSession(tokens: TokenInfo, via: Api, kind: "issue" | "manual-refresh" | "auto-refresh") {
  const now = Date.now();
  const access = decodeJwt(tokens.accessToken);
  const refresh = decodeJwt(tokens.refreshToken);
  const previous = session;
  if (previous?.timer) clearTimeout(previous.timer);
  const accessLifetime = lifetimeMs(access);
  session = {
    who: `${String(access.claims.aud)} @ ${String(access.claims.did)}`,
    tokens,
    access,
    accessLifetime,
    accessExpiresAt: now + accessLifetime,
    refreshExpiresAt: now + lifetimeMs(refresh),
    refreshes: kind === "issue" ? 0 : (previous?.refreshes ?? 0) + 1,
  };
  $("who").textContent = session.who;
  $("session-protocol").textContent = PROTOCOL_LABEL[via.protocol];
  $("refresh-ttl").textContent = String(refresh.claims.ttl ?? "–");
  $("refresh-count").textContent = String(session.refreshes);
  claimRows(access.claims);
  $("session").hidden = false;
  const label = { issue: "logged in", "manual-refresh": "refreshed (button)", "auto-refresh": "refreshed automatically" }[kind];
  event(kind, `${label} over ${PROTOCOL_LABEL[via.protocol]} · jti ${String(access.claims.jti).slice(0, 12)}…`);
  schedule();
  tick();
  void checkSignature(via, access);
  void loadSessions();
}

// --- your sessions

function when(seconds: number): string {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function sessionRows(list: SessionInfo[]) {
  const body = $("sessions").querySelector("tbody")!;
  body.replaceChildren(
    ...list.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.session = s.sessionId;
      tr.dataset.current = String(s.current);
      const cells = [
        `${s.sessionId.slice(0, 8)}…`,
        when(s.startedAt),
        s.refreshes ? `${when(s.refreshedAt)} (${s.refreshes}×)` : "never",
        s.protocol || "–",
        s.clientAddress || "–",
      ].map((v) => {
        const td = document.createElement("td");
        td.textContent = v;
        return td;
      });
      const mark = document.createElement("td");
      if (s.current) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "this session";
        mark.append(tag);
      }
      tr.append(...cells, mark);
      return tr;
    }),
  );
}

/** Lists the user's live sessions (Session.list) with the current access token. */
async function loadSessions() {
  const current = session;
  if (!current) return;
  const status = $("sessions-status");
  try {
    const list = await api().listSessions(current.tokens.accessToken);
    if (session !== current) return;
    sessionRows(list);
    const others = list.filter((s) => !s.current).length;
    status.textContent = `${list.length} signed in${others ? `, ${others} elsewhere` : ", only here"}`;
    status.dataset.count = String(list.length);
  } catch (e) {
    if (session !== current) return;
    status.textContent = `could not list sessions: ${e instanceof ApiError ? e.code : String(e)}`;
    showError(e);
  }
}

/** Signs out every other session (Session.end_others), then lists again. */
async function endOthers() {
  const current = session;
  if (!current) return;
  const button = $<HTMLButtonElement>("end-others");
  button.disabled = true;
  try {
    const via = api();
    const ended = await via.endOtherSessions(current.tokens.accessToken);
    event("end-others", `signed out ${ended} other session${ended === 1 ? "" : "s"} over ${PROTOCOL_LABEL[via.protocol]}`);
    await loadSessions();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
}

async function checkSignature(via: Api, access: Jwt) {
  const target = $("signature");
  target.textContent = "checking…";
  target.className = "";
  try {
    const { publicKey } = await via.getPublicKey(String(access.claims.did));
    const { ok, why } = await verifyJwt(access, publicKey);
    if (session?.access !== access) return;
    target.textContent = ok ? `verified (${why}) with Domain.get_public_key` : `NOT verified: ${why}`;
    target.className = ok ? "ok" : "bad";
  } catch (e) {
    if (session?.access !== access) return;
    target.textContent = `not checked: ${e instanceof Error ? e.message : String(e)}`;
    target.className = "bad";
  }
}

function endSession(reason: string) {
  if (session?.timer) clearTimeout(session.timer);
  session = undefined;
  $("session").hidden = true;
  $("events").replaceChildren();
  console.info(`session ended: ${reason}`);
}

function schedule(delay?: number) {
  if (!session) return;
  if (session.timer) clearTimeout(session.timer);
  session.timer = undefined;
  if (!autoRefresh.checked) {
    $("auto-refresh-at").textContent = "";
    return;
  }
  const at = delay !== undefined ? Date.now() + delay : session.accessExpiresAt - refreshMargin(session.accessLifetime);
  session.timer = window.setTimeout(() => void refresh("auto-refresh"), Math.max(0, at - Date.now()));
  $("auto-refresh-at").textContent = ` · next at ${new Date(at).toLocaleTimeString()}`;
}

function formatRemaining(ms: number): string {
  if (ms <= 0) return "expired";
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
}

function tick() {
  if (!session) return;
  const now = Date.now();
  const left = session.accessExpiresAt - now;
  const countdown = $("countdown");
  countdown.textContent = formatRemaining(left);
  countdown.dataset.ms = String(Math.max(0, Math.round(left)));
  countdown.className = left <= 0 ? "bad" : "";
  $<HTMLProgressElement>("countdown-bar").value = session.accessLifetime ? Math.max(0, left / session.accessLifetime) : 0;
  $("refresh-countdown").textContent = formatRemaining(session.refreshExpiresAt - now);
}
setInterval(tick, 100);

// --- calls

async function login(e: SubmitEvent) {
  e.preventDefault();
  if (busy) return;
  busy = true;
  loginButton.disabled = true;
  clearError();
  const via = api();
  const request: Login = {
    domainId: domainId.value.trim(),
    userId: userId.value.trim(),
    password: password.value,
    timeout: Number(timeout.value) || 0,
  };
  try {
    const tokens = await via.issue(request);
    clearError();
    password.value = "";
    startSession(tokens, via, "issue");
  } catch (err) {
    endSession("login failed");
    showError(err);
  } finally {
    busy = false;
    loginButton.disabled = false;
  }
}

/** Errors after which the refresh token is worth nothing: the session ends. */
function isFinal(err: unknown): boolean {
  if (!(err instanceof ApiError)) return true;
  const retryable = err.code === "NETWORK_ERROR" || /unavailable|deadline_exceeded|resource_exhausted|HTTP 503|HTTP 429/i.test(err.status);
  return !retryable;
}

async function refresh(kind: "manual-refresh" | "auto-refresh") {
  const current = session;
  if (!current || busy) return;
  busy = true;
  refreshButton.disabled = true;
  const via = api();
  try {
    const tokens = await via.refresh(current.tokens.refreshToken);
    if (session !== current) return; // logged out meanwhile
    clearError();
    startSession(tokens, via, kind);
  } catch (err) {
    showError(err);
    if (session !== current) return;
    if (isFinal(err)) {
      endSession("refresh refused");
    } else if (Date.now() < current.accessExpiresAt) {
      event("retry", `refresh failed (${err instanceof ApiError ? err.code : "error"}), retrying in 3 s`);
      schedule(3_000);
    }
  } finally {
    busy = false;
    refreshButton.disabled = false;
  }
}

form.addEventListener("submit", (e) => void login(e));
refreshButton.addEventListener("click", () => void refresh("manual-refresh"));
/** Log out: the server ends the session (Session.revoke), so its refresh token is refused from now on. */
async function logout() {
  const current = session;
  if (!current) return;
  const button = $<HTMLButtonElement>("logout");
  button.disabled = true;
  clearError();
  try {
    await api().revoke(current.tokens.refreshToken);
    // A refresh meanwhile kept the session (same sid); a new login did not.
    if (session?.access.claims.sid === current.access.claims.sid) endSession("logged out");
  } catch (e) {
    // Not ended on the server (it is down, or refused the origin): keep the
    // session on screen so the user knows and can retry.
    showError(e);
  } finally {
    button.disabled = false;
  }
}

$("logout").addEventListener("click", () => void logout());
$("sessions-reload").addEventListener("click", () => void loadSessions());
$("end-others").addEventListener("click", () => void endOthers());
autoRefresh.addEventListener("change", () => schedule());
