//! The LDAP directory end to end: the real binary against a private
//! `slapd`. A password changed with `ldappasswd` ends the family at its
//! next refresh; a disabled entry is refused at login and refresh; slapd
//! stopped answers UNAVAILABLE and fails /readyz, restarted recovers
//! without a restart; an unknown user costs what a wrong password costs.

use std::time::{Duration, Instant};

use tokengate_test_support::ldap_server::{SERVICE_PASSWORD, user_dn};
use tokengate_test_support::prelude::*;

const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

async fn issue(clients: &Clients, user: &str, password: &str) -> Outcome {
    clients.issue(Proto::Grpc, "domain-a", user, password).await
}

async fn refresh(clients: &Clients, token: &str) -> Outcome {
    clients.refresh(Proto::Grpc, token).await
}

/// How a run of refreshes looked its principal up.
#[derive(Debug)]
struct Lookups {
    /// Answered by the snapshot.
    from_snapshot: f64,
    /// Searched for on the server.
    searched: f64,
}

/// Refreshes `token` `times` times (each must succeed, the token follows
/// its successors) and counts how the principal was looked up.
async fn refresh_times(
    server: &TestServer,
    clients: &Clients,
    token: &mut String,
    times: usize,
) -> Lookups {
    let hits = "tokengate_directory_snapshot_hits_total";
    let misses = "tokengate_directory_snapshot_misses_total";
    let (hits_before, misses_before) = (server.metric(hits).await, server.metric(misses).await);
    for _ in 0..times {
        let outcome = refresh(clients, token).await;
        assert!(outcome.ok(), "{outcome:?}");
        *token = outcome.decode::<TokenInfo>().refresh_token;
    }
    Lookups {
        from_snapshot: server.metric(hits).await - hits_before,
        searched: server.metric(misses).await - misses_before,
    }
}

/// Marks a user of domain-a disabled (`employeeType: DISABLED`).
fn disable(ldap: &LdapServer, uid: &str) {
    ldap.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: employeeType\nemployeeType: DISABLED\n",
        user_dn("domain-a", uid)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_disable_outage_and_recovery() {
    let mut ldap = LdapServer::start(PASSWORD);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    assert_eq!(server.readyz().await, 200);
    let alice = "alice@example.com";
    let first = issue(&clients, alice, PASSWORD).await;
    assert!(first.ok(), "{first:?}");
    let family = first.decode::<TokenInfo>().refresh_token;
    let family = refresh(&clients, &family)
        .await
        .decode::<TokenInfo>()
        .refresh_token;

    // modifyTimestamp has a resolution of one second: change the password
    // in a later second than the entry's creation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ldap.ldappasswd(&user_dn("domain-a", alice), "changed by ldappasswd");
    let new = issue(&clients, alice, "changed by ldappasswd").await;
    assert!(new.ok(), "the new password at once: {new:?}");
    let old = issue(&clients, alice, PASSWORD).await;
    assert_eq!(old.reason.as_deref(), Some("ERROR_AUTHENTICATION_FAILURE"));
    let ended = refresh(&clients, &family).await;
    assert_eq!(
        (ended.code, ended.message.as_str()),
        (
            UNAUTHENTICATED,
            "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired."
        )
    );
    let mut live = new.decode::<TokenInfo>().refresh_token;

    // slapd stopped: logins and refreshes UNAVAILABLE (the token unspent),
    // /readyz 503; restarted: recovery without a restart.
    ldap.stop();
    let took = within(Duration::from_secs(3), "outage noticed", || async {
        issue(&clients, alice, "changed by ldappasswd").await.code == UNAVAILABLE
    })
    .await;
    eprintln!("slapd stopped -> issue UNAVAILABLE after {took:?}");
    assert_eq!(server.readyz().await, 503);
    assert_eq!(refresh(&clients, &live).await.code, UNAVAILABLE);
    ldap.restart();
    let took = within(Duration::from_secs(5), "recovery", || async {
        issue(&clients, alice, "changed by ldappasswd").await.ok()
    })
    .await;
    eprintln!("slapd restarted -> issue OK after {took:?}");
    assert_eq!(server.readyz().await, 200);
    let after = refresh(&clients, &live).await;
    assert!(after.ok(), "the token held through the outage: {after:?}");
    live = after.decode::<TokenInfo>().refresh_token;

    // Disabled in LDAP: refused at login and at the next refresh.
    disable(&ldap, alice);
    let refused = issue(&clients, alice, "changed by ldappasswd").await;
    assert_eq!(
        refused.reason.as_deref(),
        Some("ERROR_USER_STATUS_CHECK_FAILURE")
    );
    let refused = refresh(&clients, &live).await;
    assert_eq!(
        refused.reason.as_deref(),
        Some("ERROR_USER_STATUS_CHECK_FAILURE")
    );

    assert!(
        server
            .metric("tokengate_directory_connection_losses_total")
            .await
            >= 1.0
    );
    let logs = server.logs();
    for secret in [PASSWORD, "changed by ldappasswd", SERVICE_PASSWORD] {
        assert!(!logs.contains(secret), "{secret} in the server log");
    }
}

/// SPEC §2 issue rule 3 with LDAP: an unknown user (a bind to a DN that
/// does not exist), a wrong password and a disabled user's wrong password
/// cost the same. Prints the medians (BENCHMARKS.md); fails only on a
/// gross difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_wrong_and_disabled_cost_the_same() {
    let ldap = LdapServer::start(PASSWORD);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    let users = ["nobody@example.com", "alice@example.com", "bob@example.com"];
    let mut samples: [Vec<f64>; 3] = Default::default();
    for user in users {
        issue(&clients, user, "wrong").await;
    }
    for _ in 0..40 {
        for (kind, user) in users.iter().enumerate() {
            let started = Instant::now();
            let outcome = issue(&clients, user, "wrong").await;
            samples[kind].push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(
                outcome.reason.as_deref(),
                Some("ERROR_AUTHENTICATION_FAILURE")
            );
        }
    }
    let [unknown, wrong, disabled] = samples.map(|mut s| median(&mut s));
    eprintln!(
        "ldap: median ms unknown {unknown:.2}, wrong password {wrong:.2}, disabled {disabled:.2}"
    );
    let (lo, hi) = (
        unknown.min(wrong).min(disabled),
        unknown.max(wrong).max(disabled),
    );
    assert!(
        hi < lo * 3.0,
        "a path skips the bind: {lo:.2} vs {hi:.2} ms"
    );
}

/// `check-config` binds with the service account: it names the server,
/// and a wrong bind password fails without showing it.
#[test]
fn check_config_binds_with_the_service_account() {
    use tokengate_test_support::ldap_server::ldap_config_toml;
    let ldap = LdapServer::start(PASSWORD);
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, password: &str| {
        std::fs::write(dir.path().join(format!("{name}.pw")), password).expect("password");
        let path = dir.path().join(format!("{name}.toml"));
        let config = format!(
            "directory = \"{}\"\n[keys]\ndir = \"keys\"\n{}",
            ldap.url(),
            ldap_config_toml().replace(
                "[ldap]\n",
                &format!("[ldap]\nbind_password_file = \"{name}.pw\"\n")
            )
        );
        std::fs::write(&path, config).expect("config");
        path
    };
    let good = write("good", SERVICE_PASSWORD);
    let out = tokengate_cli(None, &["check-config", good.to_str().expect("path")], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("directory ldap {}", ldap.url())),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The principals are read as `serve` reads them: alice, bob, robot
    // (users) and root (owner) of domain-a, carol of domain-off.
    assert!(stdout.contains("2 domains, 5 users/owners"), "{stdout}");
    let bad = write("bad", "not-the-Bind-Secret");
    let out = tokengate_cli(None, &["check-config", bad.to_str().expect("path")], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("service bind failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-Bind-Secret"), "{stderr}");
}

/// TLS with rustls, both ways: `ldaps://`, and `ldap://` upgraded with
/// StartTLS. The server's certificate must chain to `ldap.ca_file` (or the
/// system's roots): without the CA the connection is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_verify_the_server_certificate() {
    use tokengate_test_support::ldap_server::ldap_config_toml;
    let ldap = LdapServer::start_tls(PASSWORD);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bind.pw"), SERVICE_PASSWORD).expect("password");
    let write = |name: &str, url: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let section = format!("[ldap]\nbind_password_file = \"bind.pw\"\n{extra}");
        let config = format!(
            "directory = \"{url}\"\n[keys]\ndir = \"keys\"\n{}",
            ldap_config_toml().replace("[ldap]\n", &section)
        );
        std::fs::write(&path, config).expect("config");
        path
    };
    let ca = format!("ca_file = {:?}\n", ldap.ca_file());
    let check = |path: &std::path::Path| {
        let out = tokengate_cli(None, &["check-config", path.to_str().expect("path")], "");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for (name, url, extra) in [
        ("ldaps", ldap.ldaps_url(), ca.clone()),
        ("starttls", ldap.url(), format!("starttls = true\n{ca}")),
    ] {
        let (ok, text) = check(&write(name, &url, &extra));
        assert!(ok, "{name}: {text}");
        let (ok, text) = check(&write(
            &format!("{name}-no-ca"),
            &url,
            &extra.replace(&ca, ""),
        ));
        assert!(
            !ok && text.to_lowercase().contains("certificate"),
            "{name} without the CA: {text}"
        );
    }
    // A login over ldaps.
    let server = TestServer::start_with(ServerOptions {
        extra_config: format!(
            "\n{}",
            ldap_config_toml().replace("[ldap]\n", &format!("[ldap]\n{ca}"))
        ),
        env: [
            default_test_env(),
            vec![
                ("TOKENGATE_DIRECTORY".to_owned(), ldap.ldaps_url()),
                (
                    "TOKENGATE_LDAP_BIND_PASSWORD".to_owned(),
                    SERVICE_PASSWORD.to_owned(),
                ),
            ],
        ]
        .concat(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let login = issue(&clients, "alice@example.com", PASSWORD).await;
    assert!(login.ok(), "{login:?}");
}

/// With the ppolicy overlay the server keeps `pwdChangedTime`: the family
/// outlives other changes to the entry and ends only when the password
/// changes (with `modifyTimestamp` alone, any change would end it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pwd_changed_time_only_a_password_change_ends_the_family() {
    let ldap = LdapServer::start_ppolicy(PASSWORD);
    // ppolicy sets pwdChangedTime when a password is changed (the
    // password modify operation), not on the administrator's add: until
    // its first change an entry falls back to modifyTimestamp.
    ldap.ldappasswd(&user_dn("domain-a", "alice@example.com"), PASSWORD);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    let alice = "alice@example.com";
    let mut token = issue(&clients, alice, PASSWORD)
        .await
        .decode::<TokenInfo>()
        .refresh_token;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ldap.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: description\ndescription: moved desks\n",
        user_dn("domain-a", alice)
    ));
    let kept = refresh(&clients, &token).await;
    assert!(
        kept.ok(),
        "another attribute changed: the family lives on: {kept:?}"
    );
    token = kept.decode::<TokenInfo>().refresh_token;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ldap.ldappasswd(&user_dn("domain-a", alice), "changed under ppolicy");
    let (ended, _) =
        refresh_until_refused(&clients, token, Instant::now(), Duration::from_secs(5)).await;
    assert_eq!(
        ended.reason.as_deref(),
        Some("ERROR_INVALID_REFRESH_TOKEN"),
        "{ended:?}"
    );
}

fn person(uid: &str, password: &str) -> String {
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {password}\n\n",
        user_dn("domain-a", uid)
    )
}

/// Logs `user` in and returns its refresh token.
async fn login(clients: &Clients, user: &str) -> String {
    let outcome = issue(clients, user, PASSWORD).await;
    assert!(outcome.ok(), "{user} logs in: {outcome:?}");
    outcome.decode::<TokenInfo>().refresh_token
}

/// Refreshes `token` (following its successors) until a refresh is
/// refused; returns the refusal and how long after `since` it came.
async fn refresh_until_refused(
    clients: &Clients,
    mut token: String,
    since: Instant,
    limit: Duration,
) -> (Outcome, Duration) {
    loop {
        let outcome = refresh(clients, &token).await;
        if !outcome.ok() {
            return (outcome, since.elapsed());
        }
        assert!(since.elapsed() < limit, "still refreshing after {limit:?}");
        token = outcome.decode::<TokenInfo>().refresh_token;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Refreshes read the principals' snapshot, not the server; a change made
/// on the server — a disable, a password set with `ldappasswd`, a new
/// member of the API-user group, a deleted entry — reaches the next
/// refreshes without any login in between, within a read of changes (the
/// deletion: within a whole read); a user created after the start logs in
/// and refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_read_the_snapshot_and_see_changes_made_on_the_server() {
    let ldap = LdapServer::start(PASSWORD);
    let mut ldif = String::new();
    for uid in ["dave", "erin", "frank", "gina"] {
        ldif.push_str(&person(uid, PASSWORD));
    }
    ldap.ldapadd(&ldif);
    let mut options = ServerOptions::default();
    options.env.push((
        "TOKENGATE_LDAP_FULL_SYNC_INTERVAL_MS".to_owned(),
        "1000".to_owned(),
    ));
    let server = TestServer::start_ldap(&ldap, options);
    let clients = Clients::new(&server).await;

    // Refreshes of a held principal are answered from memory.
    let mut token = login(&clients, "alice@example.com").await;
    let lookups = refresh_times(&server, &clients, &mut token, 5).await;
    assert_eq!(lookups.searched, 0.0, "a refresh searched");
    assert!(lookups.from_snapshot >= 5.0, "{lookups:?}");
    assert!(server.metric("tokengate_directory_principals").await >= 8.0);

    let tokens = [
        login(&clients, "dave").await,
        login(&clients, "erin").await,
        login(&clients, "frank").await,
        login(&clients, "gina").await,
    ];
    // modifyTimestamp counts seconds: change the entries in a later second
    // than their creation, so the password change is seen as one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = Instant::now();
    disable(&ldap, "dave");
    ldap.ldappasswd(&user_dn("domain-a", "erin"), "set by ldappasswd");
    ldap.ldapdelete(&user_dn("domain-a", "frank"));
    ldap.ldapmodify(&format!(
        "dn: cn=api-users,ou=domain-a,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: {}\n",
        user_dn("domain-a", "gina")
    ));
    let [dave, erin, frank, gina] = tokens;
    let limit = Duration::from_secs(5);
    for (who, token, reason) in [
        ("dave (disabled)", dave, "ERROR_USER_STATUS_CHECK_FAILURE"),
        ("erin (password set)", erin, "ERROR_INVALID_REFRESH_TOKEN"),
        ("frank (deleted)", frank, "ERROR_NOT_FOUND"),
        ("gina (API user)", gina, "ERROR_USER_STATUS_CHECK_FAILURE"),
    ] {
        let (outcome, after) = refresh_until_refused(&clients, token, changed, limit).await;
        assert_eq!(
            outcome.reason.as_deref(),
            Some(reason),
            "{who}: {outcome:?}"
        );
        eprintln!("{who}: refused {after:?} after the change");
    }

    // A user created after the last read: found by a search, then held.
    ldap.ldapadd(&person("harry", PASSWORD));
    let harry = login(&clients, "harry").await;
    let outcome = refresh(&clients, &harry).await;
    assert!(outcome.ok(), "{outcome:?}");
}

/// A whole read pages through a subtree larger than slapd's default size
/// limit (500): every principal is held, and a refresh of the last one
/// added is answered from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_read_pages_through_more_entries_than_the_size_limit() {
    const USERS: usize = 1_200;
    let ldap = LdapServer::start(PASSWORD);
    let ldif: String = (0..USERS)
        .map(|n| person(&format!("user-{n:04}"), PASSWORD))
        .collect();
    ldap.ldapadd(&ldif);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    assert!(
        server.metric("tokengate_directory_principals").await >= USERS as f64,
        "not every principal read"
    );
    let last = format!("user-{:04}", USERS - 1);
    let mut token = login(&clients, &last).await;
    let lookups = refresh_times(&server, &clients, &mut token, 1).await;
    assert_eq!(lookups.searched, 0.0, "{lookups:?}");
}

/// Logins bind on kept connections (`ldap.bind_pool_size`): twenty
/// logins in a row open one; after slapd restarts, the first login's kept
/// connection is dead, and it binds again on a new one instead of
/// answering UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_bind_on_kept_connections_and_survive_a_restart() {
    let mut ldap = LdapServer::start(PASSWORD);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    for n in 0..20 {
        let password = if n % 2 == 0 { PASSWORD } else { "wrong" };
        let outcome = issue(&clients, "alice@example.com", password).await;
        assert_eq!(outcome.ok(), n % 2 == 0, "{outcome:?}");
    }
    let opened = server
        .metric("tokengate_directory_bind_connections_opened_total")
        .await;
    assert!(
        (1.0..=2.0).contains(&opened),
        "{opened} connections for 20 logins"
    );

    ldap.stop();
    ldap.restart();
    within(Duration::from_secs(5), "ready again", || async {
        server.readyz().await == 200
    })
    .await;
    let outcome = issue(&clients, "alice@example.com", PASSWORD).await;
    assert!(
        outcome.ok(),
        "the first login after the restart: {outcome:?}"
    );
}

/// A `user_filter` whose `{user}` is not a whole value cannot be read
/// ahead: its principals are searched for at every refresh, so a disable
/// reaches the very next one (and never a stale copy a login left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_cannot_be_read_ahead_searches_at_every_refresh() {
    let ldap = LdapServer::start(PASSWORD);
    let mut options = ServerOptions::default();
    options.env.push((
        "TOKENGATE_LDAP_USER_FILTER".to_owned(),
        "(&(objectClass=inetOrgPerson)(uid={user})(!(description=not-{user})))".to_owned(),
    ));
    let server = TestServer::start_ldap(&ldap, options);
    let clients = Clients::new(&server).await;
    let mut token = login(&clients, "alice@example.com").await;
    let lookups = refresh_times(&server, &clients, &mut token, 3).await;
    assert_eq!(lookups.searched, 3.0, "every refresh searched");
    disable(&ldap, "alice@example.com");
    let refused = refresh(&clients, &token).await;
    assert_eq!(
        refused.reason.as_deref(),
        Some("ERROR_USER_STATUS_CHECK_FAILURE"),
        "{refused:?}"
    );
    assert!(server.logs().contains("cannot be read ahead"));
}
