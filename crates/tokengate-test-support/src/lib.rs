//! What the workspace's integration tests share, one module per concept:
//!
//! - [`certs`]: a private CA and server certificate (openssl) for TLS tests;
//! - [`ids`]: unique names and the wall clock, so tests sharing a store
//!   never see each other's data;
//! - [`ports`]: a free port (only for servers that cannot bind port 0 and
//!   report it) and connections from a chosen source address;
//! - [`redis_server`]: private `redis-server` processes and a three-master
//!   Redis Cluster, per test or shared by a whole test binary;
//! - [`redis_sentinel`]: a master with replicas behind Redis Sentinel, for
//!   failover tests;
//! - [`ldap_server`]: private `slapd` servers loaded with the conformance
//!   directory, for the LDAP directory;
//! - [`postgres_server`]: private PostgreSQL servers (Debian's binaries,
//!   `initdb` in a temporary folder) for the PostgreSQL directory;
//! - [`slot_migration`]: moving one slot of a [`redis_server::RedisCluster`]
//!   to another master step by step, so a test can run load meanwhile;
//! - [`stats`]: the median and Mann–Whitney z the timing tests compare;
//! - [`locate`]: the repository root and the `tokengate` binary under test;
//! - [`dev_server`]: `tokengate serve` in dev mode, read back from its
//!   banner;
//! - [`test_server`] (feature `server`): `tokengate serve` with a test
//!   config and directory, on a port it picks itself;
//! - [`clients`] (feature `server`): one client per protocol (native gRPC,
//!   gRPC-Web binary and text over HTTP/1.1 and HTTP/2, REST), each call
//!   reduced to a protocol-independent [`clients::Outcome`];
//! - [`calls`] (feature `server`): the requests the tests send, built once
//!   for every protocol.
//!
//! [`prelude`] gathers what the root crate's tests use most.
//!
//! Every server a test starts is stopped when its guard drops (a panicking
//! test included); the shared Redis servers are stopped when the test
//! process exits.
#![warn(missing_docs)]

pub mod certs;
pub mod dev_server;
pub mod ids;
pub mod ldap_server;
pub mod locate;
pub mod ports;
pub mod postgres_server;
mod process;
pub mod redis_sentinel;
pub mod redis_server;
pub mod slot_migration;
pub mod stats;
#[cfg(feature = "server")]
pub mod wait;
mod watchdog;

#[cfg(feature = "server")]
pub mod calls;
#[cfg(feature = "server")]
pub mod clients;
#[cfg(feature = "server")]
pub mod test_server;

/// The helpers most tests of the root crate use, for a glob import.
pub mod prelude {
    pub use crate::ldap_server::LdapServer;
    pub use crate::locate::repo_root;
    pub use crate::ports::{connect_from, free_port};
    pub use crate::postgres_server::PostgresServer;
    pub use crate::stats::{mann_whitney_z, median};
    #[cfg(feature = "server")]
    pub use crate::wait::within;

    #[cfg(feature = "server")]
    pub use crate::calls::{
        AuthenticationRequest, AuthenticationResponse, Call, EndSessionsResponse,
        INTROSPECTION_CLIENT, IntrospectResponse, IssueTokenRequest, ListSessionsResponse,
        SessionInfo, TokenInfo, basic_auth, end_others_call, end_session_call, introspect_call,
        introspection_basic, introspection_config, issue_call, issue_request, list_sessions_call,
        login_call, public_key_call, refresh_call, revoke_call, revoke_user_call,
    };
    #[cfg(feature = "server")]
    pub use crate::clients::{
        ALL_PROTOCOLS, Clients, Outcome, Proto, RawCodec, frame, grpc, grpc_web,
        reason_from_details, rest, rest_outcome,
    };
    #[cfg(feature = "server")]
    pub use crate::test_server::{
        PASSWORD, ServerOptions, TestServer, default_test_env, directory_sql, directory_toml,
        postgres_cli_config, tokengate_cli,
    };
}
