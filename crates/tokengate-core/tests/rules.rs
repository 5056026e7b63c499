//! SPEC §2 ("Token semantics"), rule by rule, through the real code paths:
//! a real directory (bcrypt cost 4 to stay fast), real keys generated into a
//! temporary keys folder, the in-memory refresh store and the real password
//! pool. Nothing is mocked.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokengate_core::{
    Credentials, ErrorClass, IssueRequest, LoginLimits, PasswordPool, TokenError, TokenPair,
    TokenService, TokenSettings,
};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir, KeyRing, KeySet, Purpose, SigningKey};
use tokengate_store::MemoryStore;

const DOMAIN: &str = "domain-ok";
const DISABLED_DOMAIN: &str = "domain-off";
const PASSWORD: &str = "correct horse battery";
const ISSUER: &str = "tokengate-test";
const MAX_TIMEOUT: u64 = 3600;
const REFRESH_TTL: u32 = 5;

const INVALID_REFRESH: &str = "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.";
const CANNOT_DECODE: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Cannot decode token.)";
const EMPTY_DID: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Empty domain_id provided.)";
const VALIDATION_FAILED: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Token validation failed.)";
const REFRESH_COUNT: &str = "ERROR_REFRESH_COUNT: The refresh count is exhausted.";
const UPDATE_PASSWORD_PERMISSIONS: [&str; 2] = ["identity.User.get", "identity.User.update"];

// ---------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------

/// How the user `alice` appears in a (re)loaded directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alice {
    /// ENABLED, password [`PASSWORD`] (the hash the fixture started with).
    Enabled,
    /// DISABLED, same hash.
    Disabled,
    /// Not in the directory any more.
    Removed,
    /// ENABLED with a new password (a new hash).
    NewPassword,
}

fn settings() -> TokenSettings {
    TokenSettings {
        access_timeout: 1200,
        max_access_timeout: MAX_TIMEOUT,
        refresh_timeout: 1800,
        refresh_ttl: REFRESH_TTL,
        absolute_timeout: 86400,
        reuse_grace: 0,
        issuer: ISSUER.to_owned(),
        // The tables fail many logins on purpose; lockout has its own tests.
        login_limits: LoginLimits {
            per_user: 10_000,
            per_ip: 0,
            window_secs: 300,
            ..Default::default()
        },
        introspection: Default::default(),
    }
}

/// The directory: an enabled domain with an enabled user (`alice`), a
/// disabled user (`dave`), a pending user (`pete`), an API user (`robot`),
/// a user who must change their password (`newbie`), an owner (`root`); and
/// a disabled domain with the same `alice` and `root`. Every principal's
/// password is [`PASSWORD`] (hash `hash`), except `alice` under
/// [`Alice::NewPassword`].
fn directory_toml(hash: &str, alice: Alice) -> String {
    let alice_entry = match alice {
        Alice::Removed => String::new(),
        Alice::Enabled => format!(
            "[[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{hash}\"\nstate = \"ENABLED\"\n"
        ),
        Alice::Disabled => format!(
            "[[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{hash}\"\nstate = \"DISABLED\"\n"
        ),
        Alice::NewPassword => {
            let new_hash = hash_bcrypt("a brand new password", 4).expect("bcrypt new password");
            format!("[[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{new_hash}\"\n")
        }
    };
    format!(
        r#"
[[domain]]
domain_id = "{DOMAIN}"
state = "ENABLED"

{alice_entry}
[[domain.user]]
user_id = "dave"
password_hash = "{hash}"
state = "DISABLED"

[[domain.user]]
user_id = "pete"
password_hash = "{hash}"
state = "PENDING"

[[domain.user]]
user_id = "robot"
password_hash = "{hash}"
user_type = "API_USER"

[[domain.user]]
user_id = "newbie"
password_hash = "{hash}"
user_type = "USER"
required_actions = ["UPDATE_PASSWORD"]

[[domain.user]]
user_id = "sso"
backend = "EXTERNAL"

[[domain.user]]
user_id = "keyless-robot"
user_type = "API_USER"

[[domain.owner]]
owner_id = "root"
password_hash = "{hash}"

[[domain]]
domain_id = "{DISABLED_DOMAIN}"
state = "DISABLED"

[[domain.user]]
user_id = "alice"
password_hash = "{hash}"

[[domain.owner]]
owner_id = "root"
password_hash = "{hash}"
"#
    )
}

struct Fixture {
    service: Arc<TokenService>,
    keydir: KeyDir,
    /// The bcrypt hash of [`PASSWORD`] every principal starts with; reused
    /// on reloads so that only what a test changes changes.
    hash: String,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new(settings: TokenSettings) -> Self {
        Self::with_algorithm(settings, Algorithm::EdDSA)
    }

    fn with_algorithm(settings: TokenSettings, algorithm: Algorithm) -> Self {
        let tmp = tempfile::tempdir().expect("temporary keys folder");
        let keydir = KeyDir::new(tmp.path().join("keys"));
        let hash = hash_bcrypt(PASSWORD, 4).expect("bcrypt hash");
        let directory =
            Directory::from_toml(&directory_toml(&hash, Alice::Enabled)).expect("directory parses");
        let created = keydir
            .generate_missing(directory.domain_ids(), algorithm)
            .expect("generate keys");
        assert_eq!(created.len(), 4, "two domains × (access, refresh)");
        let ring = keydir.load().expect("load keys");
        let service = TokenService::new(
            directory,
            ring,
            Arc::new(MemoryStore::new()),
            PasswordPool::new(2, 16),
            settings,
        );
        Self {
            service: Arc::new(service),
            keydir,
            hash,
            _tmp: tmp,
        }
    }

    /// The key ring as the keys folder holds it now.
    fn ring(&self) -> KeyRing {
        self.keydir.load().expect("load keys")
    }

    fn reload_directory(&self, alice: Alice) {
        let directory =
            Directory::from_toml(&directory_toml(&self.hash, alice)).expect("directory parses");
        self.service.replace_directory(directory);
    }

    async fn login(&self, user_type: &str, user_id: &str) -> TokenPair {
        self.service
            .issue(login(DOMAIN, user_type, user_id, password(PASSWORD)))
            .await
            .unwrap_or_else(|e| panic!("login of {user_id:?} ({user_type:?}) should work: {e}"))
    }

    async fn login_alice(&self) -> TokenPair {
        self.login("", "alice").await
    }
}

fn login(
    domain_id: &str,
    user_type: &str,
    user_id: &str,
    credentials: Credentials,
) -> IssueRequest {
    IssueRequest {
        user_id: user_id.to_owned(),
        credentials,
        user_type: user_type.to_owned(),
        domain_id: domain_id.to_owned(),
        timeout: 0,
        refresh_count: 0,
        client_ip: None,
        protocol: "",
    }
}

fn password(p: &str) -> Credentials {
    Credentials::Password(p.to_owned())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON encodes"))
}

/// Header and claims of a compact JWT, not verified.
fn unverified(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = |what: &str| -> Value {
        let part = parts.next().unwrap_or_else(|| panic!("token has a {what}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("{what} is base64url: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{what} is JSON: {e}"))
    };
    let header = next("header");
    let claims = next("claims");
    (header, claims)
}

fn claims_of(token: &str) -> Value {
    unverified(token).1
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("JWT header decodes")
        .kid
        .expect("JWT header has a kid")
}

/// `token` with its header replaced (claims and signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = b64_json(header);
    parts.join(".")
}

/// `token` with its claims replaced (header and signature kept).
fn with_claims(token: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64_json(claims);
    parts.join(".")
}

/// Signs `claims` with the current refresh key of `domain_id`.
fn sign_refresh(ring: &KeyRing, domain_id: &str, claims: &Value) -> String {
    ring.domain(domain_id)
        .expect("domain has keys")
        .refresh
        .sign(claims)
        .expect("sign")
}

fn signing_kid(ring: &KeyRing, domain_id: &str, purpose: Purpose) -> String {
    ring.domain(domain_id)
        .expect("domain has keys")
        .get(purpose)
        .signing_key()
        .expect("signing key")
        .kid()
        .to_owned()
}

fn public_jwk(ring: &KeyRing, domain_id: &str, purpose: Purpose) -> Value {
    ring.domain(domain_id)
        .expect("domain has keys")
        .get(purpose)
        .signing_key()
        .expect("signing key")
        .public_jwk()
        .clone()
}

/// Complete, well-formed refresh claims for a family that was never issued.
fn forged_refresh_claims(did: &str, aud: &str, cat: &str) -> Value {
    let now = now_secs();
    json!({
        "cat": cat,
        "user_type": "USER",
        "did": did,
        "aud": aud,
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "key": URL_SAFE_NO_PAD.encode([7u8; 24]),
        "ttl": 3,
        "fam": "forged-family",
        "fex": now + 3600,
    })
}

/// Verifies `token` with jsonwebtoken against a public JWK, as a SpaceONE
/// service would (algorithm pinned, `aud`, `iss` and `exp` checked).
fn verify_with_jwk(
    token: &str,
    jwk: &Value,
    alg: jsonwebtoken::Algorithm,
    aud: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("JWK parses");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
}

#[track_caller]
fn assert_error(case: &str, err: &TokenError, code: &str, status: ErrorClass, message: &str) {
    assert_eq!(err.code(), code, "{case}: code");
    assert_eq!(err.status(), status, "{case}: status");
    assert_eq!(err.to_string(), message, "{case}: message");
    assert!(
        message.starts_with(&format!("{code}: ")),
        "{case}: the table's message starts with its code"
    );
}

#[track_caller]
fn assert_invalid_refresh(case: &str, result: Result<TokenPair, TokenError>) {
    match result {
        Ok(pair) => panic!("{case}: refresh should be refused, got {pair:?}"),
        Err(err) => assert_error(
            case,
            &err,
            "ERROR_INVALID_REFRESH_TOKEN",
            ErrorClass::Unauthenticated,
            INVALID_REFRESH,
        ),
    }
}

// ---------------------------------------------------------------------------
// issue
// ---------------------------------------------------------------------------

struct IssueCase {
    name: &'static str,
    request: IssueRequest,
    code: &'static str,
    status: ErrorClass,
    message: String,
}

fn issue_case(
    name: &'static str,
    request: IssueRequest,
    code: &'static str,
    status: ErrorClass,
    message: impl Into<String>,
) -> IssueCase {
    IssueCase {
        name,
        request,
        code,
        status,
        message: message.into(),
    }
}

fn auth_failure(user_id: &str) -> String {
    format!(
        "ERROR_AUTHENTICATION_FAILURE: A user \"{user_id}\" is not exist or password is not correct."
    )
}

fn status_failure(user_id: &str) -> String {
    format!("ERROR_USER_STATUS_CHECK_FAILURE: A user \"{user_id}\" status is not ENABLED.")
}

#[tokio::test]
async fn issue_rules_table() {
    use ErrorClass::{InvalidArgument, Unauthenticated};

    let fx = Fixture::new(settings());
    let pw = || password(PASSWORD);
    let wrong = || password("not the password");
    let required =
        |key: &str| format!("ERROR_REQUIRED_PARAMETER: Required parameter. (key = {key})");
    let invalid = |key: &str, reason: &str| {
        format!("ERROR_INVALID_PARAMETER: Parameter is invalid. (key = {key}, reason = {reason})")
    };
    let invalid_credentials = "ERROR_INVALID_CREDENTIALS: Invalid credentials provided.";

    let cases = vec![
        // Rule 1: required parameters, in the order credentials, domain_id, user_id.
        issue_case(
            "missing credentials",
            login(DOMAIN, "", "alice", Credentials::Missing),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("credentials"),
        ),
        issue_case(
            "missing domain_id",
            login("", "", "alice", pw()),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("domain_id"),
        ),
        issue_case(
            "missing user_id",
            login(DOMAIN, "", "", pw()),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("user_id"),
        ),
        issue_case(
            "all three missing: credentials first",
            login("", "", "", Credentials::Missing),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("credentials"),
        ),
        issue_case(
            "credentials and user_id missing: credentials first",
            login(DOMAIN, "", "", Credentials::Missing),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("credentials"),
        ),
        issue_case(
            "credentials and domain_id missing: credentials first",
            login("", "", "alice", Credentials::Missing),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("credentials"),
        ),
        issue_case(
            "domain_id and user_id missing: domain_id first",
            login("", "", "", pw()),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("domain_id"),
        ),
        issue_case(
            "domain_id and user_id missing, no password: domain_id first",
            login("", "", "", Credentials::NoPassword),
            "ERROR_REQUIRED_PARAMETER",
            InvalidArgument,
            required("domain_id"),
        ),
        // user_type: "", USER, LOCAL, DOMAIN_OWNER only.
        issue_case(
            "unknown user_type",
            login(DOMAIN, "ADMIN", "alice", pw()),
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("user_type", "must be USER, LOCAL or DOMAIN_OWNER"),
        ),
        issue_case(
            "API_USER is not a request user_type",
            login(DOMAIN, "API_USER", "robot", pw()),
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("user_type", "must be USER, LOCAL or DOMAIN_OWNER"),
        ),
        issue_case(
            "user_type is case-sensitive",
            login(DOMAIN, "user", "alice", pw()),
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("user_type", "must be USER, LOCAL or DOMAIN_OWNER"),
        ),
        // Rule 5: timeout and refresh_count.
        issue_case(
            "negative timeout",
            IssueRequest {
                timeout: -1,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("timeout", "must not be negative"),
        ),
        issue_case(
            "very negative timeout",
            IssueRequest {
                timeout: i32::MIN,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("timeout", "must not be negative"),
        ),
        issue_case(
            "timeout above max_access_timeout",
            IssueRequest {
                timeout: MAX_TIMEOUT as i32 + 1,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("timeout", &format!("must not exceed {MAX_TIMEOUT}")),
        ),
        issue_case(
            "huge timeout",
            IssueRequest {
                timeout: i32::MAX,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("timeout", &format!("must not exceed {MAX_TIMEOUT}")),
        ),
        issue_case(
            "negative refresh_count",
            IssueRequest {
                refresh_count: -1,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_INVALID_PARAMETER",
            InvalidArgument,
            invalid("refresh_count", "must not be negative"),
        ),
        issue_case(
            "refresh_count above refresh_ttl",
            IssueRequest {
                refresh_count: REFRESH_TTL as i32 + 1,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_MAX_REFRESH_COUNT",
            Unauthenticated,
            format!(
                "ERROR_MAX_REFRESH_COUNT: The maximum refresh count has been exceeded. (max_refresh_count = {REFRESH_TTL})"
            ),
        ),
        issue_case(
            "huge refresh_count",
            IssueRequest {
                refresh_count: i32::MAX,
                ..login(DOMAIN, "USER", "alice", pw())
            },
            "ERROR_MAX_REFRESH_COUNT",
            Unauthenticated,
            format!(
                "ERROR_MAX_REFRESH_COUNT: The maximum refresh count has been exceeded. (max_refresh_count = {REFRESH_TTL})"
            ),
        ),
        // Rule 2: the domain.
        issue_case(
            "unknown domain",
            login("nowhere", "", "alice", pw()),
            "ERROR_NOT_FOUND",
            InvalidArgument,
            "ERROR_NOT_FOUND: Value not found. (domain_id = nowhere)",
        ),
        issue_case(
            "unknown domain, no password",
            login("nowhere", "", "alice", Credentials::NoPassword),
            "ERROR_NOT_FOUND",
            InvalidArgument,
            "ERROR_NOT_FOUND: Value not found. (domain_id = nowhere)",
        ),
        issue_case(
            "disabled domain",
            login(DISABLED_DOMAIN, "", "alice", pw()),
            "ERROR_DOMAIN_STATE",
            Unauthenticated,
            format!("ERROR_DOMAIN_STATE: Domain is disabled (domain_id = {DISABLED_DOMAIN})"),
        ),
        issue_case(
            "disabled domain, owner",
            login(DISABLED_DOMAIN, "DOMAIN_OWNER", "root", pw()),
            "ERROR_DOMAIN_STATE",
            Unauthenticated,
            format!("ERROR_DOMAIN_STATE: Domain is disabled (domain_id = {DISABLED_DOMAIN})"),
        ),
        // Rule 5: credentials without a password, known or unknown user.
        issue_case(
            "no password, known user",
            login(DOMAIN, "", "alice", Credentials::NoPassword),
            "ERROR_INVALID_CREDENTIALS",
            Unauthenticated,
            invalid_credentials,
        ),
        issue_case(
            "no password, unknown user",
            login(DOMAIN, "", "ghost", Credentials::NoPassword),
            "ERROR_INVALID_CREDENTIALS",
            Unauthenticated,
            invalid_credentials,
        ),
        issue_case(
            "no password, owner",
            login(DOMAIN, "DOMAIN_OWNER", "root", Credentials::NoPassword),
            "ERROR_INVALID_CREDENTIALS",
            Unauthenticated,
            invalid_credentials,
        ),
        issue_case(
            "no password, unknown owner",
            login(DOMAIN, "DOMAIN_OWNER", "nobody", Credentials::NoPassword),
            "ERROR_INVALID_CREDENTIALS",
            Unauthenticated,
            invalid_credentials,
        ),
        issue_case(
            "no password, API user",
            login(DOMAIN, "", "robot", Credentials::NoPassword),
            "ERROR_INVALID_CREDENTIALS",
            Unauthenticated,
            invalid_credentials,
        ),
        // Rule 3: wrong password and unknown principal look the same.
        issue_case(
            "wrong password",
            login(DOMAIN, "", "alice", wrong()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("alice"),
        ),
        issue_case(
            "empty password is a wrong password",
            login(DOMAIN, "USER", "alice", password("")),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("alice"),
        ),
        issue_case(
            "password with trailing space",
            login(DOMAIN, "LOCAL", "alice", password(&format!("{PASSWORD} "))),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("alice"),
        ),
        issue_case(
            "unknown user",
            login(DOMAIN, "", "ghost", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("ghost"),
        ),
        issue_case(
            "unknown user, wrong password",
            login(DOMAIN, "USER", "ghost", wrong()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("ghost"),
        ),
        // An EXTERNAL user (SpaceONE's auth plugin checked its password;
        // tokengate calls none): SpaceONE 1.x's answer for a domain
        // without a plugin, whatever the password.
        issue_case(
            "EXTERNAL user",
            login(DOMAIN, "USER", "sso", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("sso"),
        ),
        issue_case(
            "EXTERNAL user, empty password",
            login(DOMAIN, "", "sso", password("")),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("sso"),
        ),
        // An API user without a password: no password is right, so rule 4
        // is never reached and nothing tells it exists.
        issue_case(
            "API user without a password",
            login(DOMAIN, "USER", "keyless-robot", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("keyless-robot"),
        ),
        issue_case(
            "unknown owner",
            login(DOMAIN, "DOMAIN_OWNER", "nobody", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("nobody"),
        ),
        issue_case(
            "owner, wrong password",
            login(DOMAIN, "DOMAIN_OWNER", "root", wrong()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("root"),
        ),
        issue_case(
            "an owner is not a user",
            login(DOMAIN, "USER", "root", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("root"),
        ),
        issue_case(
            "a user is not an owner",
            login(DOMAIN, "DOMAIN_OWNER", "alice", pw()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("alice"),
        ),
        // Rule 4: only after a correct password.
        issue_case(
            "API_USER, right password",
            login(DOMAIN, "", "robot", pw()),
            "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER",
            Unauthenticated,
            "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER: API_USER are not allowed to issue tokens. (user_id = robot)",
        ),
        issue_case(
            "API_USER, right password, user_type USER",
            login(DOMAIN, "USER", "robot", pw()),
            "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER",
            Unauthenticated,
            "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER: API_USER are not allowed to issue tokens. (user_id = robot)",
        ),
        issue_case(
            "API_USER, wrong password: password first",
            login(DOMAIN, "", "robot", wrong()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("robot"),
        ),
        issue_case(
            "disabled user, right password",
            login(DOMAIN, "", "dave", pw()),
            "ERROR_USER_STATUS_CHECK_FAILURE",
            Unauthenticated,
            status_failure("dave"),
        ),
        issue_case(
            "disabled user, right password, user_type LOCAL",
            login(DOMAIN, "LOCAL", "dave", pw()),
            "ERROR_USER_STATUS_CHECK_FAILURE",
            Unauthenticated,
            status_failure("dave"),
        ),
        issue_case(
            "pending user, right password",
            login(DOMAIN, "USER", "pete", pw()),
            "ERROR_USER_STATUS_CHECK_FAILURE",
            Unauthenticated,
            status_failure("pete"),
        ),
        issue_case(
            "disabled user, wrong password: password first",
            login(DOMAIN, "", "dave", wrong()),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("dave"),
        ),
        issue_case(
            "pending user, empty password: password first",
            login(DOMAIN, "", "pete", password("")),
            "ERROR_AUTHENTICATION_FAILURE",
            Unauthenticated,
            auth_failure("pete"),
        ),
    ];

    for case in cases {
        match fx.service.issue(case.request.clone()).await {
            Ok(pair) => panic!("{}: issue should fail, got {pair:?}", case.name),
            Err(err) => assert_error(case.name, &err, case.code, case.status, &case.message),
        }
    }
}

#[tokio::test]
async fn issue_accepts_every_user_type_and_the_limits() {
    let fx = Fixture::new(settings());
    let rows: [(&str, &str, &str, i32, i32, u64, u32); 7] = [
        // (user_type, user, claim user_type, timeout, refresh_count, lifetime, ttl)
        ("", "alice", "USER", 0, 0, 1200, REFRESH_TTL),
        ("USER", "alice", "USER", 1, 1, 1, 1),
        ("LOCAL", "alice", "USER", 60, 2, 60, 2),
        (
            "USER",
            "alice",
            "USER",
            MAX_TIMEOUT as i32,
            REFRESH_TTL as i32,
            MAX_TIMEOUT,
            REFRESH_TTL,
        ),
        (
            "DOMAIN_OWNER",
            "root",
            "DOMAIN_OWNER",
            0,
            0,
            1200,
            REFRESH_TTL,
        ),
        ("", "newbie", "USER", 0, 0, 1200, REFRESH_TTL),
        ("LOCAL", "newbie", "USER", 30, 3, 30, 3),
    ];
    for (user_type, user, claim_type, timeout, refresh_count, lifetime, ttl) in rows {
        let case = format!("{user_type:?}/{user}/timeout {timeout}/count {refresh_count}");
        let pair = fx
            .service
            .issue(IssueRequest {
                timeout,
                refresh_count,
                ..login(DOMAIN, user_type, user, password(PASSWORD))
            })
            .await
            .unwrap_or_else(|e| panic!("{case}: issue should work: {e}"));
        let access = claims_of(&pair.access_token);
        let refresh = claims_of(&pair.refresh_token);
        for claims in [&access, &refresh] {
            assert_eq!(claims["user_type"], claim_type, "{case}");
            assert_eq!(claims["aud"], user, "{case}");
            assert_eq!(claims["did"], DOMAIN, "{case}");
        }
        let iat = access["iat"].as_u64().expect("iat");
        assert_eq!(
            access["exp"].as_u64(),
            Some(iat + lifetime),
            "{case}: access lifetime"
        );
        assert_eq!(refresh["ttl"].as_u64(), Some(u64::from(ttl)), "{case}: ttl");
        // Rule 6: the refresh token lives refresh_timeout, not timeout.
        let riat = refresh["iat"].as_u64().expect("iat");
        assert_eq!(
            refresh["exp"].as_u64(),
            Some(riat + 1800),
            "{case}: refresh lifetime"
        );
    }
}

// ---------------------------------------------------------------------------
// refresh errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refresh_errors_table() {
    use ErrorClass::{InvalidArgument, Unauthenticated};

    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    let ring = fx.ring();
    let refresh_kid = signing_kid(&ring, DOMAIN, Purpose::Refresh);
    let access_kid = signing_kid(&ring, DOMAIN, Purpose::Access);
    let other_refresh_kid = signing_kid(&ring, DISABLED_DOMAIN, Purpose::Refresh);
    let (real_header, real_claims) = unverified(&pair.refresh_token);
    assert_eq!(real_header["kid"], refresh_kid.as_str());

    let without = |claims: &Value, field: &str| {
        let mut c = claims.clone();
        c.as_object_mut().expect("claims object").remove(field);
        c
    };
    let with = |claims: &Value, field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };

    // Not verifiable at all.
    let no_did = sign_refresh(&ring, DOMAIN, &without(&real_claims, "did"));
    let empty_did = sign_refresh(&ring, DOMAIN, &with(&real_claims, "did", json!("")));
    let numeric_did = sign_refresh(&ring, DOMAIN, &with(&real_claims, "did", json!(42)));
    let unknown_domain = sign_refresh(&ring, DOMAIN, &with(&real_claims, "did", json!("nowhere")));
    let expired = sign_refresh(
        &ring,
        DOMAIN,
        &with(&real_claims, "exp", json!(now_secs() - 5)),
    );
    let no_exp = sign_refresh(&ring, DOMAIN, &without(&real_claims, "exp"));
    let tampered = with_claims(&pair.refresh_token, &with(&real_claims, "ttl", json!(99)));
    let other_user = with_claims(
        &pair.refresh_token,
        &with(&real_claims, "aud", json!("root")),
    );
    let unsigned_header = json!({"alg": "none", "typ": "JWT", "kid": refresh_kid});
    let alg_none = format!("{}.{}.", b64_json(&unsigned_header), b64_json(&real_claims));
    let alg_none_no_kid = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT"})),
        b64_json(&real_claims)
    );
    let alg_swapped = with_header(
        &pair.refresh_token,
        &json!({"alg": "ES256", "typ": "JWT", "kid": refresh_kid}),
    );
    let refresh_jwk = public_jwk(&ring, DOMAIN, Purpose::Refresh);
    let hs256 = |secret: &[u8]| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(refresh_kid.clone());
        jsonwebtoken::encode(
            &header,
            &real_claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("HS256 encodes")
    };
    let hs256_jwk_text = hs256(refresh_jwk.to_string().as_bytes());
    let public_bytes = URL_SAFE_NO_PAD
        .decode(refresh_jwk["x"].as_str().expect("Ed25519 JWK has x"))
        .expect("x is base64url");
    let hs256_key_bytes = hs256(&public_bytes);
    // Kid swaps: a key of another domain, another purpose, or none at all.
    let signed_by_other_domain = sign_refresh(&ring, DISABLED_DOMAIN, &real_claims);
    let other_domain_kid = with_header(
        &pair.refresh_token,
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": other_refresh_kid}),
    );
    let access_kid_header = with_header(
        &pair.refresh_token,
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": access_kid}),
    );
    let signed_by_access_key = ring
        .domain(DOMAIN)
        .expect("keys")
        .access
        .sign(&real_claims)
        .expect("sign");
    let unknown_kid = with_header(
        &pair.refresh_token,
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": "refresh-0000000001-deadbeef"}),
    );
    let no_kid = with_header(&pair.refresh_token, &json!({"alg": "EdDSA", "typ": "JWT"}));
    let impostor = {
        let der = SigningKey::generate_pkcs8(Algorithm::EdDSA).expect("generate");
        let key = SigningKey::from_pkcs8(refresh_kid.clone(), &der).expect("parse");
        KeySet::new(vec![Arc::new(key)])
            .sign(&real_claims)
            .expect("sign")
    };
    // Verified, but not a usable refresh token.
    let cat_access = sign_refresh(
        &ring,
        DOMAIN,
        &with(&real_claims, "cat", json!("ACCESS_TOKEN")),
    );
    let access_claims_refresh_key = sign_refresh(&ring, DOMAIN, &claims_of(&pair.access_token));
    let no_cat = sign_refresh(&ring, DOMAIN, &without(&real_claims, "cat"));
    let forged_cat_access = sign_refresh(
        &ring,
        DOMAIN,
        &forged_refresh_claims(DOMAIN, "alice", "ACCESS_TOKEN"),
    );
    // A validly signed token with a key its live family never issued can
    // only come from a lost store write: it ends that family (SPEC §3), so
    // it is made from a second family, not the one checked at the end.
    let other_family = fx.login_alice().await;
    let never_issued = sign_refresh(
        &ring,
        DOMAIN,
        &with(
            &unverified(&other_family.refresh_token).1,
            "key",
            json!(URL_SAFE_NO_PAD.encode([9u8; 24])),
        ),
    );
    let forged_family = sign_refresh(
        &ring,
        DOMAIN,
        &forged_refresh_claims(DOMAIN, "alice", "REFRESH_TOKEN"),
    );
    let bad_user_type = sign_refresh(
        &ring,
        DOMAIN,
        &with(&real_claims, "user_type", json!("API_USER")),
    );
    let disabled_domain = sign_refresh(
        &ring,
        DISABLED_DOMAIN,
        &forged_refresh_claims(DISABLED_DOMAIN, "alice", "REFRESH_TOKEN"),
    );

    let auth = "ERROR_AUTHENTICATE_FAILURE";
    let cases: Vec<(&str, Option<&str>, &str, ErrorClass, String)> = vec![
        (
            "absent",
            None,
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "empty",
            Some(""),
            auth,
            Unauthenticated,
            CANNOT_DECODE.into(),
        ),
        (
            "not a JWT",
            Some("not-a-jwt"),
            auth,
            Unauthenticated,
            CANNOT_DECODE.into(),
        ),
        (
            "three garbage parts",
            Some("a.b.c"),
            auth,
            Unauthenticated,
            CANNOT_DECODE.into(),
        ),
        (
            "dots only",
            Some(".."),
            auth,
            Unauthenticated,
            CANNOT_DECODE.into(),
        ),
        (
            "no did",
            Some(no_did.as_str()),
            auth,
            Unauthenticated,
            EMPTY_DID.into(),
        ),
        (
            "empty did",
            Some(empty_did.as_str()),
            auth,
            Unauthenticated,
            EMPTY_DID.into(),
        ),
        (
            "did not a string",
            Some(numeric_did.as_str()),
            auth,
            Unauthenticated,
            EMPTY_DID.into(),
        ),
        (
            "did of an unknown domain",
            Some(unknown_domain.as_str()),
            "ERROR_NOT_FOUND",
            InvalidArgument,
            "ERROR_NOT_FOUND: Value not found. (domain_id = nowhere)".into(),
        ),
        (
            "an access token",
            Some(pair.access_token.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "expired",
            Some(expired.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "no exp",
            Some(no_exp.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "tampered claims (ttl)",
            Some(tampered.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "tampered claims (aud)",
            Some(other_user.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "alg none",
            Some(alg_none.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "alg none without kid",
            Some(alg_none_no_kid.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "alg header swapped",
            Some(alg_swapped.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "HS256 keyed with the public JWK text",
            Some(hs256_jwk_text.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "HS256 keyed with the public key bytes",
            Some(hs256_key_bytes.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "signed by another domain's refresh key",
            Some(signed_by_other_domain.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "kid of another domain in the header",
            Some(other_domain_kid.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "the access key's kid in the header",
            Some(access_kid_header.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "refresh claims signed by the access key",
            Some(signed_by_access_key.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "unknown kid",
            Some(unknown_kid.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "no kid",
            Some(no_kid.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "right kid, other key material",
            Some(impostor.as_str()),
            auth,
            Unauthenticated,
            VALIDATION_FAILED.into(),
        ),
        (
            "cat ACCESS_TOKEN signed by the refresh key",
            Some(cat_access.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "access claims signed by the refresh key",
            Some(access_claims_refresh_key.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "no cat",
            Some(no_cat.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "forged claims, cat ACCESS_TOKEN",
            Some(forged_cat_access.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "validly signed, one-time key never issued",
            Some(never_issued.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "validly signed, family never issued",
            Some(forged_family.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "validly signed, user_type not a login type",
            Some(bad_user_type.as_str()),
            "ERROR_INVALID_REFRESH_TOKEN",
            Unauthenticated,
            INVALID_REFRESH.into(),
        ),
        (
            "validly signed, disabled domain",
            Some(disabled_domain.as_str()),
            "ERROR_DOMAIN_STATE",
            Unauthenticated,
            format!("ERROR_DOMAIN_STATE: Domain is disabled (domain_id = {DISABLED_DOMAIN})"),
        ),
    ];

    for (name, token, code, status, message) in &cases {
        match fx.service.refresh(*token).await {
            Ok(answer) => panic!("{name}: refresh should fail, got {answer:?}"),
            Err(err) => assert_error(name, &err, code, *status, message),
        }
    }

    // None of the forgeries harmed the real family: its token still works.
    fx.service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("the genuine refresh token still refreshes after the forgeries");
    // The family whose key was never issued has ended.
    assert_invalid_refresh(
        "the family of a never-issued key",
        fx.service.refresh(Some(&other_family.refresh_token)).await,
    );
}

#[tokio::test]
async fn refresh_count_runs_out() {
    let fx = Fixture::new(settings());
    let first = fx
        .service
        .issue(IssueRequest {
            refresh_count: 1,
            ..login(DOMAIN, "", "alice", password(PASSWORD))
        })
        .await
        .expect("issue");
    assert_eq!(claims_of(&first.refresh_token)["ttl"], 1);
    let second = fx
        .service
        .refresh(Some(&first.refresh_token))
        .await
        .expect("one refresh left");
    assert_eq!(claims_of(&second.refresh_token)["ttl"], 0);
    let err = fx
        .service
        .refresh(Some(&second.refresh_token))
        .await
        .expect_err("ttl 0 cannot refresh");
    assert_error(
        "ttl 0",
        &err,
        "ERROR_REFRESH_COUNT",
        ErrorClass::Unauthenticated,
        REFRESH_COUNT,
    );
}

// ---------------------------------------------------------------------------
// Claims and keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn claims_round_trip() {
    let fx = Fixture::new(settings());
    let before = now_secs();
    let pair = fx
        .service
        .issue(IssueRequest {
            timeout: 600,
            refresh_count: 3,
            ..login(DOMAIN, "", "alice", password(PASSWORD))
        })
        .await
        .expect("issue");
    let after = now_secs();
    let ring = fx.ring();

    // Headers: alg, typ, kid; access and refresh keys differ.
    let access_header = jsonwebtoken::decode_header(&pair.access_token).expect("access header");
    let refresh_header = jsonwebtoken::decode_header(&pair.refresh_token).expect("refresh header");
    for header in [&access_header, &refresh_header] {
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
    }
    let access_kid = access_header.kid.clone().expect("access kid");
    let refresh_kid = refresh_header.kid.clone().expect("refresh kid");
    assert_ne!(
        access_kid, refresh_kid,
        "access and refresh use different keys"
    );
    assert_eq!(access_kid, signing_kid(&ring, DOMAIN, Purpose::Access));
    assert_eq!(refresh_kid, signing_kid(&ring, DOMAIN, Purpose::Refresh));

    // The published key verifies the access token, as a SpaceONE service would.
    let published = fx.service.public_key(DOMAIN).expect("public key");
    assert_eq!(published.domain_id, DOMAIN);
    let jwk: Value = serde_json::from_str(&published.public_key).expect("public key is JSON");
    assert_eq!(jwk["kid"], access_kid.as_str());
    assert!(jwk.get("d").is_none(), "no private part");
    let jwks = fx.service.jwks();
    let listed = jwks["keys"]
        .as_array()
        .expect("jwks keys")
        .iter()
        .find(|k| k["kid"] == access_kid.as_str())
        .expect("the access key is in the JWKS");
    assert_eq!(listed, &jwk);
    assert!(
        !jwks["keys"]
            .as_array()
            .expect("jwks keys")
            .iter()
            .any(|k| k["kid"] == refresh_kid.as_str()),
        "refresh keys are never published"
    );
    let access = verify_with_jwk(
        &pair.access_token,
        &jwk,
        jsonwebtoken::Algorithm::EdDSA,
        "alice",
    )
    .expect("access token verifies with the published JWK");
    assert_eq!(access["cat"], "ACCESS_TOKEN");
    assert_eq!(access["user_type"], "USER");
    assert_eq!(access["did"], DOMAIN);
    assert_eq!(access["aud"], "alice");
    assert_eq!(access["iss"], ISSUER);
    let iat = access["iat"].as_u64().expect("iat");
    assert!((before..=after).contains(&iat), "iat is now");
    assert_eq!(
        access["exp"].as_u64(),
        Some(iat + 600),
        "exp = iat + timeout"
    );
    let jti = access["jti"].as_str().expect("jti");
    assert!(jti.len() >= 22, "jti has ≥128 bits: {jti}");
    assert!(
        access.get("permissions").is_none(),
        "no permissions for alice"
    );
    assert!(access.get("key").is_none() && access.get("fam").is_none());

    // The refresh token verifies only with the refresh key.
    let refresh_jwk = public_jwk(&ring, DOMAIN, Purpose::Refresh);
    let refresh = verify_with_jwk(
        &pair.refresh_token,
        &refresh_jwk,
        jsonwebtoken::Algorithm::EdDSA,
        "alice",
    )
    .expect("refresh token verifies with the refresh key");
    assert!(
        verify_with_jwk(
            &pair.refresh_token,
            &jwk,
            jsonwebtoken::Algorithm::EdDSA,
            "alice"
        )
        .is_err(),
        "the access key does not verify refresh tokens"
    );
    assert!(
        verify_with_jwk(
            &pair.access_token,
            &refresh_jwk,
            jsonwebtoken::Algorithm::EdDSA,
            "alice"
        )
        .is_err(),
        "the refresh key does not verify access tokens"
    );
    assert_eq!(refresh["cat"], "REFRESH_TOKEN");
    assert_eq!(refresh["user_type"], "USER");
    assert_eq!(refresh["did"], DOMAIN);
    assert_eq!(refresh["aud"], "alice");
    assert_eq!(refresh["iss"], ISSUER);
    let riat = refresh["iat"].as_u64().expect("iat");
    assert!((before..=after).contains(&riat));
    assert_eq!(
        refresh["exp"].as_u64(),
        Some(riat + 1800),
        "exp = iat + refresh_timeout"
    );
    let key = refresh["key"].as_str().expect("key");
    assert!(key.len() >= 22, "key has ≥128 bits: {key}");
    assert!(
        key.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "key is base64url: {key}"
    );
    assert!(URL_SAFE_NO_PAD.decode(key).expect("key decodes").len() >= 16);
    assert_eq!(refresh["ttl"], 3);
    assert!(!refresh["fam"].as_str().expect("fam").is_empty());
    assert!(refresh.get("permissions").is_none());
    assert!(refresh.get("jti").is_none() || refresh["jti"] != access["jti"]);

    // Two logins: two families, two keys, two jtis.
    let again = fx.login_alice().await;
    let again_refresh = claims_of(&again.refresh_token);
    assert_ne!(again_refresh["fam"], refresh["fam"]);
    assert_ne!(again_refresh["key"], refresh["key"]);
    assert_ne!(claims_of(&again.access_token)["jti"], access["jti"]);

    // UPDATE_PASSWORD: permissions in the access token only.
    let newbie = fx.login("USER", "newbie").await;
    let newbie_access = verify_with_jwk(
        &newbie.access_token,
        &jwk,
        jsonwebtoken::Algorithm::EdDSA,
        "newbie",
    )
    .expect("verifies");
    assert_eq!(
        newbie_access["permissions"],
        json!(UPDATE_PASSWORD_PERMISSIONS)
    );
    assert!(
        claims_of(&newbie.refresh_token)
            .get("permissions")
            .is_none()
    );
    // ...and again after a refresh.
    let newbie2 = fx
        .service
        .refresh(Some(&newbie.refresh_token))
        .await
        .expect("refresh newbie");
    assert_eq!(
        claims_of(&newbie2.access_token)["permissions"],
        json!(UPDATE_PASSWORD_PERMISSIONS)
    );

    // The owner.
    let owner = fx.login("DOMAIN_OWNER", "root").await;
    let owner_access = verify_with_jwk(
        &owner.access_token,
        &jwk,
        jsonwebtoken::Algorithm::EdDSA,
        "root",
    )
    .expect("verifies");
    assert_eq!(owner_access["user_type"], "DOMAIN_OWNER");
    assert!(owner_access.get("permissions").is_none());
    assert_eq!(claims_of(&owner.refresh_token)["user_type"], "DOMAIN_OWNER");
    let owner2 = fx
        .service
        .refresh(Some(&owner.refresh_token))
        .await
        .expect("owner refreshes");
    assert_eq!(claims_of(&owner2.access_token)["user_type"], "DOMAIN_OWNER");
    assert_eq!(claims_of(&owner2.access_token)["aud"], "root");
}

#[tokio::test]
async fn rs256_is_the_default_algorithm_path() {
    let fx = Fixture::with_algorithm(settings(), Algorithm::RS256);
    fx.service.readiness().await.expect("ready");
    let pair = fx.login_alice().await;
    for token in [&pair.access_token, &pair.refresh_token] {
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
    }
    let jwk: Value = serde_json::from_str(&fx.service.public_key(DOMAIN).expect("key").public_key)
        .expect("JSON");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], kid_of(&pair.access_token).as_str());
    let access = verify_with_jwk(
        &pair.access_token,
        &jwk,
        jsonwebtoken::Algorithm::RS256,
        "alice",
    )
    .expect("RS256 access token verifies with the published JWK");
    assert_eq!(access["cat"], "ACCESS_TOKEN");

    // The classic RS256 → HS256 confusion, keyed with the public key.
    let ring = fx.ring();
    let refresh_jwk = public_jwk(&ring, DOMAIN, Purpose::Refresh);
    let claims = claims_of(&pair.refresh_token);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid_of(&pair.refresh_token));
    let n = URL_SAFE_NO_PAD
        .decode(refresh_jwk["n"].as_str().expect("n"))
        .expect("n decodes");
    let secrets: [Vec<u8>; 3] = [
        n,
        refresh_jwk.to_string().into_bytes(),
        refresh_jwk["n"].as_str().expect("n").as_bytes().to_vec(),
    ];
    for secret in &secrets {
        let forged = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("encode");
        let err = fx
            .service
            .refresh(Some(&forged))
            .await
            .expect_err("HS256 forgery");
        assert_error(
            "HS256 with the RSA public key",
            &err,
            "ERROR_AUTHENTICATE_FAILURE",
            ErrorClass::Unauthenticated,
            VALIDATION_FAILED,
        );
    }

    let next = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("RS256 refresh");
    assert_eq!(
        jsonwebtoken::decode_header(&next.refresh_token)
            .expect("header")
            .alg,
        jsonwebtoken::Algorithm::RS256
    );
    verify_with_jwk(
        &next.access_token,
        &jwk,
        jsonwebtoken::Algorithm::RS256,
        "alice",
    )
    .expect("refreshed access token verifies");
}

// ---------------------------------------------------------------------------
// refresh behaviour
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_within_the_family() {
    let fx = Fixture::new(settings());
    let first = fx
        .service
        .issue(IssueRequest {
            timeout: 60,
            refresh_count: 3,
            ..login(DOMAIN, "LOCAL", "alice", password(PASSWORD))
        })
        .await
        .expect("issue");
    let first_refresh = claims_of(&first.refresh_token);
    let second = fx
        .service
        .refresh(Some(&first.refresh_token))
        .await
        .expect("refresh");
    assert_ne!(second, first, "a new pair");
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    let access = claims_of(&second.access_token);
    let refresh = claims_of(&second.refresh_token);
    assert_eq!(access["cat"], "ACCESS_TOKEN");
    assert_eq!(access["aud"], "alice");
    assert_eq!(access["user_type"], "USER");
    let iat = access["iat"].as_u64().expect("iat");
    assert_eq!(
        access["exp"].as_u64(),
        Some(iat + 1200),
        "refreshed access tokens live access_timeout"
    );
    assert_eq!(refresh["cat"], "REFRESH_TOKEN");
    assert_eq!(refresh["ttl"], 2, "ttl decremented");
    assert_eq!(refresh["fam"], first_refresh["fam"], "same family");
    assert_ne!(refresh["key"], first_refresh["key"], "a new one-time key");
    let riat = refresh["iat"].as_u64().expect("iat");
    assert_eq!(refresh["exp"].as_u64(), Some(riat + 1800));
    assert_eq!(kid_of(&second.access_token), kid_of(&first.access_token));
    assert_eq!(kid_of(&second.refresh_token), kid_of(&first.refresh_token));

    let third = fx
        .service
        .refresh(Some(&second.refresh_token))
        .await
        .expect("refresh the successor");
    assert_eq!(claims_of(&third.refresh_token)["ttl"], 1);
    assert_eq!(claims_of(&third.refresh_token)["fam"], first_refresh["fam"]);
}

#[tokio::test]
async fn refresh_tokens_are_one_time_and_reuse_revokes_the_family() {
    let fx = Fixture::new(settings());
    let family_a = fx.login_alice().await;
    let family_b = fx.login_alice().await;
    let successor = fx
        .service
        .refresh(Some(&family_a.refresh_token))
        .await
        .expect("first use");
    assert_invalid_refresh(
        "second use of the same token",
        fx.service.refresh(Some(&family_a.refresh_token)).await,
    );
    assert_invalid_refresh(
        "the successor after reuse (family revoked)",
        fx.service.refresh(Some(&successor.refresh_token)).await,
    );
    assert_invalid_refresh(
        "third use of the same token",
        fx.service.refresh(Some(&family_a.refresh_token)).await,
    );
    // Another family of the same user is untouched.
    let b2 = fx
        .service
        .refresh(Some(&family_b.refresh_token))
        .await
        .expect("other family still refreshes");
    fx.service
        .refresh(Some(&b2.refresh_token))
        .await
        .expect("and keeps refreshing");
}

#[tokio::test]
async fn duplicate_refresh_inside_the_grace_window_gets_the_same_answer() {
    let fx = Fixture::new(TokenSettings {
        reuse_grace: 30,
        ..settings()
    });
    let pair = fx.login_alice().await;
    let first = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("winner");
    let second = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("duplicate inside the grace window");
    assert_eq!(first, second, "the duplicate gets the winner's answer");
    // The family stays alive: the shared successor refreshes on.
    let next = fx
        .service
        .refresh(Some(&first.refresh_token))
        .await
        .expect("family alive after a graceful duplicate");
    assert_eq!(claims_of(&next.refresh_token)["ttl"], REFRESH_TTL - 2);
    fx.service
        .refresh(Some(&next.refresh_token))
        .await
        .expect("still alive");
}

#[tokio::test]
async fn a_family_never_outlives_the_absolute_timeout() {
    let absolute = 2;
    let fx = Fixture::new(TokenSettings {
        absolute_timeout: absolute,
        ..settings()
    });
    let pair = fx.login_alice().await;
    let claims = claims_of(&pair.refresh_token);
    let iat = claims["iat"].as_u64().expect("iat");
    let family_end = iat + absolute;
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp <= family_end, "refresh exp {exp} cut at {family_end}");
    assert!(
        claims_of(&pair.access_token)["exp"].as_u64().expect("exp") <= family_end,
        "the access token does not outlive the family either"
    );

    let next = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("refresh inside the family's life");
    for token in [&next.access_token, &next.refresh_token] {
        let exp = claims_of(token)["exp"].as_u64().expect("exp");
        assert!(exp <= family_end, "refreshed exp {exp} cut at {family_end}");
    }

    while now_secs() <= family_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = fx
        .service
        .refresh(Some(&next.refresh_token))
        .await
        .expect_err("the family is over");
    assert_error(
        "past the absolute timeout",
        &err,
        "ERROR_AUTHENTICATE_FAILURE",
        ErrorClass::Unauthenticated,
        VALIDATION_FAILED,
    );
}

#[tokio::test]
async fn reloading_an_unchanged_directory_keeps_families() {
    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    fx.reload_directory(Alice::Enabled);
    fx.service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect("an unchanged reload logs nobody out");
}

#[tokio::test]
async fn a_password_change_ends_the_family() {
    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    let owner = fx.login("DOMAIN_OWNER", "root").await;
    fx.reload_directory(Alice::NewPassword);
    assert_invalid_refresh(
        "refresh after the password changed",
        fx.service.refresh(Some(&pair.refresh_token)).await,
    );
    // Others are unaffected; the old password no longer logs in, the new one does.
    fx.service
        .refresh(Some(&owner.refresh_token))
        .await
        .expect("the owner's family is untouched");
    let err = fx
        .service
        .issue(login(DOMAIN, "", "alice", password(PASSWORD)))
        .await
        .expect_err("old password");
    assert_eq!(err.code(), "ERROR_AUTHENTICATION_FAILURE");
    let fresh = fx
        .service
        .issue(login(DOMAIN, "", "alice", password("a brand new password")))
        .await
        .expect("new password logs in");
    fx.service
        .refresh(Some(&fresh.refresh_token))
        .await
        .expect("a family issued after the change refreshes");
}

#[tokio::test]
async fn a_disabled_user_cannot_refresh_and_the_family_ends() {
    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    fx.reload_directory(Alice::Disabled);
    let err = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect_err("disabled user");
    assert_error(
        "disabled after issue",
        &err,
        "ERROR_USER_STATUS_CHECK_FAILURE",
        ErrorClass::Unauthenticated,
        &status_failure("alice"),
    );
    // Re-enabling the user does not resurrect the revoked family.
    fx.reload_directory(Alice::Enabled);
    assert_invalid_refresh(
        "re-enabled user, revoked family",
        fx.service.refresh(Some(&pair.refresh_token)).await,
    );
}

#[tokio::test]
async fn a_removed_user_cannot_refresh_and_the_family_ends() {
    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    fx.reload_directory(Alice::Removed);
    let err = fx
        .service
        .refresh(Some(&pair.refresh_token))
        .await
        .expect_err("removed user");
    assert_error(
        "removed after issue",
        &err,
        "ERROR_NOT_FOUND",
        ErrorClass::InvalidArgument,
        "ERROR_NOT_FOUND: Value not found. (user_id = alice)",
    );
    fx.reload_directory(Alice::Enabled);
    assert_invalid_refresh(
        "user back, revoked family",
        fx.service.refresh(Some(&pair.refresh_token)).await,
    );
}

#[tokio::test]
async fn key_rotation_overlaps() {
    let fx = Fixture::new(settings());
    let old = fx.login_alice().await;
    let old_access_kid = kid_of(&old.access_token);
    let old_refresh_kid = kid_of(&old.refresh_token);

    let new_access_kid = fx
        .keydir
        .generate(DOMAIN, Purpose::Access, Algorithm::EdDSA)
        .expect("new access key");
    let new_refresh_kid = fx
        .keydir
        .generate(DOMAIN, Purpose::Refresh, Algorithm::EdDSA)
        .expect("new refresh key");
    assert_ne!(new_access_kid, old_access_kid);
    assert_ne!(new_refresh_kid, old_refresh_kid);
    fx.service
        .replace_keys(fx.keydir.load().expect("reload keys"));

    // The old refresh token still refreshes; the answer uses the new keys.
    let next = fx
        .service
        .refresh(Some(&old.refresh_token))
        .await
        .expect("a token signed by the previous key still refreshes");
    assert_eq!(kid_of(&next.access_token), new_access_kid);
    assert_eq!(kid_of(&next.refresh_token), new_refresh_kid);
    let fresh = fx.login_alice().await;
    assert_eq!(kid_of(&fresh.access_token), new_access_kid);
    assert_eq!(kid_of(&fresh.refresh_token), new_refresh_kid);
    fx.service
        .refresh(Some(&next.refresh_token))
        .await
        .expect("new-key refresh token refreshes");

    // get_public_key names the new key; the JWKS lists both (overlap).
    let jwk: Value = serde_json::from_str(&fx.service.public_key(DOMAIN).expect("key").public_key)
        .expect("JSON");
    assert_eq!(jwk["kid"], new_access_kid.as_str());
    let jwks = fx.service.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&old_access_kid.as_str()), "{kids:?}");
    assert!(kids.contains(&new_access_kid.as_str()), "{kids:?}");
    assert!(!kids.contains(&new_refresh_kid.as_str()), "{kids:?}");
    let old_jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == old_access_kid.as_str())
        .expect("old key listed")
        .clone();
    verify_with_jwk(
        &old.access_token,
        &old_jwk,
        jsonwebtoken::Algorithm::EdDSA,
        "alice",
    )
    .expect("old access token still verifies");
}

#[tokio::test]
async fn revoke_principal_and_revoke_token() {
    let fx = Fixture::new(settings());
    let alice_1 = fx.login_alice().await;
    let alice_2 = fx.login_alice().await;
    let newbie = fx.login("", "newbie").await;

    fx.service
        .revoke_principal(DOMAIN, "alice")
        .await
        .expect("revoke alice");
    assert_invalid_refresh(
        "alice family 1",
        fx.service.refresh(Some(&alice_1.refresh_token)).await,
    );
    assert_invalid_refresh(
        "alice family 2",
        fx.service.refresh(Some(&alice_2.refresh_token)).await,
    );
    fx.service
        .refresh(Some(&newbie.refresh_token))
        .await
        .expect("another user is untouched");
    // A login after the revocation starts a family that works.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let alice_3 = fx.login_alice().await;
    let alice_4 = fx.login_alice().await;
    let alice_3b = fx
        .service
        .refresh(Some(&alice_3.refresh_token))
        .await
        .expect("a new family after the revocation");

    // revoke_token ends one family (also through a spent token) and says which.
    let family = fx
        .service
        .revoke_token(&alice_3.refresh_token)
        .await
        .expect("revoke by a spent token");
    assert_eq!(family.domain_id, DOMAIN);
    assert_eq!(family.principal_id, "alice");
    assert_eq!(
        family.family_id,
        claims_of(&alice_3.refresh_token)["fam"]
            .as_str()
            .expect("fam")
    );
    assert_invalid_refresh(
        "successor in the revoked family",
        fx.service.refresh(Some(&alice_3b.refresh_token)).await,
    );
    fx.service
        .refresh(Some(&alice_4.refresh_token))
        .await
        .expect("the other family is untouched");

    let err = fx
        .service
        .revoke_token("not-a-jwt")
        .await
        .expect_err("garbage");
    assert_error(
        "revoke garbage",
        &err,
        "ERROR_AUTHENTICATE_FAILURE",
        ErrorClass::Unauthenticated,
        CANNOT_DECODE,
    );
    let err = fx
        .service
        .revoke_token(&alice_4.access_token)
        .await
        .expect_err("an access token is not a refresh token");
    assert_error(
        "revoke with an access token",
        &err,
        "ERROR_AUTHENTICATE_FAILURE",
        ErrorClass::Unauthenticated,
        VALIDATION_FAILED,
    );
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

async fn refresh_in_parallel(
    service: &Arc<TokenService>,
    token: &str,
    n: usize,
) -> Vec<Result<TokenPair, TokenError>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let service = Arc::clone(service);
            let token = token.to_owned();
            tokio::spawn(async move { service.refresh(Some(&token)).await })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("refresh task does not panic"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_refreshes_have_exactly_one_winner() {
    let fx = Fixture::new(settings());
    let pair = fx.login_alice().await;
    let results = refresh_in_parallel(&fx.service, &pair.refresh_token, 50).await;
    let winners: Vec<&TokenPair> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_error(
            "parallel loser",
            err,
            "ERROR_INVALID_REFRESH_TOKEN",
            ErrorClass::Unauthenticated,
            INVALID_REFRESH,
        );
    }
    // With reuse_grace 0 the losers count as reuse: the family is revoked.
    assert_invalid_refresh(
        "the winner's successor after detected reuse",
        fx.service.refresh(Some(&winners[0].refresh_token)).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_refreshes_inside_the_grace_window_share_one_answer() {
    let fx = Fixture::new(TokenSettings {
        reuse_grace: 30,
        ..settings()
    });
    let pair = fx.login_alice().await;
    let results = refresh_in_parallel(&fx.service, &pair.refresh_token, 50).await;
    let answers: Vec<&TokenPair> = results
        .iter()
        .map(|r| r.as_ref().expect("every tab gets an answer"))
        .collect();
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "one shared answer"
    );
    fx.service
        .refresh(Some(&answers[0].refresh_token))
        .await
        .expect("the family lives on");
}

// ---------------------------------------------------------------------------
// get_public_key
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_public_key_rules() {
    let fx = Fixture::new(settings());
    let ring = fx.ring();

    let err = fx.service.public_key("").expect_err("empty domain");
    assert_error(
        "empty domain_id",
        &err,
        "ERROR_REQUIRED_PARAMETER",
        ErrorClass::InvalidArgument,
        "ERROR_REQUIRED_PARAMETER: Required parameter. (key = domain_id)",
    );
    let err = fx
        .service
        .public_key("nowhere")
        .expect_err("unknown domain");
    assert_error(
        "unknown domain",
        &err,
        "ERROR_NOT_FOUND",
        ErrorClass::InvalidArgument,
        "ERROR_NOT_FOUND: Value not found. (domain_id = nowhere)",
    );

    for domain_id in [DOMAIN, DISABLED_DOMAIN] {
        let answer = fx
            .service
            .public_key(domain_id)
            .unwrap_or_else(|e| panic!("{domain_id}: public key answers: {e}"));
        assert_eq!(answer.domain_id, domain_id);
        let jwk: Value = serde_json::from_str(&answer.public_key).expect("JSON text");
        assert_eq!(
            jwk["kid"],
            signing_kid(&ring, domain_id, Purpose::Access).as_str(),
            "{domain_id}: the access signing key"
        );
        assert_ne!(
            jwk["kid"],
            signing_kid(&ring, domain_id, Purpose::Refresh).as_str()
        );
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["alg"], "EdDSA");
        assert!(jwk.get("d").is_none(), "no private part");
    }
}
