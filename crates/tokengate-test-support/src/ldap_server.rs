//! Private LDAP servers: each [`LdapServer`] is Debian's `slapd` on a free
//! port of 127.0.0.1 (never the machine's 389), configured by a generated
//! `slapd.conf` (an mdb database under `dc=example,dc=com` in a temporary
//! folder) and loaded with [`directory_ldif`]: the conformance directory
//! (two domains as subtrees; alice, a disabled bob, an API user robot in
//! the group `api-users`, an owner root; carol in the disabled domain)
//! and a service account for tokengate. Killed on drop, with a watchdog
//! like the other servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{ManagedProcess, NotReady};

/// The base of the tree.
pub const SUFFIX: &str = "dc=example,dc=com";
/// The administrator (`rootdn`).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// Its password.
pub const ADMIN_PASSWORD: &str = "ldap-Admin-7788";
/// The service account tokengate searches with.
pub const SERVICE_DN: &str = "cn=tokengate,ou=services,dc=example,dc=com";
/// Its password.
pub const SERVICE_PASSWORD: &str = "ldap-Service-3344";

/// The DN of a user of `domain`.
pub fn user_dn(domain: &str, user: &str) -> String {
    format!("uid={user},ou=people,ou={domain},{SUFFIX}")
}

/// The tree: service account, domains, users, owner, API-user group. Every
/// principal's password is `password`.
pub fn directory_ldif(password: &str) -> String {
    let person = |domain: &str, uid: &str, extra: &str| {
        format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {password}\n{extra}\n",
            user_dn(domain, uid)
        )
    };
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: tokengate\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    for domain in ["domain-a", "domain-off"] {
        ldif.push_str(&format!(
            "dn: ou={domain},{SUFFIX}\nobjectClass: organizationalUnit\nou: {domain}\n\n\
             dn: ou=people,ou={domain},{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
        ));
    }
    ldif.push_str(&person("domain-a", "alice@example.com", ""));
    ldif.push_str(&person(
        "domain-a",
        "bob@example.com",
        "employeeType: DISABLED\n",
    ));
    ldif.push_str(&person("domain-a", "robot", ""));
    ldif.push_str(&person("domain-a", "root", "title: owner\n"));
    ldif.push_str(&person("domain-off", "carol@example.com", ""));
    ldif.push_str(&format!(
        "dn: cn=api-users,ou=domain-a,{SUFFIX}\nobjectClass: groupOfNames\ncn: api-users\nmember: {}\n\n",
        user_dn("domain-a", "robot")
    ));
    ldif
}

/// The `[ldap]` section that reads [`directory_ldif`]'s tree (the bind
/// password comes from `TOKENGATE_LDAP_BIND_PASSWORD`); the principals'
/// snapshot reads changes every 250 ms (the default is 1 s), so the tests
/// that change entries wait less.
pub fn ldap_config_toml() -> String {
    format!(
        r#"[ldap]
bind_dn = "{SERVICE_DN}"
timeout_ms = 1000
health_interval_ms = 500
sync_interval_ms = 250
user_filter = "(&(objectClass=inetOrgPerson)(uid={{user}})(!(title=owner)))"
owner_filter = "(&(objectClass=inetOrgPerson)(uid={{user}})(title=owner))"
disabled_attribute = "employeeType"
disabled_values = ["DISABLED"]
api_user_group = "cn=api-users,ou=domain-a,{SUFFIX}"

[[ldap.domain]]
domain_id = "domain-a"
base_dn = "ou=domain-a,{SUFFIX}"

[[ldap.domain]]
domain_id = "domain-off"
base_dn = "ou=domain-off,{SUFFIX}"
state = "DISABLED"
"#
    )
}

fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin"] {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "`{name}` not found: the LDAP directory tests start their own slapd \
         (`apt-get install slapd ldap-utils`)"
    )
}

/// One `slapd` on 127.0.0.1, killed on drop.
pub struct LdapServer {
    /// The process and its watchdog. Declared before `dir`: fields drop in
    /// order, and the server must be gone before its folder is removed.
    process: ManagedProcess,
    /// Its port.
    pub port: u16,
    /// Its `ldaps://` port ([`Self::start_tls`] only).
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
}

impl LdapServer {
    /// A server on a free port, loaded with [`directory_ldif`] where every
    /// principal's password is `password`.
    pub fn start(password: &str) -> Self {
        Self::start_with(password, false, false)
    }

    /// The same with the ppolicy overlay and a default policy on
    /// `userPassword`: the server keeps `pwdChangedTime`, set when a
    /// password is changed (`ldappasswd`; not on the LDIF's add) and by
    /// nothing else.
    pub fn start_ppolicy(password: &str) -> Self {
        Self::start_with(password, false, true)
    }

    /// The same, also with TLS: StartTLS on [`Self::url`] and `ldaps://`
    /// on [`Self::ldaps_url`], with a certificate for 127.0.0.1 from a
    /// private CA ([`Self::ca_file`]).
    pub fn start_tls(password: &str) -> Self {
        Self::start_with(password, true, false)
    }

    /// The private CA of a [`Self::start_tls`] server.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `ldaps://127.0.0.1:<tls_port>`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.unwrap_or(0))
    }

    fn start_with(password: &str, tls: bool, ppolicy: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("data")).expect("data folder");
        let d = dir.path().display();
        let tls_config = if tls {
            crate::certs::make_certificates(dir.path(), None);
            format!(
                "TLSCACertificateFile {d}/ca.crt\nTLSCertificateFile {d}/server.crt\nTLSCertificateKeyFile {d}/server.key\n"
            )
        } else {
            String::new()
        };
        let (ppolicy_module, ppolicy_overlay) = if ppolicy {
            (
                "moduleload ppolicy\n".to_owned(),
                format!("overlay ppolicy\nppolicy_default \"cn=default,ou=policies,{SUFFIX}\"\n"),
            )
        } else {
            (String::new(), String::new())
        };
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             {tls_config}\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             {ppolicy_module}\
             pidfile {d}/slapd.pid\n\
             argsfile {d}/slapd.args\n\
             database mdb\n\
             maxsize 104857600\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {d}/data\n\
             limits dn.exact=\"{SERVICE_DN}\" size.prtotal=unlimited\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by * read\n\
             {ppolicy_overlay}"
        );
        std::fs::write(dir.path().join("slapd.conf"), config).expect("slapd.conf");
        let mut server = Self {
            process: ManagedProcess::new("slapd"),
            port: 0,
            tls_port: None,
            dir,
        };
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            server.tls_port = tls.then(free_port);
            match server.spawn() {
                Ok(()) => {
                    let mut ldif = directory_ldif(password);
                    if ppolicy {
                        // The policy first: ppolicy sets pwdChangedTime on
                        // the entries added after it.
                        let after_suffix = ldif.find("\n\n").map_or(0, |i| i + 2);
                        ldif.insert_str(after_suffix, &format!(
                            "dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n\n\
                             dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: pwdPolicy\nobjectClass: organizationalRole\ncn: default\npwdAttribute: userPassword\n\n"
                        ));
                    }
                    server.ldapadd(&ldif);
                    return server;
                }
                Err(e) => last = e,
            }
        }
        panic!("could not start slapd: {last}");
    }

    /// `ldap://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The environment that points `tokengate serve` at this server
    /// (with [`ldap_config_toml`] in its config).
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![
            ("TOKENGATE_DIRECTORY".to_owned(), self.url()),
            (
                "TOKENGATE_LDAP_BIND_PASSWORD".to_owned(),
                SERVICE_PASSWORD.to_owned(),
            ),
        ]
    }

    /// Starts slapd (and its watchdog) on `self.port` and waits until it
    /// answers a search; on failure it is stopped again, with the reason
    /// and its log.
    fn spawn(&mut self) -> Result<(), String> {
        let (dir, port, tls_port) = (self.dir.path(), self.port, self.tls_port);
        launch(&mut self.process, dir, port, tls_port).map_err(|e| self.not_ready(e))
    }

    fn not_ready(&self, why: NotReady) -> String {
        match why {
            NotReady::Exited(status) => format!("slapd exited ({status}): {}", self.log()),
            NotReady::TimedOut => format!("slapd did not answer: {}", self.log()),
        }
    }

    /// What slapd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    fn admin_tool(&self, tool: &str, args: &[&str], stdin: &str) {
        use std::io::Write as _;
        let mut child = Command::new(binary(tool))
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ldap tool");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("ldap tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds entries (LDIF on stdin of `ldapadd`, as the administrator).
    pub fn ldapadd(&self, ldif: &str) {
        self.admin_tool("ldapadd", &[], ldif);
    }

    /// Modifies entries (LDIF of changes, `ldapmodify`).
    pub fn ldapmodify(&self, ldif: &str) {
        self.admin_tool("ldapmodify", &[], ldif);
    }

    /// Deletes the entry `dn` (`ldapdelete`).
    pub fn ldapdelete(&self, dn: &str) {
        self.admin_tool("ldapdelete", &[dn], "");
    }

    /// Sets `dn`'s password with `ldappasswd` (stored hashed by slapd).
    pub fn ldappasswd(&self, dn: &str, password: &str) {
        self.admin_tool("ldappasswd", &["-s", password, dn], "");
    }

    /// Stops slapd (the port stops accepting).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts slapd again on the same port, with its data.
    pub fn restart(&mut self) {
        let (dir, port, tls_port) = (self.dir.path(), self.port, self.tls_port);
        let restarted = self.process.restart(
            Duration::from_secs(10),
            Duration::from_millis(200),
            |process| launch(process, dir, port, tls_port),
        );
        if let Err(e) = restarted {
            panic!("slapd restart failed: {}", self.not_ready(e));
        }
    }
}

/// Starts slapd from `dir` on `port` (and `tls_port`) under `process` and
/// waits until it answers; a free function so that [`LdapServer::restart`]
/// can call it while its `process` is borrowed.
fn launch(
    process: &mut ManagedProcess,
    dir: &Path,
    port: u16,
    tls_port: Option<u16>,
) -> Result<(), NotReady> {
    process.start(
        &mut slapd_command(dir, port, tls_port),
        dir,
        Duration::from_secs(10),
        Duration::from_millis(50),
        || answers(port),
    )
}

/// `slapd` with the config in `dir`, in the foreground (`-d 0`: no debug
/// output, but it does not detach, so the child is the server), its
/// messages appended to `slapd.log`.
fn slapd_command(dir: &Path, port: u16, tls_port: Option<u16>) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("slapd.log"))
        .expect("slapd log");
    let mut listeners = format!("ldap://127.0.0.1:{port}/");
    if let Some(tls_port) = tls_port {
        listeners.push_str(&format!(" ldaps://127.0.0.1:{tls_port}/"));
    }
    let mut command = Command::new(binary("slapd"));
    command
        .arg("-f")
        .arg(dir.join("slapd.conf"))
        .args(["-h", &listeners])
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    command
}

/// Whether slapd on `port` answers an anonymous search of the root DSE.
fn answers(port: u16) -> bool {
    let probe = Command::new(binary("ldapsearch"))
        .args([
            "-x",
            "-H",
            &format!("ldap://127.0.0.1:{port}"),
            "-b",
            "",
            "-s",
            "base",
            "-o",
            "nettimeout=1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    probe.is_ok_and(|s| s.success())
}
