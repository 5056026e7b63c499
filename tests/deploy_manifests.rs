//! The Kubernetes manifests (deploy/kubernetes) against the binary they run.
//!
//! There is no cluster here, so this reads what `bash deploy/check.sh`
//! rendered with kustomize into target/deploy-rendered/ (as JSON) and checks
//! it against the binary: the port it listens on, the probe paths it serves,
//! the config keys it reads, the file layout it expects its directory and
//! keys in. Then it plays the kubelet: it lays out the pod's volumes from the
//! rendered ConfigMap and the Secrets `secrets.sh` makes (the same symlink
//! layout the kubelet writes), starts the binary from the image's entrypoint
//! with the pod's arguments and environment (as the pod's non-root user when
//! the test runs as root), probes it, rotates a key the way a Secret update
//! does, revokes through `kubectl exec`, and terminates it the way the
//! kubelet does (preStop pause, then SIGTERM) while it is under load.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::{Buf as _, Bytes};
use prost::Message as _;
use serde_json::{Value, json};
use tokengate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
use tokengate::transport::http_endpoints::PATHS;
use tokengate_config::Config;
use tokengate_test_support::redis_server::RedisServer;
use tokengate_test_support::test_server::listen_address;

const OVERLAYS: [&str; 2] = ["dev", "production"];
const GET_PUBLIC_KEY: &str = "/spaceone.api.identity.v1.Domain/get_public_key";
const DEV_DOMAIN: &str = "domain-dev";

// ---------------------------------------------------------------------------
// The rendered manifests
// ---------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rendered_dir() -> PathBuf {
    std::env::var_os("TOKENGATE_DEPLOY_RENDERED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/deploy-rendered"))
}

/// A JSON file of the rendering; fails with how to make it when missing or
/// when deploy/kubernetes changed since it was rendered.
fn rendered_json(name: &str) -> Vec<Value> {
    check_fresh();
    let path = rendered_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nThe rendered manifests are missing: run `bash deploy/check.sh --render-only` \
             (or the whole `bash deploy/check.sh`) first.",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("rendered JSON")
}

/// Whether target/deploy-rendered matches deploy/kubernetes.
fn freshness() -> Result<(), String> {
    let path = rendered_dir().join("sources.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Err(format!(
            "{} is missing: the manifests were never rendered. Run \
                 `bash deploy/check.sh --render-only` (or the whole `bash deploy/check.sh`) first.",
            path.display()
        ));
    };
    let snapshot: BTreeMap<String, String> = serde_json::from_str(&text).expect("sources");
    let root = repo().join("deploy/kubernetes");
    let mut now = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(&root)
                    .expect("inside")
                    .display()
                    .to_string();
                now.insert(rel, std::fs::read_to_string(&path).expect("source file"));
            }
        }
    }
    if now == snapshot {
        Ok(())
    } else {
        let changed: Vec<_> = now
            .keys()
            .chain(snapshot.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| now.get(*k) != snapshot.get(*k))
            .collect();
        Err(format!(
            "deploy/kubernetes changed since it was rendered ({changed:?}): run \
                 `bash deploy/check.sh --render-only` again."
        ))
    }
}

/// Renders the manifests when they are missing or stale, so a plain
/// `cargo test` works on a fresh clone (it installs the pinned tools into a
/// cache on first use: see deploy/check.sh).
fn check_fresh() {
    static FRESH: OnceLock<Result<(), String>> = OnceLock::new();
    let verdict = FRESH.get_or_init(|| {
        let Err(first) = freshness() else {
            return Ok(());
        };
        eprintln!("{first}\nrendering with `bash deploy/check.sh --render-only` ...");
        let out = std::process::Command::new("bash")
            .args(["deploy/check.sh", "--render-only"])
            .current_dir(repo())
            .output()
            .map_err(|e| format!("cannot run deploy/check.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`bash deploy/check.sh --render-only` failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        freshness()
    });
    if let Err(message) = verdict {
        panic!("{message}");
    }
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().expect("metadata.name")
}

/// The object of `kind` called `name`, or whose generated name is
/// `name-<hash>` (kustomize generators).
fn object<'a>(objects: &'a [Value], kind_name: &str, wanted: &str) -> &'a Value {
    find_object(objects, kind_name, wanted)
        .unwrap_or_else(|| panic!("no {kind_name} {wanted} in the rendering"))
}

fn find_object<'a>(objects: &'a [Value], kind_name: &str, wanted: &str) -> Option<&'a Value> {
    kind(objects, kind_name).into_iter().find(|o| {
        let n = name(o);
        n == wanted
            || n.strip_prefix(wanted)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| {
                    hash.len() == 10 && hash.chars().all(|c| c.is_ascii_alphanumeric())
                })
    })
}

fn tokengate_deployment(objects: &[Value]) -> &Value {
    object(objects, "Deployment", "tokengate")
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn container<'a>(deployment: &'a Value, wanted: &str) -> &'a Value {
    pod_spec(deployment)["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == wanted)
        .unwrap_or_else(|| panic!("no container {wanted}"))
}

fn list(value: &Value) -> Vec<&Value> {
    value
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn as_u64(value: &Value, what: &str) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("{what}: {value}"))
}

fn container_port(container: &Value, port_name: &str) -> u64 {
    let port = list(&container["ports"])
        .into_iter()
        .find(|p| p["name"] == port_name)
        .unwrap_or_else(|| panic!("no port named {port_name}"));
    as_u64(&port["containerPort"], "containerPort")
}

/// A probe's port: a number, or the name of a container port.
fn resolve_port(container: &Value, port: &Value) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().expect("port"),
        Value::String(s) => container_port(container, s),
        other => panic!("port {other}"),
    }
}

/// Secrets `secrets.sh apply --dry-run` made for the dev workspace.
fn dev_secrets() -> Vec<Value> {
    rendered_json("dev-secrets")
}

fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_object() {
        for (k, v) in data {
            out.insert(
                k.clone(),
                STANDARD
                    .decode(v.as_str().expect("base64"))
                    .expect("base64"),
            );
        }
    }
    if let Some(data) = secret["stringData"].as_object() {
        for (k, v) in data {
            out.insert(k.clone(), v.as_str().expect("text").as_bytes().to_vec());
        }
    }
    out
}

/// The config file of the ConfigMap a pod mounts at TOKENGATE_CONFIG's folder.
fn config_text(objects: &[Value]) -> String {
    let deployment = tokengate_deployment(objects);
    let c = container(deployment, "tokengate");
    let config_path = env_value(c, "TOKENGATE_CONFIG").expect("TOKENGATE_CONFIG is set");
    let (mount, volume) = mount_of(deployment, c, &config_path);
    let map_name = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{config_path} is not on a ConfigMap volume"));
    let map = object(objects, "ConfigMap", map_name);
    let key = Path::new(&config_path)
        .strip_prefix(mount)
        .expect("under the mount")
        .to_str()
        .expect("utf-8");
    map["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {map_name} has no key {key}"))
        .to_owned()
}

fn env_value(container: &Value, var: &str) -> Option<String> {
    list(&container["env"])
        .into_iter()
        .find(|e| e["name"] == var)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// The volume mount (longest mountPath prefix) holding `path`, and its volume.
fn mount_of<'a>(deployment: &'a Value, container: &'a Value, path: &str) -> (&'a str, &'a Value) {
    let mount = list(&container["volumeMounts"])
        .into_iter()
        .filter(|m| {
            let mount_path = m["mountPath"].as_str().expect("mountPath");
            Path::new(path).starts_with(mount_path)
        })
        .max_by_key(|m| m["mountPath"].as_str().expect("mountPath").len())
        .unwrap_or_else(|| panic!("{path} is on no volume mount"));
    let volume = list(&pod_spec(deployment)["volumes"])
        .into_iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
    (mount["mountPath"].as_str().expect("mountPath"), volume)
}

/// The environment the kubelet gives the container: its `env` (values, and
/// Secret/ConfigMap references resolved from `objects` and `secrets`;
/// Secrets created by hand in production get `placeholders`), plus the
/// Service link variables when `enableServiceLinks` is not false, exactly
/// as the kubelet names them.
fn pod_env(
    objects: &[Value],
    secrets: &[Value],
    deployment: &Value,
    placeholders: &BTreeMap<&str, &str>,
) -> Vec<(String, String)> {
    let c = container(deployment, "tokengate");
    let mut env = Vec::new();
    if pod_spec(deployment)["enableServiceLinks"] != false {
        for service in kind(objects, "Service") {
            let prefix = name(service).to_ascii_uppercase().replace('-', "_");
            for port in list(&service["spec"]["ports"]) {
                let number = as_u64(&port["port"], "port");
                env.push((format!("{prefix}_SERVICE_HOST"), "10.96.0.10".to_owned()));
                env.push((format!("{prefix}_SERVICE_PORT"), number.to_string()));
                env.push((
                    format!("{prefix}_PORT"),
                    format!("tcp://10.96.0.10:{number}"),
                ));
                env.push((
                    format!("{prefix}_PORT_{number}_TCP_ADDR"),
                    "10.96.0.10".to_owned(),
                ));
            }
        }
    }
    for entry in list(&c["env"]) {
        let var = entry["name"].as_str().expect("env name").to_owned();
        if let Some(value) = entry["value"].as_str() {
            env.push((var, value.to_owned()));
            continue;
        }
        let reference = &entry["valueFrom"]["secretKeyRef"];
        let secret_name = reference["name"]
            .as_str()
            .expect("only secretKeyRef is used");
        let key = reference["key"].as_str().expect("key");
        let value = find_object(objects, "Secret", secret_name)
            .or_else(|| find_object(secrets, "Secret", secret_name))
            .map(|s| {
                String::from_utf8(
                    secret_data(s)
                        .remove(key)
                        .unwrap_or_else(|| panic!("Secret {secret_name} has no key {key}")),
                )
                .expect("utf-8")
            })
            .or_else(|| placeholders.get(secret_name).map(|v| (*v).to_owned()))
            .unwrap_or_else(|| panic!("nothing provides the Secret {secret_name}"));
        env.push((var, value));
    }
    env
}

/// The config the binary builds from the rendered ConfigMap and the pod's
/// environment (unknown keys and bad values fail here as they would at start).
fn effective_config(objects: &[Value], env: &[(String, String)]) -> Config {
    Config::from_toml(&config_text(objects), Path::new("/"), env.to_vec())
        .unwrap_or_else(|e| panic!("the rendered config does not load: {e}"))
}

fn production_placeholders() -> BTreeMap<&'static str, &'static str> {
    // Created by the operator (deploy/README.md); a valid example value.
    BTreeMap::from([(
        "tokengate-redis",
        "rediss://:<password>@redis.example.invalid:6380/0",
    )])
}

fn overlay_env(overlay: &str, objects: &[Value]) -> Vec<(String, String)> {
    let secrets = if overlay == "dev" {
        dev_secrets()
    } else {
        Vec::new()
    };
    pod_env(
        objects,
        &secrets,
        tokengate_deployment(objects),
        &production_placeholders(),
    )
}

// ---------------------------------------------------------------------------
// Static checks
// ---------------------------------------------------------------------------

#[test]
fn every_overlay_has_what_an_operator_needs() {
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        let namespaces = kind(&objects, "Namespace");
        assert_eq!(namespaces.len(), 1, "{overlay}: one Namespace");
        let namespace = name(namespaces[0]).to_owned();
        for (k, n) in [
            ("ServiceAccount", "tokengate"),
            ("ConfigMap", "tokengate-config"),
            ("Service", "tokengate"),
            ("Deployment", "tokengate"),
            ("PodDisruptionBudget", "tokengate"),
            ("HorizontalPodAutoscaler", "tokengate"),
            ("NetworkPolicy", "tokengate"),
            ("NetworkPolicy", "tokengate-egress-redis"),
        ] {
            let found = object(&objects, k, n);
            assert_eq!(
                found["metadata"]["namespace"], namespace,
                "{overlay}: {k} {n} is in the overlay's namespace"
            );
        }
        let ns = object(&objects, "Namespace", &namespace);
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
            "{overlay}: the namespace enforces the restricted Pod Security Standard"
        );
    }
    let dev = rendered_json("dev");
    object(&dev, "Deployment", "tokengate-redis");
    object(&dev, "Service", "tokengate-redis");
    object(&dev, "NetworkPolicy", "tokengate-redis");
}

#[test]
fn ports_probes_and_config_are_the_ones_the_binary_serves_and_reads() {
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        let deployment = tokengate_deployment(&objects);
        let spec = pod_spec(deployment);
        let c = container(deployment, "tokengate");
        let env = overlay_env(overlay, &objects);
        let config = effective_config(&objects, &env);

        // The image's entrypoint is tokengate; the pod runs `tokengate serve`.
        assert_eq!(list(&c["args"]), [&json!("serve")], "{overlay}: args");
        assert!(
            c["command"].is_null(),
            "{overlay}: the image's entrypoint runs"
        );

        // The one port: what the config listens on, the container declares,
        // the Service targets and the NetworkPolicy opens.
        let port = container_port(c, "grpc");
        assert_eq!(
            u64::from(config.listen.port()),
            port,
            "{overlay}: listen vs containerPort"
        );
        assert!(
            config.listen.ip().is_unspecified(),
            "{overlay}: listen on every interface"
        );
        let service = object(&objects, "Service", "tokengate");
        let service_ports = list(&service["spec"]["ports"]);
        assert_eq!(service_ports.len(), 1, "{overlay}: one port");
        let sp = service_ports[0];
        assert_eq!(
            resolve_port(c, &sp["targetPort"]),
            port,
            "{overlay}: Service targetPort"
        );
        assert_eq!(sp["name"], "grpc", "{overlay}: the Service port is named");
        assert_eq!(
            sp["appProtocol"], "kubernetes.io/h2c",
            "{overlay}: appProtocol"
        );
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let selector = service["spec"]["selector"].as_object().expect("selector");
        assert!(
            !selector.is_empty() && selector.iter().all(|(k, v)| &pod_labels[k] == v),
            "{overlay}: the Service selects the pods"
        );
        let policy = object(&objects, "NetworkPolicy", "tokengate");
        let ingress = list(&policy["spec"]["ingress"]);
        assert_eq!(ingress.len(), 1, "{overlay}: one ingress rule");
        let ingress_ports: Vec<u64> = list(&ingress[0]["ports"])
            .into_iter()
            .map(|p| resolve_port(c, &p["port"]))
            .collect();
        assert_eq!(
            ingress_ports,
            [port],
            "{overlay}: ingress on the one port only"
        );
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/port"], port.to_string());
        assert!(PATHS.contains(&annotations["prometheus.io/path"].as_str().expect("path")));

        // Probes: paths the binary serves, on the one port.
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{overlay}: {probe}");
            assert!(PATHS.contains(&path), "{path} is served");
            assert_eq!(
                resolve_port(c, &get["port"]),
                port,
                "{overlay}: {probe} port"
            );
        }
        // /readyz pings Redis (bounded by store.timeout_ms) within the probe's timeout.
        let readiness_timeout_ms = as_u64(&c["readinessProbe"]["timeoutSeconds"], "timeout") * 1000;
        assert!(
            config.store.timeout_ms < readiness_timeout_ms,
            "{overlay}: store.timeout_ms {} must stay below the readiness timeout",
            config.store.timeout_ms
        );

        // Files: the directory and the keys are where the volumes put them.
        let (dir_mount, dir_volume) =
            mount_of(deployment, c, config.directory.to_str().expect("path"));
        assert_eq!(
            dir_volume["secret"]["secretName"], "tokengate-directory",
            "{overlay}"
        );
        assert_eq!(
            config.directory.strip_prefix(dir_mount).expect("under"),
            Path::new("users.toml"),
            "{overlay}: the directory Secret's key is users.toml"
        );
        assert!(
            !config.keys.generate_missing,
            "{overlay}: no key generation on a read-only pod"
        );
        let key_mounts: Vec<&str> = list(&c["volumeMounts"])
            .into_iter()
            .map(|m| m["mountPath"].as_str().expect("mountPath"))
            .filter(|p| Path::new(p).starts_with(&config.keys.dir))
            .collect();
        assert!(!key_mounts.is_empty(), "{overlay}: key Secrets are mounted");
        for mount in &key_mounts {
            let rel = Path::new(mount)
                .strip_prefix(&config.keys.dir)
                .expect("under keys.dir");
            let parts: Vec<_> = rel.iter().map(|p| p.to_str().expect("utf-8")).collect();
            assert!(
                parts.len() == 2 && ["access", "refresh"].contains(&parts[1]),
                "{overlay}: {mount} is <keys.dir>/<domain>/<access|refresh>"
            );
            let (_, volume) = mount_of(deployment, c, mount);
            assert!(
                volume["secret"]["items"].is_null(),
                "{overlay}: whole Secrets, updated in place"
            );
        }
        for m in list(&c["volumeMounts"]) {
            assert!(
                m["subPath"].is_null(),
                "{overlay}: subPath mounts never see Secret updates"
            );
            assert_eq!(m["readOnly"], true, "{overlay}: read-only mounts");
        }

        // Shutdown: the grace period covers the preStop pause and the drain.
        let pre_stop = as_u64(
            &c["lifecycle"]["preStop"]["sleep"]["seconds"],
            "preStop sleep",
        );
        let grace = as_u64(&spec["terminationGracePeriodSeconds"], "grace");
        let drain_s = config.server.drain_timeout_ms.div_ceil(1000);
        assert!(
            grace > pre_stop + drain_s,
            "{overlay}: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} + drain {drain_s}"
        );
        assert!(
            pre_stop >= 3,
            "{overlay}: the preStop pause lets endpoint removal spread"
        );
    }
}

#[test]
fn the_dockerfile_matches_the_pods() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let instruction = |word: &str| -> Vec<String> {
        dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix(word).map(|r| r.trim().to_owned()))
            .collect()
    };
    // The build stage, the prebuilt binary's, the one BINARY picks, and the
    // runtime stage that ships either way (deploy/image.sh: --target runtime).
    let froms = instruction("FROM ");
    let stages: Vec<&str> = froms
        .iter()
        .filter_map(|f| f.rsplit_once(" AS ").map(|(_, stage)| stage))
        .collect();
    assert_eq!(
        stages,
        ["build", "prebuilt", "binary", "runtime"],
        "the Dockerfile's stages"
    );
    assert_eq!(
        instruction("ENTRYPOINT "),
        [r#"["/usr/local/bin/tokengate"]"#]
    );
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        let deployment = tokengate_deployment(&objects);
        let c = container(deployment, "tokengate");
        let security = &pod_spec(deployment)["securityContext"];
        assert_eq!(
            instruction("EXPOSE "),
            [container_port(c, "grpc").to_string()],
            "{overlay}: EXPOSE"
        );
        assert_eq!(
            instruction("USER "),
            [format!(
                "{}:{}",
                security["runAsUser"], security["runAsGroup"]
            )],
            "{overlay}: the image's user is the pod's"
        );
    }
}

#[test]
fn pods_are_non_root_read_only_and_confined() {
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        for deployment in kind(&objects, "Deployment") {
            let what = format!("{overlay}: {}", name(deployment));
            let spec = pod_spec(deployment);
            assert_eq!(spec["automountServiceAccountToken"], false, "{what}");
            // TOKENGATE_* service link variables would be read as config.
            assert_eq!(spec["enableServiceLinks"], false, "{what}");
            let pod = &spec["securityContext"];
            assert_eq!(pod["runAsNonRoot"], true, "{what}");
            assert!(
                as_u64(&pod["runAsUser"], "runAsUser") >= 10000,
                "{what}: a high uid"
            );
            assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault", "{what}");
            for c in list(&spec["containers"]) {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
                assert_eq!(sc["privileged"], false, "{what}");
                assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
                assert!(sc["capabilities"]["add"].is_null(), "{what}");
                for r in ["requests", "limits"] {
                    for k in ["cpu", "memory"] {
                        assert!(c["resources"][r][k].is_string(), "{what}: {r}.{k}");
                    }
                }
                for probe in ["readinessProbe", "livenessProbe"] {
                    assert!(c[probe].is_object(), "{what}: {probe}");
                }
            }
        }
    }
}

#[test]
fn replicas_spread_disruption_budget_and_autoscaler() {
    for (overlay, least) in [("dev", 2), ("production", 3)] {
        let objects = rendered_json(overlay);
        let deployment = tokengate_deployment(&objects);
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let selects = |selector: &Value| {
            selector["matchLabels"]
                .as_object()
                .expect("matchLabels")
                .iter()
                .all(|(k, v)| &labels[k] == v)
        };
        let replicas = as_u64(&deployment["spec"]["replicas"], "replicas");
        assert!(
            replicas >= least,
            "{overlay}: {replicas} replicas, want {least}+"
        );
        assert_eq!(
            deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
            "{overlay}: rollouts keep full capacity"
        );
        let hpa = object(&objects, "HorizontalPodAutoscaler", "tokengate");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name(deployment));
        assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
        let min = as_u64(&hpa["spec"]["minReplicas"], "minReplicas");
        assert_eq!(
            min, replicas,
            "{overlay}: the autoscaler's minimum is the replica count"
        );
        assert!(
            as_u64(&hpa["spec"]["maxReplicas"], "maxReplicas") > min,
            "{overlay}"
        );
        let pdb = object(&objects, "PodDisruptionBudget", "tokengate");
        assert!(
            selects(&pdb["spec"]["selector"]),
            "{overlay}: the PDB selects the pods"
        );
        assert_eq!(
            pdb["spec"]["maxUnavailable"], 1,
            "{overlay}: one pod at a time"
        );
        let spread = list(&pod_spec(deployment)["topologySpreadConstraints"]);
        for key in ["kubernetes.io/hostname", "topology.kubernetes.io/zone"] {
            let constraint = spread
                .iter()
                .find(|s| s["topologyKey"] == key)
                .unwrap_or_else(|| panic!("{overlay}: no spread over {key}"));
            assert!(
                selects(&constraint["labelSelector"]),
                "{overlay}: {key} spread selects the pods"
            );
        }
        assert_eq!(
            spread.len(),
            2,
            "{overlay}: one constraint per topology key"
        );
        if overlay == "production" {
            let nodes = spread
                .iter()
                .find(|s| s["topologyKey"] == "kubernetes.io/hostname")
                .expect("hostname");
            assert_eq!(
                nodes["whenUnsatisfiable"], "DoNotSchedule",
                "production: strict over nodes"
            );
        }
    }
}

#[test]
fn redis_is_wired_and_the_only_egress_besides_dns() {
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        let deployment = tokengate_deployment(&objects);
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        // Every policy selecting tokengate: egress to DNS (53) and Redis only.
        let mut egress_ports = BTreeSet::new();
        for policy in kind(&objects, "NetworkPolicy") {
            let selector = &policy["spec"]["podSelector"]["matchLabels"];
            let selects = selector
                .as_object()
                .expect("matchLabels")
                .iter()
                .all(|(k, v)| &labels[k] == v);
            if !selects {
                continue;
            }
            for rule in list(&policy["spec"]["egress"]) {
                assert!(
                    !list(&rule["to"]).is_empty(),
                    "{overlay}: egress rules name their peers"
                );
                for p in list(&rule["ports"]) {
                    egress_ports.insert(as_u64(&p["port"], "port"));
                }
            }
        }
        assert_eq!(
            egress_ports,
            BTreeSet::from([53, 6379]),
            "{overlay}: egress ports"
        );
    }

    // Dev: the URL of the generated Secret names the in-cluster Redis Service,
    // whose port leads to the Redis container, which only tokengate may reach.
    let dev = rendered_json("dev");
    let env = overlay_env("dev", &dev);
    let url = &env
        .iter()
        .find(|(k, _)| k == "TOKENGATE_STORE_REDIS_URL")
        .expect("redis url")
        .1;
    let service = object(&dev, "Service", "tokengate-redis");
    let port = as_u64(&service["spec"]["ports"][0]["port"], "port");
    assert_eq!(
        url,
        &format!("redis://{}:{port}/0", name(service)),
        "dev: Redis URL"
    );
    let redis = object(&dev, "Deployment", "tokengate-redis");
    let redis_container = container(redis, "redis");
    assert_eq!(
        resolve_port(redis_container, &service["spec"]["ports"][0]["targetPort"]),
        6379
    );
    let args: Vec<&str> = list(&redis_container["args"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--maxmemory-policy", "noeviction"]),
        "dev: Redis never evicts tokengate's keys: {args:?}"
    );
    let guard = object(&dev, "NetworkPolicy", "tokengate-redis");
    assert_eq!(
        guard["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "tokengate"
    );

    // Production: the URL comes from the Secret the operator creates.
    let production = rendered_json("production");
    let c = container(tokengate_deployment(&production), "tokengate");
    let reference = list(&c["env"])
        .into_iter()
        .find(|e| e["name"] == "TOKENGATE_STORE_REDIS_URL")
        .expect("TOKENGATE_STORE_REDIS_URL");
    assert_eq!(
        reference["valueFrom"]["secretKeyRef"],
        json!({"name": "tokengate-redis", "key": "url"})
    );
}

#[test]
fn every_secret_is_made_by_secrets_sh_or_documented() {
    let readme =
        std::fs::read_to_string(repo().join("deploy/README.md")).expect("deploy/README.md");
    for overlay in OVERLAYS {
        let objects = rendered_json(overlay);
        let deployment = tokengate_deployment(&objects);
        let c = container(deployment, "tokengate");
        let mut referenced = BTreeSet::new();
        for v in list(&pod_spec(deployment)["volumes"]) {
            if let Some(n) = v["secret"]["secretName"].as_str() {
                referenced.insert(n.to_owned());
            }
        }
        for e in list(&c["env"]) {
            if let Some(n) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
                referenced.insert(n.to_owned());
            }
        }
        let made = dev_secrets();
        for secret in &referenced {
            if find_object(&objects, "Secret", secret).is_some() {
                continue; // generated by kustomize (dev's Redis URL)
            }
            let documented = if secret.starts_with("tokengate-keys-") {
                readme.contains("tokengate-keys-<domain>-<purpose>")
            } else {
                readme.contains(&format!("`{secret}`"))
            };
            assert!(
                documented,
                "{overlay}: the Secret {secret} is not explained in deploy/README.md"
            );
            if overlay == "dev" {
                assert!(
                    find_object(&made, "Secret", secret).is_some(),
                    "dev: secrets.sh makes no Secret {secret}"
                );
            }
        }
    }
    // Every Secret secrets.sh makes for the dev workspace is mounted by dev.
    let dev = rendered_json("dev");
    let volumes: BTreeSet<&str> = list(&pod_spec(tokengate_deployment(&dev))["volumes"])
        .into_iter()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect();
    let secrets = dev_secrets();
    for s in &secrets {
        assert!(volumes.contains(name(s)), "dev does not mount {}", name(s));
    }
}

// ---------------------------------------------------------------------------
// The kubelet, played by this test
// ---------------------------------------------------------------------------

/// The uid of this process (the owner of /proc/self).
fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Writes a volume's files the way the kubelet's atomic writer does:
/// `<dir>/..<timestamp>/` holds the files, `<dir>/..data` links to it, and
/// each top-level name links into `..data`. Writing again swaps `..data`
/// in one rename and removes the old generation: the update Secrets and
/// ConfigMaps get in a running pod.
fn write_atomic(dir: &Path, files: &[(String, Vec<u8>, u32)], group: Option<u32>, generation: u32) {
    std::fs::create_dir_all(dir).expect("volume dir");
    set_mode(dir, 0o755);
    let stamp = format!(
        "..2026_01_01_00_00_{generation:02}.{}",
        100_000 + generation
    );
    let payload = dir.join(&stamp);
    std::fs::create_dir(&payload).expect("payload dir");
    set_mode(&payload, 0o755);
    for (rel, bytes, mode) in files {
        let path = payload.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(&path, bytes).expect("volume file");
        set_mode(&path, *mode);
        if let Some(gid) = group {
            // With an fsGroup, the kubelet gives read-only volumes' files to
            // that group and adds group read (mode | 0440).
            std::os::unix::fs::chown(&path, Some(0), Some(gid)).expect("chown (fsGroup)");
            set_mode(&path, *mode | 0o440);
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    let tops: BTreeSet<String> = files
        .iter()
        .map(|(rel, _, _)| rel.split('/').next().expect("name").to_owned())
        .collect();
    for entry in std::fs::read_dir(dir).expect("volume dir") {
        let entry = entry.expect("entry");
        let file_name = entry.file_name().into_string().expect("utf-8");
        if file_name.starts_with("..") {
            if file_name != stamp && file_name != "..data" {
                std::fs::remove_dir_all(entry.path()).expect("old generation");
            }
        } else if !tops.contains(&file_name) {
            std::fs::remove_file(entry.path()).expect("stale link");
        }
    }
    for top in tops {
        let link = dir.join(&top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link).expect("symlink");
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The files a volume holds, with their modes.
fn volume_files(
    volume: &Value,
    objects: &[Value],
    secrets: &[Value],
) -> Vec<(String, Vec<u8>, u32)> {
    let (source, data) = if let Some(map) = volume["configMap"].as_object() {
        let name = map["name"].as_str().expect("name");
        let object = object(objects, "ConfigMap", name);
        let data = object["data"]
            .as_object()
            .expect("data")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("text").as_bytes().to_vec()))
            .collect::<BTreeMap<_, _>>();
        (&volume["configMap"], data)
    } else if let Some(secret) = volume["secret"].as_object() {
        let name = secret["secretName"].as_str().expect("secretName");
        let object = find_object(objects, "Secret", name)
            .or_else(|| find_object(secrets, "Secret", name))
            .unwrap_or_else(|| panic!("no Secret {name} to mount"));
        (&volume["secret"], secret_data(object))
    } else {
        panic!("volume type not emulated: {volume}");
    };
    let mode = source["defaultMode"].as_u64().map_or(0o644, |m| m as u32);
    assert!(
        source["items"].is_null(),
        "items are not used (whole Secrets)"
    );
    data.into_iter().map(|(k, v)| (k, v, mode)).collect()
}

/// A tokengate pod of the dev overlay, run here: volumes laid out under a
/// private root folder as the kubelet would, the binary copied to the
/// image's entrypoint path, started with the pod's arguments and
/// environment, as the pod's user when this test runs as root.
struct Pod {
    root: tempfile::TempDir,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    env: Vec<(String, String)>,
    deployment: Value,
    uid: Option<(u32, u32)>,
}

impl Pod {
    fn start(redis: &RedisServer) -> Self {
        let objects = rendered_json("dev");
        let secrets = dev_secrets();
        let deployment = tokengate_deployment(&objects).clone();
        let spec = pod_spec(&deployment);
        let c = container(&deployment, "tokengate");
        let root = tempfile::tempdir().expect("pod root");
        set_mode(root.path(), 0o755);
        let fs_group = spec["securityContext"]["fsGroup"]
            .as_u64()
            .map(|g| g as u32);
        let as_root = effective_uid() == 0;
        for mount in list(&c["volumeMounts"]) {
            let mount_path = mount["mountPath"].as_str().expect("mountPath");
            let volume = list(&spec["volumes"])
                .into_iter()
                .find(|v| v["name"] == mount["name"])
                .expect("volume");
            let dir = in_root(root.path(), mount_path);
            // The runtime creates mount points (and their parents) 0755.
            let mut parent = dir.parent();
            while let Some(p) = parent.filter(|p| p.starts_with(root.path()) && *p != root.path()) {
                std::fs::create_dir_all(p).expect("mount point parents");
                set_mode(p, 0o755);
                parent = p.parent();
            }
            write_atomic(
                &dir,
                &volume_files(volume, &objects, &secrets),
                fs_group.filter(|_| as_root),
                1,
            );
        }

        // The image's entrypoint (Dockerfile: ENTRYPOINT ["/usr/local/bin/tokengate"]).
        let entrypoint = in_root(root.path(), "/usr/local/bin/tokengate");
        std::fs::create_dir_all(entrypoint.parent().expect("bin")).expect("bin dir");
        for p in ["usr", "usr/local", "usr/local/bin"] {
            set_mode(&root.path().join(p), 0o755);
        }
        std::fs::copy(env!("CARGO_BIN_EXE_tokengate"), &entrypoint).expect("copy binary");
        set_mode(&entrypoint, 0o755);

        let mut env = pod_env(&objects, &secrets, &deployment, &BTreeMap::new());
        let config_path = env
            .iter()
            .find(|(k, _)| k == "TOKENGATE_CONFIG")
            .map(|(_, v)| v.clone())
            .expect("TOKENGATE_CONFIG");
        let config = effective_config(&objects, &env);
        // What must change to run outside the pod, and nothing else (the
        // config file itself is the rendered one, byte for byte):
        // - the paths the pod sees at / are under this test's root folder;
        // - the pod listens on 0.0.0.0:<containerPort> in its own network
        //   namespace; here loopback and port 0 (tests run in parallel): the
        //   process picks a free port and logs it. No check here is about the
        //   port number itself (the static checks compare the rendered
        //   config's port with the manifests');
        // - the Redis URL names the in-cluster Service (checked in
        //   redis_is_wired_and_the_only_egress_besides_dns); here a private
        //   redis-server.
        let rewrites = [
            (
                "TOKENGATE_CONFIG",
                in_root(root.path(), &config_path).display().to_string(),
            ),
            (
                "TOKENGATE_DIRECTORY",
                in_root(root.path(), config.directory.to_str().expect("path"))
                    .display()
                    .to_string(),
            ),
            (
                "TOKENGATE_KEYS_DIR",
                in_root(root.path(), config.keys.dir.to_str().expect("path"))
                    .display()
                    .to_string(),
            ),
            ("TOKENGATE_LISTEN", "127.0.0.1:0".to_owned()),
            ("TOKENGATE_STORE_REDIS_URL", redis.url()),
        ];
        for (var, value) in rewrites {
            env.retain(|(k, _)| k != var);
            env.push((var.to_owned(), value));
        }
        let uid = as_root.then(|| {
            let sc = &spec["securityContext"];
            (
                as_u64(&sc["runAsUser"], "runAsUser") as u32,
                as_u64(&sc["runAsGroup"], "runAsGroup") as u32,
            )
        });
        if uid.is_none() {
            eprintln!("not root: the pod runs as this user, not as its runAsUser");
        }
        let log = root.path().join("pod.log");
        let args: Vec<String> = list(&c["args"])
            .into_iter()
            .map(|a| a.as_str().expect("arg").to_owned())
            .collect();
        let child = spawn_fresh_copy(|| {
            let mut command = pod_command(&entrypoint, &args, &env, uid, root.path());
            command
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"));
            command
        });
        let mut pod = Self {
            root,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            env,
            deployment,
            uid,
        };
        pod.addr = pod.wait_listening();
        pod.wait_ready();
        if let Some((user, _)) = uid {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pod.child.id()))
                .expect("process status");
            let line = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .expect("Uid line");
            assert!(
                line.split_whitespace()
                    .skip(1)
                    .all(|u| u == user.to_string()),
                "the process runs as the pod's user: {line}"
            );
        }
        pod
    }

    /// Waits for the log line naming the address the process listens on.
    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the pod's process exited ({status}):\n{}", self.logs());
            }
            if let Some(addr) = self.logs().lines().find_map(listen_address) {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "never listened:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Like the readiness probe: GET /readyz until 200.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the pod's process exited ({status}):\n{}", self.logs());
            }
            if http_get_status(self.addr, "/readyz") == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "never ready:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `kubectl exec deploy/tokengate -- /usr/local/bin/tokengate ARGS`: the
    /// container's environment and user, a pod path for the binary.
    fn exec(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if a.starts_with("/etc/tokengate/") {
                    in_root(self.root.path(), a).display().to_string()
                } else {
                    (*a).to_owned()
                }
            })
            .collect();
        pod_command(
            &in_root(self.root.path(), "/usr/local/bin/tokengate"),
            &args,
            &self.env,
            self.uid,
            self.root.path(),
        )
        .output()
        .expect("exec")
    }

    /// The kubelet's update of a Secret volume (a new generation).
    fn update_secret_volumes(&self, secrets: &[Value], generation: u32) {
        let spec = pod_spec(&self.deployment);
        let c = container(&self.deployment, "tokengate");
        let fs_group = spec["securityContext"]["fsGroup"]
            .as_u64()
            .map(|g| g as u32);
        for mount in list(&c["volumeMounts"]) {
            let volume = list(&spec["volumes"])
                .into_iter()
                .find(|v| v["name"] == mount["name"])
                .expect("volume");
            let Some(secret_name) = volume["secret"]["secretName"].as_str() else {
                continue;
            };
            let Some(secret) = find_object(secrets, "Secret", secret_name) else {
                continue;
            };
            let mode = volume["secret"]["defaultMode"].as_u64().expect("mode") as u32;
            let files: Vec<_> = secret_data(secret)
                .into_iter()
                .map(|(k, v)| (k, v, mode))
                .collect();
            write_atomic(
                &in_root(self.root.path(), mount["mountPath"].as_str().expect("path")),
                &files,
                fs_group.filter(|_| self.uid.is_some()),
                generation,
            );
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_root(root: &Path, pod_path: &str) -> PathBuf {
    root.join(pod_path.trim_start_matches('/'))
}

/// Spawns a program this test process has just written (the copied
/// entrypoint). While the copy's file was open for writing, another test's
/// thread may have forked: its child holds that descriptor until it execs,
/// and exec of a file open for writing fails with ETXTBSY. The window is
/// the few microseconds between that fork and exec, so retry briefly.
fn spawn_fresh_copy(mut command: impl FnMut() -> Command) -> std::process::Child {
    let mut attempts = 0;
    loop {
        match command().spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.expect("start the pod's process"),
        }
    }
}

fn pod_command(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    uid: Option<(u32, u32)>,
    cwd: &Path,
) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(program);
    // Only what the pod spec gives (and the image's PATH): nothing of this
    // test's environment (RUST_LOG, TOKENGATE_*) leaks in.
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd);
    if let Some((user, group)) = uid {
        command.uid(user).gid(group);
    }
    command
}

/// A plain HTTP/1.1 GET on a new connection; the status, if any answer.
fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// The kid in a JWT's header.
fn jwt_kid(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    header["kid"].as_str().expect("kid").to_owned()
}

/// The newest kid of a purpose in a set of key Secrets (the one that signs).
fn newest_kid(secrets: &[Value], purpose: &str) -> String {
    let secret = object(
        secrets,
        "Secret",
        &format!("tokengate-keys-{DEV_DOMAIN}-{purpose}"),
    );
    secret_data(secret)
        .keys()
        .map(|k| k.trim_end_matches(".pem").to_owned())
        .max_by_key(|kid| {
            (
                kid.split('-').nth(1).and_then(|s| s.parse::<u64>().ok()),
                kid.clone(),
            )
        })
        .expect("a key")
}

fn dev_login() -> (String, String) {
    let path = rendered_dir().join("dev-workspace/passwords.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = text
        .lines()
        .find(|l| l.starts_with(DEV_DOMAIN))
        .expect("the dev login");
    let fields: Vec<&str> = line.split('\t').collect();
    (fields[1].to_owned(), fields[2].to_owned())
}

async fn public_key_kid(client: &reqwest::Client, pod: &Pod) -> String {
    let answer: Value = client
        .post(pod.url("/identity/v1/domain/get-public-key"))
        .body(json!({ "domain_id": DEV_DOMAIN }).to_string())
        .send()
        .await
        .expect("get-public-key")
        .json()
        .await
        .expect("JSON");
    let jwk: Value =
        serde_json::from_str(answer["public_key"].as_str().expect("public_key")).expect("JWK");
    jwk["kid"].as_str().expect("kid").to_owned()
}

async fn refresh(client: &reqwest::Client, pod: &Pod, token: &str) -> (u16, Value) {
    let response = client
        .post(pod.url("/identity/v1/token/refresh"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("refresh");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_dev_pod_serves_rotates_keys_and_revokes() {
    let redis = RedisServer::start();
    let pod = Pod::start(&redis);
    let client = reqwest::Client::new();

    // The probe paths and the other plain endpoints answer.
    for path in ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"] {
        let status = client.get(pod.url(path)).send().await.expect(path).status();
        assert_eq!(status, 200, "{path}\n{}", pod.logs());
    }
    // grpc.health.v1, as native gRPC probes would ask.
    let channel = tonic::transport::Channel::from_shared(pod.url(""))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "spaceone.api.identity.v1.Token"] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(
            answer.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "health of {service:?}"
        );
    }

    // The mounted keys sign: get_public_key names the Secret's access key.
    let secrets = dev_secrets();
    assert_eq!(
        public_key_kid(&client, &pod).await,
        newest_kid(&secrets, "access")
    );
    // The mounted directory logs in; refresh state goes to Redis.
    let (user, password) = dev_login();
    let issued: Value = client
        .post(pod.url("/identity/v1/token/issue"))
        .body(json!({"domain_id": DEV_DOMAIN, "user_id": user, "credentials": {"password": password}}).to_string())
        .send()
        .await
        .expect("issue")
        .json()
        .await
        .expect("JSON");
    let first_refresh = issued["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{issued}\n{}", pod.logs()))
        .to_owned();
    assert_eq!(jwt_kid(&first_refresh), newest_kid(&secrets, "refresh"));

    // A rotation (secrets.sh rotate, run by deploy/check.sh through a kubectl
    // stand-in) changes the key Secrets; the kubelet swaps the volumes'
    // files in place; tokengate signs with the new keys within seconds and
    // still accepts tokens of the old ones.
    let rotated = rendered_json("dev-secrets-rotated");
    let new_access = newest_kid(&rotated, "access");
    assert_ne!(
        new_access,
        newest_kid(&secrets, "access"),
        "the rotation made a new key"
    );
    pod.update_secret_volumes(&rotated, 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while public_key_kid(&client, &pod).await != new_access {
        assert!(
            Instant::now() < deadline,
            "the new key was not picked up:\n{}",
            pod.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, refreshed) = refresh(&client, &pod, &first_refresh).await;
    assert_eq!(
        status, 200,
        "a token of the old key still refreshes: {refreshed}"
    );
    let second_refresh = refreshed["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert_eq!(
        jwt_kid(&second_refresh),
        newest_kid(&rotated, "refresh"),
        "new tokens use the new key"
    );
    let access = refreshed["access_token"].as_str().expect("access_token");
    assert_eq!(jwt_kid(access), new_access);

    // `kubectl exec deploy/tokengate -- tokengate check-config FILE` and
    // `... tokengate revoke --domain D --user U` (the pod's env names the
    // config and the Redis URL).
    let checked = pod.exec(&["check-config", "/etc/tokengate/config/config.toml"]);
    assert!(
        checked.status.success(),
        "check-config: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let revoked = pod.exec(&["revoke", "--domain", DEV_DOMAIN, "--user", &user]);
    assert!(
        revoked.status.success(),
        "revoke: {}{}",
        String::from_utf8_lossy(&revoked.stdout),
        String::from_utf8_lossy(&revoked.stderr)
    );
    let (status, answer) = refresh(&client, &pod, &second_refresh).await;
    assert_eq!(
        status, 401,
        "the revoked family no longer refreshes: {answer}"
    );
}

// ---------------------------------------------------------------------------
// Drain under load, the way the pod lifecycle does it
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Record {
    what: &'static str,
    start: Instant,
    end: Instant,
    /// Err(true): failed before the server answered (connect error, refused
    /// stream); Err(false): an answer that is not a success.
    result: Result<(), (bool, String)>,
}

type Records = Arc<Mutex<Vec<Record>>>;

fn record(
    records: &Records,
    what: &'static str,
    start: Instant,
    result: Result<(), (bool, String)>,
) {
    records.lock().expect("records").push(Record {
        what,
        start,
        end: Instant::now(),
        result,
    });
}

fn public_key_message() -> Bytes {
    Bytes::from(
        AuthenticationRequest {
            domain_id: DEV_DOMAIN.to_owned(),
        }
        .encode_to_vec(),
    )
}

async fn grpc_call(channel: tonic::transport::Channel) -> Result<(), (bool, String)> {
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| (true, format!("not ready: {e}")))?;
    let path = http::uri::PathAndQuery::from_static(GET_PUBLIC_KEY);
    match client
        .unary(
            tonic::Request::new(public_key_message()),
            path,
            tokengate_test_support::clients::RawCodec,
        )
        .await
    {
        Ok(response) => {
            let answer = AuthenticationResponse::decode(response.into_inner())
                .map_err(|e| (false, format!("bad answer: {e}")))?;
            if answer.domain_id == DEV_DOMAIN {
                Ok(())
            } else {
                Err((false, format!("wrong answer {answer:?}")))
            }
        }
        // UNAVAILABLE without an answer from the service: the transport
        // failed (refused stream after GOAWAY, connection refused).
        Err(status) if status.code() == tonic::Code::Unavailable => Err((true, status.to_string())),
        Err(status) => Err((false, status.to_string())),
    }
}

/// gRPC-Web over HTTP/2 (reqwest, prior knowledge); the body arrives in two
/// parts `split` apart (a slow client keeps the call in flight).
async fn grpc_web_call(
    client: reqwest::Client,
    base: String,
    split: Duration,
) -> Result<(), (bool, String)> {
    let message = public_key_message();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let response = client
        .post(format!("{base}{GET_PUBLIC_KEY}"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(slow_body(framed, split))
        .send()
        .await
        .map_err(|e| (true, format!("{e:?}")))?;
    if response.status() != 200 {
        return Err((false, format!("HTTP {}", response.status())));
    }
    let mut body = response
        .bytes()
        .await
        .map_err(|e| (false, format!("body: {e}")))?;
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let chunk = body.split_to(len);
        if flag & 0x80 != 0 {
            let trailers = String::from_utf8_lossy(&chunk).to_ascii_lowercase();
            return if trailers.contains("grpc-status:0") {
                Ok(())
            } else {
                Err((false, trailers))
            };
        }
    }
    Err((false, "no trailers".to_owned()))
}

/// REST over HTTP/1.1 (get-public-key, or GET /healthz when `body` is None).
async fn rest_call(
    client: reqwest::Client,
    base: String,
    body: Option<Duration>,
) -> Result<(), (bool, String)> {
    let request = match body {
        Some(split) => client
            .post(format!("{base}/identity/v1/domain/get-public-key"))
            .body(slow_body(
                json!({ "domain_id": DEV_DOMAIN }).to_string().into_bytes(),
                split,
            )),
        None => client.get(format!("{base}/healthz")),
    };
    let response = request.send().await.map_err(|e| (true, format!("{e:?}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| (false, format!("body: {e}")))?;
    if status == 200 {
        Ok(())
    } else {
        Err((false, format!("HTTP {status}: {text}")))
    }
}

/// A request body sent in two parts, `split` apart (zero: at once).
fn slow_body(bytes: Vec<u8>, split: Duration) -> reqwest::Body {
    if split.is_zero() {
        return reqwest::Body::from(bytes);
    }
    let half = bytes.len() / 2;
    let (first, second) = (bytes[..half].to_vec(), bytes[half..].to_vec());
    let stream = futures::stream::unfold(0u8, move |part| {
        let (first, second) = (first.clone(), second.clone());
        async move {
            match part {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from(first)), 1)),
                1 => {
                    tokio::time::sleep(split).await;
                    Some((Ok(Bytes::from(second)), 2))
                }
                _ => None,
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_fails_no_call_accepted_before_it() {
    let redis = RedisServer::start();
    let mut pod = Pod::start(&redis);
    let c = container(&pod.deployment, "tokengate");
    let pre_stop = Duration::from_secs(as_u64(
        &c["lifecycle"]["preStop"]["sleep"]["seconds"],
        "preStop",
    ));
    let grace = Duration::from_secs(as_u64(
        &pod_spec(&pod.deployment)["terminationGracePeriodSeconds"],
        "grace",
    ));
    let base = pod.url("");
    let records: Records = Arc::default();
    // Phases, shared with the load tasks: the pod is deleted (its endpoint
    // leaves the Service: proxies and ingress controllers send no new
    // HTTP/1.1 requests), then SIGTERM after the preStop pause.
    let endpoint_removed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Clients as in a cluster: gRPC channels and gRPC-Web over long-lived
    // HTTP/2 connections (kube-proxy keeps existing connections on the
    // terminating pod until the pod closes them), REST and probes-like GETs
    // over HTTP/1.1 keep-alive through an ingress.
    let h1 = reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("h1");
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("h2");
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let channel = tonic::transport::Channel::from_shared(base.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let (records, stop) = (records.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..200_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let start = Instant::now();
                let result = grpc_call(channel.clone()).await;
                record(&records, "grpc", start, result);
            }
        }));
    }
    for _ in 0..2 {
        let (records, stop, h2, base) = (records.clone(), stop.clone(), h2.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..200_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let start = Instant::now();
                let result = grpc_web_call(h2.clone(), base.clone(), Duration::ZERO).await;
                record(&records, "grpc-web h2", start, result);
            }
        }));
    }
    for what in ["rest h1", "healthz h1"] {
        let (records, h1, base, removed) = (
            records.clone(),
            h1.clone(),
            base.clone(),
            endpoint_removed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Calls already sent complete; none is started after removal.
            for _ in 0..200_000 {
                if removed.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let start = Instant::now();
                let body = (what == "rest h1").then_some(Duration::ZERO);
                let result = rest_call(h1.clone(), base.clone(), body).await;
                record(&records, what, start, result);
            }
        }));
    }

    // Steady load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A slow upload over HTTP/1.1 that started before the pod was deleted
    // and is still in flight when SIGTERM comes.
    let slow_h1 = {
        let (records, h1, base) = (records.clone(), h1.clone(), base.clone());
        let split = pre_stop + Duration::from_millis(700);
        tokio::spawn(async move {
            let start = Instant::now();
            let result = rest_call(h1, base, Some(split)).await;
            record(&records, "slow rest h1", start, result);
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The pod is deleted: endpoint removal, and the kubelet runs preStop.
    endpoint_removed.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(pre_stop.saturating_sub(Duration::from_millis(300))).await;
    // A slow gRPC-Web call over HTTP/2, in flight across SIGTERM.
    let slow_h2 = {
        let (records, h2, base) = (records.clone(), h2.clone(), base.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let result = grpc_web_call(h2, base, Duration::from_millis(800)).await;
            record(&records, "slow grpc-web h2", start, result);
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // preStop is over: the kubelet sends SIGTERM.
    let signalled = Instant::now();
    pod.signal("TERM");

    // The kubelet's deadline for the process: the grace period less the
    // preStop pause; then SIGKILL.
    let deadline = signalled + grace.saturating_sub(pre_stop);
    let status = loop {
        if let Some(status) = pod.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "not exited within the grace period:\n{}",
            pod.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    slow_h1.await.expect("slow h1");
    slow_h2.await.expect("slow h2");
    for task in tasks {
        task.await.expect("load task");
    }
    assert_eq!(status.code(), Some(0), "exit status\n{}", pod.logs());
    assert!(
        std::net::TcpStream::connect(pod.addr).is_err(),
        "the listener is closed"
    );

    let records = records.lock().expect("records").clone();
    let before: Vec<&Record> = records.iter().filter(|r| r.start < signalled).collect();
    // A call is accepted once the server has read it. Calls sent before the
    // signal were read (HTTP/2's graceful GOAWAY processes every stream the
    // client opened before it saw the GOAWAY); the last few microseconds of
    // a client's own queueing before the signal are the one exception, so
    // those may fail, but only without an answer (never reached the server).
    let margin = Duration::from_millis(100);
    let failed: Vec<&&Record> = before
        .iter()
        .filter(|r| match &r.result {
            Ok(()) => false,
            Err((unanswered, _)) => !(*unanswered && r.start + margin >= signalled),
        })
        .collect();
    let in_flight = before.iter().filter(|r| r.end > signalled).count();
    let summary: BTreeMap<&str, (usize, usize)> =
        before.iter().fold(BTreeMap::new(), |mut m, r| {
            let e = m.entry(r.what).or_insert((0, 0));
            e.0 += 1;
            e.1 += usize::from(r.result.is_err());
            m
        });
    eprintln!(
        "calls started before SIGTERM (total, failed) per kind: {summary:?}; {in_flight} in flight at SIGTERM; \
         exit {:?} after the signal",
        exited - signalled
    );
    assert!(
        failed.is_empty(),
        "calls accepted before SIGTERM failed: {:#?}\n{}",
        failed.iter().take(10).collect::<Vec<_>>(),
        pod.logs()
    );
    for what in [
        "grpc",
        "grpc-web h2",
        "rest h1",
        "healthz h1",
        "slow rest h1",
        "slow grpc-web h2",
    ] {
        assert!(
            before.iter().any(|r| r.what == what && r.result.is_ok()),
            "no successful {what} call before SIGTERM: {summary:?}"
        );
    }
    for slow in ["slow rest h1", "slow grpc-web h2"] {
        let r = before.iter().find(|r| r.what == slow).expect("slow call");
        assert!(r.end > signalled, "{slow} was in flight across SIGTERM");
    }
    assert!(
        !records
            .iter()
            .any(|r| r.start > signalled && r.result.is_ok() && r.what.ends_with("h1")),
        "HTTP/1.1 traffic had stopped at endpoint removal"
    );
    assert!(
        pod.logs().contains("draining"),
        "the process logged its drain:\n{}",
        pod.logs()
    );
}
