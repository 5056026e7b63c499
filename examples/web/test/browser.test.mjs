// The login page in Debian's headless Chromium, driven by playwright-core,
// against a real tokengate process:
//   tokengate  http://127.0.0.1:<A>  config written here, CORS allows only <B>
//   page       http://127.0.0.1:<B>  dist/ (allowed origin)
//   page       http://127.0.0.1:<C>  dist/ again (origin NOT allowed)
// Run with `npm run test:browser` after `npm run build` (run-browser-test.sh
// does both). Screenshots and logs go to test-output/.
//
// Against a tokengate that is already running (tools/image-check.sh: the
// container image), set WEB_TEST_SERVER=http://127.0.0.1:<A> and
// WEB_TEST_PAGE_PORT=<B>, the port of the one origin its CORS allows, and
// the login as WEB_TEST_DOMAIN, WEB_TEST_USER, WEB_TEST_PASSWORD. That
// server must give access tokens 6 s (token.access_timeout, ACCESS_TIMEOUT).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serveStatic } from "./static-server.mjs";

const PLAYWRIGHT_VERSION = JSON.parse(
  readFileSync(fileURLToPath(import.meta.resolve("playwright-core/package.json")), "utf8"),
).version;
const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, "..");
const REPO = resolve(WEB, "../..");
const OUT = resolve(process.env.TEST_OUTPUT ?? join(WEB, "test-output"));
const DIST = join(WEB, "dist");
const BIN = resolve(process.env.TOKENGATE_BIN ?? join(REPO, "target/debug/tokengate"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const SERVER = process.env.WEB_TEST_SERVER; // a running tokengate, or undefined: start one
const DOMAIN = SERVER ? process.env.WEB_TEST_DOMAIN : "domain-web";
const USER = SERVER ? process.env.WEB_TEST_USER : "alice@example.com";
const PASSWORD = SERVER ? process.env.WEB_TEST_PASSWORD : "correct horse battery staple";
const ACCESS_TIMEOUT = 6; // seconds: the countdown and the automatic refresh show within a test
const FAILURE_TEXT = `A user "${USER}" is not exist or password is not correct.`;

const GRPC_ISSUE = "/spaceone.api.identity.v1.Token/issue";
const GRPC_REFRESH = "/spaceone.api.identity.v1.Token/refresh";
const GRPC_PUBLIC_KEY = "/spaceone.api.identity.v1.Domain/get_public_key";
const REST_ISSUE = "/identity/v1/token/issue";
const REST_REFRESH = "/identity/v1/token/refresh";
const REST_PUBLIC_KEY = "/identity/v1/domain/get-public-key";
const GRPC_REVOKE = "/tokengate.session.v1.Session/revoke";
const GRPC_LIST = "/tokengate.session.v1.Session/list";
const GRPC_END_OTHERS = "/tokengate.session.v1.Session/end_others";
const REST_REVOKE = "/tokengate/session/v1/revoke";
const REST_LIST = "/tokengate/session/v1/list";
const REST_END_OTHERS = "/tokengate/session/v1/end-others";

let work; // temporary folder: config, directory, keys, browser profile
let tokengate; // child process
let tokengateUrl;
let allowedOrigin;
let deniedOrigin;
const servers = [];
let browser; // a persistent context on a fresh --user-data-dir

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A raw HTTP request from Node (no browser CORS rules): status and headers. */
function rawRequest(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((ok, fail) => {
    const req = request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on("error", fail);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}

async function waitReady(url, ms) {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    if (tokengate && tokengate.exitCode !== null) break;
    try {
      const res = await rawRequest(`${url}/readyz`);
      if (res.status === 200) return;
      last = `readyz ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(100);
  }
  const log = existsSync(join(OUT, "tokengate.log")) ? readFileSync(join(OUT, "tokengate.log"), "utf8") : "";
  throw new Error(`tokengate did not become ready (${last}); exit ${tokengate?.exitCode}\n${log}`);
}

function startTokengate(port) {
  assert.ok(existsSync(BIN), `tokengate binary missing: ${BIN} (cargo build --bin tokengate)`);
  const hashed = spawnSync(BIN, ["hash-password"], { input: PASSWORD, encoding: "utf8" });
  assert.equal(hashed.status, 0, `hash-password failed: ${hashed.stderr}`);
  const hash = hashed.stdout.trim();
  writeFileSync(
    join(work, "users.toml"),
    [
      "[[domain]]",
      `domain_id = "${DOMAIN}"`,
      'state = "ENABLED"',
      "",
      "[[domain.user]]",
      `user_id = "${USER}"`,
      `password_hash = '${hash}'`,
      'state = "ENABLED"',
      'user_type = "USER"',
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(work, "tokengate.toml"),
    [
      `listen = "127.0.0.1:${port}"`,
      'directory = "users.toml"',
      "[keys]",
      'dir = "keys"',
      "generate_missing = true",
      'algorithm = "RS256"',
      "[token]",
      `access_timeout = ${ACCESS_TIMEOUT}`,
      "refresh_timeout = 300",
      "[cors]",
      `allowed_origins = ["${allowedOrigin}"]`,
      "[log]",
      'level = "info"',
      "",
    ].join("\n"),
  );
  const log = createWriteStream(join(OUT, "tokengate.log"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TOKENGATE_")));
  const child = spawn(BIN, ["serve", "--config", join(work, "tokengate.toml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  process.on("exit", () => child.kill("SIGKILL"));
  return child;
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), "tokengate-web-"));
  assert.ok(existsSync(join(DIST, "index.html")), "dist/ missing: run `npm run build` first");
  if (SERVER) {
    for (const name of ["WEB_TEST_PAGE_PORT", "WEB_TEST_DOMAIN", "WEB_TEST_USER", "WEB_TEST_PASSWORD"]) {
      assert.ok(process.env[name], `WEB_TEST_SERVER is set: ${name} is needed too`);
    }
  }
  const allowed = await serveStatic(DIST, SERVER ? Number(process.env.WEB_TEST_PAGE_PORT) : 0);
  const denied = await serveStatic(DIST);
  servers.push(allowed, denied);
  allowedOrigin = `http://127.0.0.1:${allowed.address().port}`;
  deniedOrigin = `http://127.0.0.1:${denied.address().port}`;
  if (SERVER) {
    tokengateUrl = SERVER.replace(/\/$/, "");
  } else {
    const port = await freePort();
    tokengateUrl = `http://127.0.0.1:${port}`;
    tokengate = startTokengate(port);
  }
  await waitReady(tokengateUrl, 30_000);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  const version = (spawnSync(CHROMIUM, ["--version"], { encoding: "utf8" }).stdout ?? "").trim();
  console.log(`# ${version}; playwright-core ${PLAYWRIGHT_VERSION}`);
  console.log(`# tokengate ${tokengateUrl}; page ${allowedOrigin} (allowed), ${deniedOrigin} (not allowed)`);
  browser = await chromium.launchPersistentContext(join(work, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
    viewport: { width: 960, height: 1000 },
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const s of servers) s.close();
  if (tokengate && tokengate.exitCode === null) {
    tokengate.kill("SIGTERM");
    await Promise.race([new Promise((r) => tokengate.once("exit", r)), sleep(5_000)]);
    if (tokengate.exitCode === null) tokengate.kill("SIGKILL");
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

// --- helpers ---------------------------------------------------------------

/** A new tab on the page, recording its calls to tokengate and its console. */
async function openPage(origin, params = {}) {
  const page = await browser.newPage();
  const calls = [];
  const consoleLines = [];
  page.on("request", (req) => {
    if (req.url().startsWith(tokengateUrl)) {
      calls.push({ method: req.method(), path: new URL(req.url()).pathname, headers: req.headers(), body: req.postData(), req });
    }
  });
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => consoleLines.push(`pageerror: ${err.message}`));
  const query = new URLSearchParams({ server: tokengateUrl, domain: DOMAIN, user: USER, ...params });
  await page.goto(`${origin}/?${query}`);
  await page.waitForSelector("#login-form");
  return { page, calls, consoleLines };
}

/** Runs `fn` on a new tab; on failure saves failed-<name>.png and adds the tab's console to the error. */
async function withPage(origin, name, fn) {
  const tab = await openPage(origin);
  try {
    await fn(tab);
  } catch (e) {
    await shot(tab.page, `failed-${name}.png`).catch(() => {});
    e.message += `\nbrowser console:\n${tab.consoleLines.join("\n") || "(empty)"}`;
    throw e;
  } finally {
    await tab.page.close();
  }
}

async function logIn(page, { password = PASSWORD, protocol = "grpc-web" } = {}) {
  await page.check(`input[name="protocol"][value="${protocol}"]`);
  await page.fill("#password", password);
  await page.click("#login");
}

async function waitLoggedIn(page) {
  await page.waitForSelector("#session:not([hidden])", { timeout: 10_000 });
}

async function waitError(page) {
  await page.waitForSelector("#error:not([hidden])", { timeout: 10_000 });
  return {
    code: await page.textContent("#error-code"),
    text: await page.textContent("#error-text"),
    status: await page.textContent("#error-status"),
    reason: await page.textContent("#error-reason"),
  };
}

async function claims(page) {
  return page.$$eval("#claims tr", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.claim, r.querySelector("td").firstChild.textContent])),
  );
}

const countdownMs = async (page) => Number(await page.getAttribute("#countdown", "data-ms"));
const text = (page, sel) => page.textContent(sel);

async function shot(page, name) {
  const file = join(OUT, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Another client's login (REST from Node, no browser): a second session. */
async function otherClientLogin() {
  const res = await rawRequest(`${tokengateUrl}${REST_ISSUE}`, {
    method: "POST",
    body: JSON.stringify({ domain_id: DOMAIN, user_id: USER, credentials: { password: PASSWORD } }),
  });
  assert.equal(res.status, 200, res.text);
  return JSON.parse(res.text);
}

/** A refresh from Node with `refreshToken`: status and google.rpc.Status JSON. */
async function refreshFromNode(refreshToken) {
  const res = await rawRequest(`${tokengateUrl}${REST_REFRESH}`, {
    method: "POST",
    headers: { authorization: `Bearer ${refreshToken}` },
    body: "{}",
  });
  return { status: res.status, json: JSON.parse(res.text) };
}

/** The `sid` claim of an access token. */
function sidOf(accessToken) {
  return JSON.parse(Buffer.from(accessToken.split(".")[1], "base64url").toString("utf8")).sid;
}

/** The rows of the "Your sessions" table once it lists `count` (or any, if undefined). */
async function sessionRows(page, count) {
  await page.waitForFunction(
    (n) => {
      const c = document.getElementById("sessions-status").dataset.count;
      return c !== undefined && (n === undefined || Number(c) === n);
    },
    count,
    { timeout: 10_000 },
  );
  return page.$$eval("#sessions tbody tr", (rows) =>
    rows.map((r) => ({ id: r.dataset.session, current: r.dataset.current === "true", cells: [...r.cells].map((c) => c.textContent) })),
  );
}

/** Waits for the signature line to settle and returns it. */
async function signature(page) {
  await page.waitForFunction(() => /verified|not checked/i.test(document.getElementById("signature").textContent), null, {
    timeout: 10_000,
  });
  return text(page, "#signature");
}

// --- the tests -------------------------------------------------------------

describe("tokengate login page in headless Chromium", () => {
  test("gRPC-Web login shows the decoded claims and the expiry counting down", async () => {
    await withPage(allowedOrigin, "grpc-web-login", async ({ page, calls }) => {
      await logIn(page);
      await waitLoggedIn(page);

      const issue = calls.find((c) => c.path === GRPC_ISSUE);
      assert.ok(issue, `no call to ${GRPC_ISSUE}: ${calls.map((c) => c.path)}`);
      assert.equal(issue.method, "POST");
      assert.equal(issue.headers["content-type"], "application/grpc-web+proto");
      const answer = await issue.req.response();
      assert.equal(answer.status(), 200);
      assert.equal(answer.headers()["access-control-allow-origin"], allowedOrigin);
      assert.ok(!calls.some((c) => c.path.startsWith("/identity/")), "no REST call in gRPC-Web mode");

      const c = await claims(page);
      assert.equal(c.cat, "ACCESS_TOKEN");
      assert.equal(c.did, DOMAIN);
      assert.equal(c.aud, USER);
      assert.equal(c.user_type, "USER");
      assert.equal(c.iss, "tokengate");
      assert.match(c.jti, /\S{8,}/);
      assert.equal(Number(c.exp) - Number(c.iat), ACCESS_TIMEOUT);
      assert.equal(await text(page, "#who"), `${USER} @ ${DOMAIN}`);
      assert.equal(await text(page, "#session-protocol"), "gRPC-Web");

      const first = await countdownMs(page);
      await sleep(700);
      const second = await countdownMs(page);
      assert.ok(first > 0 && first <= ACCESS_TIMEOUT * 1000, `countdown ${first}`);
      assert.ok(second < first, `countdown does not count down: ${first} then ${second}`);
      assert.match(await text(page, "#countdown"), /^\d+\.\d s$/);

      // The page checks the signature with Domain.get_public_key over gRPC-Web.
      assert.match(await signature(page), /^verified \(RS256, kid /);
      assert.ok(calls.some((c) => c.path === GRPC_PUBLIC_KEY), "get_public_key called over gRPC-Web");
      await shot(page, "logged-in-grpc-web.png");
    });
  });

  test("the Refresh button trades the refresh token for a new pair (gRPC-Web, `token` header)", async () => {
    await withPage(allowedOrigin, "refresh-button", async ({ page, calls }) => {
      await logIn(page);
      await waitLoggedIn(page);
      await page.uncheck("#auto-refresh"); // only the button refreshes here
      const before = await claims(page);
      const ttlBefore = Number(await text(page, "#refresh-ttl"));
      await page.click("#refresh");
      await page.waitForFunction(() => document.getElementById("refresh-count").textContent === "1", null, {
        timeout: 10_000,
      });
      const afterRefresh = await claims(page);
      assert.notEqual(afterRefresh.jti, before.jti, "a new access token");
      assert.equal(Number(await text(page, "#refresh-ttl")), ttlBefore - 1, "ttl counts down");
      const refresh = calls.find((c) => c.path === GRPC_REFRESH);
      assert.ok(refresh, `no call to ${GRPC_REFRESH}`);
      assert.equal(refresh.headers["content-type"], "application/grpc-web+proto");
      assert.match(refresh.headers.token ?? "", /^[\w-]+\.[\w-]+\.[\w-]+$/, "refresh token in the `token` header");
      assert.equal((await refresh.req.response()).status(), 200);
      assert.equal(await page.locator('#events li[data-kind="manual-refresh"]').count(), 1);
      assert.ok((await countdownMs(page)) > (ACCESS_TIMEOUT - 2) * 1000, "the countdown starts again");
    });
  });

  test("the page refreshes automatically before the access token expires", async () => {
    await withPage(allowedOrigin, "auto-refresh", async ({ page, calls }) => {
      await logIn(page);
      await waitLoggedIn(page);
      const jti = (await claims(page)).jti;
      let lowest = Infinity;
      const deadline = Date.now() + (ACCESS_TIMEOUT + 4) * 1000;
      while (Date.now() < deadline) {
        lowest = Math.min(lowest, await countdownMs(page));
        if ((await text(page, "#refresh-count")) === "1") break;
        await sleep(100);
      }
      assert.equal(await text(page, "#refresh-count"), "1", "one automatic refresh within the access lifetime");
      assert.equal(await page.locator('#events li[data-kind="auto-refresh"]').count(), 1);
      assert.notEqual((await claims(page)).jti, jti);
      assert.ok(lowest > 0, `the access token expired before the refresh (lowest countdown ${lowest} ms)`);
      assert.ok(lowest < ACCESS_TIMEOUT * 1000 * 0.5, `refreshed near expiry, not at once (lowest ${lowest} ms)`);
      assert.ok(calls.some((c) => c.path === GRPC_REFRESH));
      assert.notEqual(await text(page, "#countdown"), "expired");
      await shot(page, "auto-refreshed-grpc-web.png");
    });
  });

  test("a wrong password shows ERROR_AUTHENTICATION_FAILURE and SpaceONE's text (gRPC-Web)", async () => {
    await withPage(allowedOrigin, "wrong-password-grpc-web", async ({ page }) => {
      await logIn(page, { password: "wrong password" });
      const err = await waitError(page);
      assert.equal(err.code, "ERROR_AUTHENTICATION_FAILURE");
      assert.equal(err.text, FAILURE_TEXT);
      assert.equal(err.status, "gRPC-Web: unauthenticated (16)");
      assert.equal(err.reason, " · ErrorInfo.reason ERROR_AUTHENTICATION_FAILURE", "grpc-status-details-bin readable");
      assert.ok(await page.isHidden("#session"));
      await shot(page, "error-wrong-password-grpc-web.png");
    });
  });

  test("the REST toggle makes the same calls with fetch: login, refresh, wrong password", async () => {
    await withPage(allowedOrigin, "rest-toggle", async ({ page, calls }) => {
      await logIn(page, { protocol: "rest" });
      await waitLoggedIn(page);
      assert.equal(await text(page, "#session-protocol"), "REST");
      const issue = calls.find((c) => c.path === REST_ISSUE);
      assert.ok(issue, `no call to ${REST_ISSUE}: ${calls.map((c) => c.path)}`);
      assert.equal(issue.method, "POST");
      assert.deepEqual(JSON.parse(issue.body), { user_id: USER, credentials: { password: PASSWORD }, domain_id: DOMAIN });
      const answer = await issue.req.response();
      assert.equal(answer.status(), 200);
      assert.equal(answer.headers()["access-control-allow-origin"], allowedOrigin);
      assert.ok(!calls.some((c) => c.path.startsWith("/spaceone.")), "no gRPC-Web call in REST mode");
      const c = await claims(page);
      assert.equal(c.did, DOMAIN);
      assert.equal(c.aud, USER);
      assert.equal(c.cat, "ACCESS_TOKEN");
      assert.match(await signature(page), /^verified \(RS256/);
      assert.ok(calls.some((c) => c.path === REST_PUBLIC_KEY));

      await page.uncheck("#auto-refresh");
      await page.click("#refresh");
      await page.waitForFunction(() => document.getElementById("refresh-count").textContent === "1", null, {
        timeout: 10_000,
      });
      const refresh = calls.find((c) => c.path === REST_REFRESH);
      assert.ok(refresh, `no call to ${REST_REFRESH}`);
      assert.match(refresh.headers.authorization ?? "", /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal((await refresh.req.response()).status(), 200);
      assert.notEqual((await claims(page)).jti, c.jti);
      await signature(page);
      await shot(page, "logged-in-rest.png");

      // Flip the toggle in a live session: the next refresh goes over gRPC-Web.
      await page.check('input[name="protocol"][value="grpc-web"]');
      await page.click("#refresh");
      await page.waitForFunction(() => document.getElementById("refresh-count").textContent === "2", null, {
        timeout: 10_000,
      });
      assert.equal(await text(page, "#session-protocol"), "gRPC-Web");
      assert.ok(calls.some((c) => c.path === GRPC_REFRESH));

      await page.click("#logout");
      await page.waitForSelector("#session[hidden]", { state: "attached", timeout: 10_000 });
      await logIn(page, { protocol: "rest", password: "wrong password" });
      const err = await waitError(page);
      assert.equal(err.code, "ERROR_AUTHENTICATION_FAILURE");
      assert.equal(err.text, FAILURE_TEXT);
      assert.equal(err.status, "REST: HTTP 401");
      assert.equal(err.reason, " · ErrorInfo.reason ERROR_AUTHENTICATION_FAILURE");
      await shot(page, "error-wrong-password-rest.png");
    });
  });

  for (const protocol of ["grpc-web", "rest"]) {
    const label = protocol === "rest" ? "REST" : "gRPC-Web";
    const revokePath = protocol === "rest" ? REST_REVOKE : GRPC_REVOKE;
    const listPath = protocol === "rest" ? REST_LIST : GRPC_LIST;
    const endOthersPath = protocol === "rest" ? REST_END_OTHERS : GRPC_END_OTHERS;

    test(`Log out ends the session on the server: the old refresh token is refused (${label})`, async () => {
      await withPage(allowedOrigin, `logout-${protocol}`, async ({ page, calls }) => {
        await logIn(page, { protocol });
        await waitLoggedIn(page);
        await page.uncheck("#auto-refresh");
        await page.click("#logout");
        await page.waitForSelector("#session[hidden]", { state: "attached", timeout: 10_000 });
        const revoke = calls.find((c) => c.path === revokePath);
        assert.ok(revoke, `no call to ${revokePath}: ${calls.map((c) => c.path)}`);
        assert.equal((await revoke.req.response()).status(), 200);
        assert.equal((await revoke.req.response()).headers()["access-control-allow-origin"], allowedOrigin);
        const sent = protocol === "rest" ? (revoke.headers.authorization ?? "").replace(/^Bearer /, "") : revoke.headers.token;
        assert.match(sent ?? "", /^[\w-]+\.[\w-]+\.[\w-]+$/, "the refresh token went with the revoke");
        assert.ok(await page.isHidden("#error"), "no error after logout");
        // The page forgot the tokens, and the server no longer honours them.
        const after = await refreshFromNode(sent);
        assert.equal(after.status, 401, JSON.stringify(after.json));
        assert.equal(after.json.message, "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.");
      });
    });

    test(`"Your sessions" lists another client's session and signs it out (${label})`, async () => {
      await withPage(allowedOrigin, `sessions-${protocol}`, async ({ page, calls }) => {
        const other = await otherClientLogin();
        await logIn(page, { protocol });
        await waitLoggedIn(page);
        await page.uncheck("#auto-refresh");
        const rows = await sessionRows(page);
        assert.ok(rows.length >= 2, `at least this and the other client's session: ${JSON.stringify(rows)}`);
        assert.equal(rows.filter((r) => r.current).length, 1, JSON.stringify(rows));
        const current = rows.find((r) => r.current);
        assert.equal(current.id, (await claims(page)).sid, "the current row is the page's session");
        const theirs = rows.find((r) => r.id === sidOf(other.access_token));
        assert.ok(theirs && !theirs.current, `the other client's session is listed: ${JSON.stringify(rows)}`);
        assert.equal(theirs.cells[3], "rest", "its login came over REST");
        assert.equal(current.cells[3], protocol, "the page's login protocol");
        assert.ok(calls.some((c) => c.path === listPath), `listed over ${label}`);
        await shot(page, `sessions-${protocol}.png`);

        await page.click("#end-others");
        const left = await sessionRows(page, 1);
        assert.deepEqual(left.map((r) => [r.id, r.current]), [[current.id, true]]);
        const end = calls.find((c) => c.path === endOthersPath);
        assert.ok(end, `no call to ${endOthersPath}`);
        assert.equal((await end.req.response()).status(), 200);
        assert.match(await text(page, "#events"), /signed out \d+ other session/);
        // The other client is signed out; this page still refreshes.
        const refused = await refreshFromNode(other.refresh_token);
        assert.equal(refused.status, 401, JSON.stringify(refused.json));
        await page.click("#refresh");
        await page.waitForFunction(() => document.getElementById("refresh-count").textContent === "1", null, {
          timeout: 10_000,
        });
        await shot(page, `sessions-signed-out-others-${protocol}.png`);
      });
    });
  }

  test("a page from an origin that is not allowed fails with a CORS error in the browser", async () => {
    // The server itself answers; only its CORS headers differ by origin.
    const preflight = (origin) =>
      rawRequest(`${tokengateUrl}${GRPC_ISSUE}`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,grpc-timeout",
        },
      });
    assert.equal((await preflight(allowedOrigin)).headers["access-control-allow-origin"], allowedOrigin);
    assert.equal((await preflight(deniedOrigin)).headers["access-control-allow-origin"], undefined);

    await withPage(deniedOrigin, "cors", async ({ page, consoleLines }) => {
      for (const protocol of ["rest", "grpc-web"]) {
        const before = consoleLines.length;
        await logIn(page, { protocol });
        const err = await waitError(page);
        assert.equal(err.code, "NETWORK_ERROR", `${protocol}: ${JSON.stringify(err)}`);
        assert.match(err.text, /CORS/);
        assert.match(err.status, /Failed to fetch/);
        assert.ok(await page.isHidden("#session"));
        // Chromium's own console line names the policy and both origins.
        const path = protocol === "rest" ? REST_ISSUE : GRPC_ISSUE;
        let cors;
        for (let i = 0; i < 50 && !cors; i++) {
          cors = consoleLines.slice(before).find((l) => l.includes("blocked by CORS policy"));
          if (!cors) await sleep(100);
        }
        assert.ok(cors, `${protocol}: no CORS error in the console:\n${consoleLines.join("\n")}`);
        assert.ok(cors.includes(`${tokengateUrl}${path}`) && cors.includes(`from origin '${deniedOrigin}'`), cors);
        if (protocol === "grpc-web") await shot(page, "error-cors-not-allowed-origin.png");
      }
    });
  });
});
