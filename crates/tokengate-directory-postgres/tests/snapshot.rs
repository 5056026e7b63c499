//! The snapshot against a real PostgreSQL (a private server the test
//! starts): migrations are idempotent, every column reaches the
//! `Directory`, a row with an unusable hash is left out without stopping
//! the rest, and how long a full resync of 10,000 principals takes
//! (printed; BENCHMARKS.md).

use std::time::Instant;

use tokengate_directory::{DomainState, PrincipalKind, PrincipalState, UserType, hash_bcrypt};
use tokengate_directory_postgres::{PostgresSettings, admin, connect, schema, snapshot};
use tokengate_test_support::postgres_server::{PASSWORD, PostgresServer};

fn settings(server: &PostgresServer) -> PostgresSettings {
    PostgresSettings {
        password: Some(PASSWORD.to_owned()),
        ..PostgresSettings::new(server.url())
    }
}

#[tokio::test]
async fn migrations_rows_and_resync_cost() {
    let server = PostgresServer::start();
    let mut client = connect(&settings(&server)).await.expect("connect");
    assert_eq!(schema::schema_version(&client).await.expect("version"), 0);
    assert!(schema::check_schema(&client).await.is_err());
    assert_eq!(
        schema::migrate(&mut client).await.expect("migrate").len(),
        schema::MIGRATIONS.len()
    );
    assert!(
        schema::migrate(&mut client)
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(
        schema::check_schema(&client).await.expect("checked"),
        schema::SCHEMA_VERSION
    );

    let hash = hash_bcrypt("pw", 4).expect("hash");
    server.psql(&format!(
        "INSERT INTO tokengate.domains VALUES ('d1', 'ENABLED'), ('d2', 'DISABLED');
         INSERT INTO tokengate.users (domain_id, user_id, password_hash, state, user_type, required_actions)
           VALUES ('d1', 'alice', '{hash}', 'ENABLED', 'USER', '{{UPDATE_PASSWORD}}'),
                  ('d1', 'robot', '{hash}', 'PENDING', 'API_USER', '{{}}'),
                  ('d1', 'broken', 'not-a-hash', 'ENABLED', 'USER', '{{}}');
         INSERT INTO tokengate.owners (domain_id, owner_id, password_hash) VALUES ('d1', 'root', '{hash}');"
    ));
    let directory = snapshot::load(&mut client, None).await.expect("load");
    let d1 = directory.domain("d1").expect("d1");
    let alice = d1.principal(PrincipalKind::User, "alice").expect("alice");
    assert_eq!(alice.required_actions, vec!["UPDATE_PASSWORD"]);
    assert!(alice.password_hash.verify("pw"));
    let robot = d1.principal(PrincipalKind::User, "robot").expect("robot");
    assert_eq!(
        (robot.state, robot.user_type),
        (PrincipalState::Pending, UserType::ApiUser)
    );
    assert!(
        d1.principal(PrincipalKind::User, "broken").is_none(),
        "unusable hash left out"
    );
    assert!(d1.principal(PrincipalKind::DomainOwner, "root").is_some());
    assert_eq!(
        directory.domain("d2").expect("d2").state,
        DomainState::Disabled
    );
    // Removing a domain removes its principals (ON DELETE CASCADE).
    server.psql("DELETE FROM tokengate.domains WHERE domain_id = 'd2'");

    // 10,000 users: the cost of one full resync (the dummy hash kept).
    server.psql(&format!(
        "INSERT INTO tokengate.users (domain_id, user_id, password_hash)
           SELECT 'd1', 'user-' || i || '@example.com', '{hash}' FROM generate_series(1, 10000) i"
    ));
    let mut previous = snapshot::load(&mut client, None).await.expect("load");
    assert_eq!(previous.principal_count(), 10_003);
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let next = snapshot::load(&mut client, Some(&previous))
            .await
            .expect("load");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        previous = next;
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "full resync of {} principals: median {:.1} ms (min {:.1}, max {:.1})",
        previous.principal_count(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}

/// Schema version 2: an EXTERNAL user (SpaceONE's) and an API user have no
/// password_hash and reach the snapshot without a usable one; any other
/// user without a hash, or an EXTERNAL one with a hash, is refused by the
/// table itself.
#[tokio::test]
async fn external_and_passwordless_rows() {
    let server = PostgresServer::start();
    let mut client = connect(&settings(&server)).await.expect("connect");
    schema::migrate(&mut client).await.expect("migrate");
    let hash = hash_bcrypt("pw", 4).expect("hash");
    server.psql(&format!(
        "INSERT INTO tokengate.domains VALUES ('d1', 'ENABLED');
         INSERT INTO tokengate.users (domain_id, user_id, password_hash, user_type, backend)
           VALUES ('d1', 'alice', '{hash}', 'USER', 'LOCAL'),
                  ('d1', 'sso', NULL, 'USER', 'EXTERNAL'),
                  ('d1', 'robot', NULL, 'API_USER', 'LOCAL');"
    ));
    for refused in [
        "INSERT INTO tokengate.users (domain_id, user_id, password_hash) VALUES ('d1', 'nohash', NULL)"
            .to_owned(),
        format!(
            "INSERT INTO tokengate.users (domain_id, user_id, password_hash, backend) \
             VALUES ('d1', 'both', '{hash}', 'EXTERNAL')"
        ),
        "INSERT INTO tokengate.users (domain_id, user_id, password_hash, backend) \
         VALUES ('d1', 'ldap', NULL, 'LDAP')"
            .to_owned(),
    ] {
        assert!(server.try_psql(&refused).is_err(), "accepted: {refused}");
    }
    let directory = snapshot::load(&mut client, None).await.expect("load");
    let d1 = directory.domain("d1").expect("d1");
    assert!(
        d1.principal(PrincipalKind::User, "alice")
            .expect("alice")
            .password_hash
            .verify("pw")
    );
    for id in ["sso", "robot"] {
        let p = d1.principal(PrincipalKind::User, id).expect(id);
        assert_eq!(
            p.password_hash.profile(),
            &tokengate_directory::HashProfile::External,
            "{id}"
        );
    }
    // `tokengate user set-password` gives the EXTERNAL user a password of
    // its own: it becomes LOCAL.
    admin::set_password_hash(&client, admin::PrincipalTable::User, "d1", "sso", &hash)
        .await
        .expect("set-password");
    let directory = snapshot::load(&mut client, None).await.expect("load");
    let sso = directory
        .domain("d1")
        .and_then(|d| d.principal(PrincipalKind::User, "sso"))
        .expect("sso");
    assert!(sso.password_hash.verify("pw"));
}
