//! No container engine or cluster runs here, so the deployment files are checked
//! against the code and validated offline instead:
//! - docker/compose.yml: every REPORTD__ variable loads into Settings, every
//!   command is one the binary has, every image is pinned (no `latest`, no
//!   MinIO), Kafka keeps its data on a volume, a one-shot init prepares Garage;
//!   `docker compose config` accepts the file;
//! - docker/Dockerfile: multi-stage, pinned bases, non-root numeric user, stripped
//!   binary, health check, OCI labels; hadolint is clean;
//! - docker/k8s: each overlay renders with `kubectl kustomize` and passes
//!   scripts/validate-k8s.py (Kubernetes 1.32 schemas, restricted Pod Security
//!   Standard), and its settings load and agree with the code;
//! - docker/prometheus/alerts.yml: only metrics that src/telemetry.rs exports;
//!   promtool check/test rules pass.
//!
//! The validators live in a venv that scripts/validate-setup.sh installs once
//! (PyPI and Debian's package archive); afterwards nothing here uses the network.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use reportd::config::Settings;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// A mapping with YAML merge keys (`<<: *anchor`) applied; yaml-rust2 leaves them as they are.
fn merged(y: &Yaml) -> Yaml {
    let Some(h) = y.as_hash() else { return y.clone() };
    let mut out = yaml_rust2::yaml::Hash::new();
    let merge_key = Yaml::String("<<".into());
    for (k, v) in h {
        if *k != merge_key {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(base) = h.get(&merge_key) {
        for b in base.as_vec().cloned().unwrap_or_else(|| vec![base.clone()]) {
            for (k, v) in b.as_hash().into_iter().flatten() {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Yaml::Hash(out)
}

fn cargo_version() -> String {
    let manifest = read("Cargo.toml");
    let line = manifest.lines().find(|l| l.starts_with("version = ")).expect("Cargo.toml version");
    line.trim_start_matches("version = ").trim_matches('"').to_string()
}

/// The commands `reportd` has (src/main.rs), including those being added (keys, config).
const COMMANDS: &[&str] = &["serve", "api", "worker", "migrate", "dlq", "keys", "config"];

/// Settings the manifests set that the code does not have yet: loading them is
/// tried, and while Settings rejects them as unknown the test says so and goes on.
/// Remove an entry once src/config.rs has the setting.
const AWAITING_CODE: &[(&str, &str)] = &[];

/// Loads Settings from `config` (if any) and these variables, nothing else from the environment.
fn load_settings(config: Option<&Path>, vars: &[(String, String)], what: &str) -> Settings {
    // figment's Jail closures return figment's (large) error type.
    #[allow(clippy::result_large_err)]
    fn attempt(config: Option<&Path>, vars: &[(String, String)]) -> Result<Settings, String> {
        let mut out = None;
        figment::Jail::try_with(|jail| {
            jail.clear_env();
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            let settings = match config {
                Some(path) => Settings::load(path, true),
                None => Settings::load(Path::new("no-such-config.toml"), false),
            };
            out = Some(settings.map_err(|e| e.to_string()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        out.expect("the jail ran")
    }
    match attempt(config, vars) {
        Ok(s) => s,
        Err(e) => {
            let pending: Vec<_> = AWAITING_CODE
                .iter()
                .filter(|(var, field)| vars.iter().any(|(k, _)| k == var) && e.contains(field))
                .collect();
            assert!(!pending.is_empty(), "{what}: settings do not load: {e}");
            eprintln!(
                "{what}: the code does not have {} yet ({e}); checking the rest without it",
                pending.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
            );
            let rest: Vec<_> = vars.iter().filter(|(k, _)| !pending.iter().any(|(v, _)| v == k)).cloned().collect();
            attempt(config, &rest).unwrap_or_else(|e| panic!("{what}: settings do not load: {e}"))
        }
    }
}

fn reportd_vars(map: &Yaml) -> Vec<(String, String)> {
    map.as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (scalar(k), scalar(v)))
                .filter(|(k, _)| k.starts_with("REPORTD__"))
                .collect()
        })
        .unwrap_or_default()
}

/// None when `image` names an explicit version (or a digest); otherwise why not.
fn unpinned(image: &str) -> Option<String> {
    if image.contains("@sha256:") {
        return None;
    }
    let Some((name, tag)) = image.rsplit_once(':').filter(|(n, t)| !n.is_empty() && !t.contains('/')) else {
        return Some(format!("{image} has no tag"));
    };
    if tag == "latest" {
        return Some(format!("{image} uses latest"));
    }
    let version = tag.strip_prefix('v').unwrap_or(tag);
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(format!("{image}: tag {tag} is not a version"));
    }
    if name.to_ascii_lowercase().contains("minio") {
        return Some(format!("{image}: MinIO images are gone from Docker Hub; use Garage"));
    }
    None
}

fn humantime(d: &str) -> Duration {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("not a duration: {d}"));
    match unit {
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        "ms" => Duration::from_millis(n),
        _ => panic!("unit of {d}"),
    }
}

// ------------------------------------------------------------------ tools

/// The venv with the validators (scripts/validate-setup.sh; installs once).
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let out = Command::new(root().join("scripts/validate-setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/validate-setup.sh");
        assert!(
            out.status.success(),
            "scripts/validate-setup.sh failed: it needs python3 with venv and pip (PyPI) the first time, and apt-get (Debian's prometheus package) for promtool"
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs a command, returning (success, stdout + stderr).
fn run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = cmd
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.unwrap_or("").to_string();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn kustomize(overlay: &str) -> String {
    let dir = format!("docker/k8s/overlays/{overlay}");
    let out = match Command::new("kubectl").args(["kustomize", &dir]).current_dir(root()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is not installed: install kubectl 1.27 or later (it bundles kustomize; CI has it), \
             e.g. from the Kubernetes apt repository or your cloud SDK"
        ),
        Err(e) => panic!("kubectl: {e}"),
    };
    assert!(out.status.success(), "kubectl kustomize {dir} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn validate_k8s(name: &str, manifests: &str) -> (bool, String) {
    run(
        Command::new(venv().join("bin/python")).args([
            "scripts/validate-k8s.py",
            "--name",
            name,
            "--external-secret",
            "reportd-secrets",
            "-",
        ]),
        Some(manifests),
    )
}

// ------------------------------------------------------------------ compose

fn compose() -> (Yaml, BTreeMap<String, Yaml>) {
    let doc = yaml("docker/compose.yml").remove(0);
    let services = doc["services"]
        .as_hash()
        .expect("services")
        .iter()
        .map(|(k, v)| (scalar(k), merged(v)))
        .collect();
    (doc, services)
}

fn is_reportd(svc: &Yaml) -> bool {
    s(&svc["image"]).starts_with("reportd:")
}

#[test]
fn compose_environment_loads_into_settings() {
    let (doc, services) = compose();
    let env = reportd_vars(&doc["x-reportd"]["environment"]);
    assert!(env.len() >= 10, "compose sets the backends: {env:?}");
    let settings = load_settings(None, &env, "docker/compose.yml");
    let reportd: Vec<_> = services.iter().filter(|(_, svc)| is_reportd(svc)).collect();
    assert!(reportd.len() >= 3, "migrate, api and worker run reportd");
    for (name, svc) in &reportd {
        let cmd = s(&svc["command"][0]).to_string();
        let cmd = if cmd.is_empty() { s(&svc["command"]).to_string() } else { cmd };
        assert!(COMMANDS.contains(&cmd.as_str()), "{name} runs `{cmd}`, which reportd does not have");
        assert_eq!(reportd_vars(&svc["environment"]), env, "{name} uses the shared environment");
    }
    for role in ["api", "worker", "migrate"] {
        assert!(reportd.iter().any(|(_, svc)| s(&svc["command"][0]) == role), "a service runs `reportd {role}`");
    }
    // SIGTERM drains the worker for shutdown_deadline; Docker must wait longer before SIGKILL.
    let grace = humantime(s(&doc["x-reportd"]["stop_grace_period"]));
    assert!(grace > settings.worker.shutdown_deadline, "stop_grace_period {grace:?} <= worker.shutdown_deadline");
    assert!(settings.queue.partitions >= 3, "queue.partitions covers --scale worker=3");
    assert!(settings.storage.endpoint.contains("garage"), "S3 is Garage: {}", settings.storage.endpoint);
}

#[test]
fn compose_pins_every_image_and_prepares_its_backends() {
    let (doc, services) = compose();
    // Every image pinned, no latest, no MinIO.
    for (name, svc) in &services {
        let image = s(&svc["image"]);
        assert!(!image.is_empty(), "service {name} names no image");
        if let Some(problem) = unpinned(image) {
            panic!("service {name}: {problem}");
        }
    }
    let version = cargo_version();
    let x = &doc["x-reportd"];
    assert_eq!(s(&x["image"]), format!("reportd:{version}"), "reportd's image tag follows Cargo.toml");
    assert_eq!(scalar(&x["build"]["args"]["VERSION"]), version, "build arg VERSION follows Cargo.toml");

    // Kafka (KRaft) keeps its data on a named volume, at the directory it writes to.
    let kafka = &services["kafka"];
    assert!(s(&kafka["image"]).starts_with("apache/kafka:3.9."), "Kafka 3.9.x: {}", s(&kafka["image"]));
    assert!(s(&kafka["environment"]["KAFKA_PROCESS_ROLES"]).contains("controller"), "KRaft mode");
    let log_dirs = s(&kafka["environment"]["KAFKA_LOG_DIRS"]);
    let volumes: BTreeSet<String> = doc["volumes"].as_hash().unwrap().keys().map(scalar).collect();
    let on_volume = |svc: &Yaml, dir: &str| {
        list(&svc["volumes"]).iter().any(|v| {
            let mut parts = s(v).split(':');
            let (src, dst) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            volumes.contains(src) && dst == dir
        })
    };
    assert!(!log_dirs.is_empty() && on_volume(kafka, log_dirs), "Kafka's KAFKA_LOG_DIRS ({log_dirs}) is a named volume");
    assert!(on_volume(&services["postgres"], "/var/lib/postgresql/data"), "PostgreSQL data on a volume");
    assert!(s(&services["postgres"]["image"]).starts_with("postgres:16."), "PostgreSQL 16.x");
    assert!(s(&services["redis"]["image"]).starts_with("redis:7."), "Redis 7.x");

    // Garage: the major the tests use (scripts/services.sh), its config from docker/garage/.
    let garage = &services["garage"];
    let tests_version = read("scripts/services.sh")
        .lines()
        .find_map(|l| l.strip_prefix("GARAGE_VERSION="))
        .expect("GARAGE_VERSION in scripts/services.sh")
        .to_string();
    let image = s(&garage["image"]);
    let tag = image.strip_prefix("dxflrs/garage:v").unwrap_or_else(|| panic!("garage image {image}"));
    assert_eq!(tag.split('.').next(), tests_version.split('.').next(), "Garage {tag} vs the tests' {tests_version}");
    let config_mount = |svc: &Yaml| list(&svc["volumes"]).iter().any(|v| s(v).starts_with("./garage/garage.toml:/etc/garage.toml"));
    assert!(config_mount(garage), "garage mounts docker/garage/garage.toml");
    assert!(on_volume(garage, "/var/lib/garage/meta") && on_volume(garage, "/var/lib/garage/data"), "Garage data on volumes");
    let garage_toml = read("docker/garage/garage.toml");
    let garage_dockerfile = read("docker/garage/Dockerfile");
    assert!(garage_dockerfile.contains(&format!("FROM {image} ")), "garage-init's CLI is the server's release ({image})");

    // The one-shot init: runs after Garage is healthy, exits, and reportd waits for it.
    let init = &services["garage-init"];
    assert_eq!(s(&init["restart"]), "no", "garage-init runs once");
    assert_eq!(s(&init["depends_on"]["garage"]["condition"]), "service_healthy");
    assert!(config_mount(init), "garage-init reads the same garage.toml");
    assert!(!garage["healthcheck"]["test"].is_badvalue(), "garage has a healthcheck");
    let env = reportd_vars(&doc["x-reportd"]["environment"]);
    let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(s(&init["environment"]["GARAGE_KEY_ID"]), var("REPORTD__STORAGE__ACCESS_KEY_ID"), "reportd uses the imported key");
    assert_eq!(s(&init["environment"]["GARAGE_KEY_SECRET"]), var("REPORTD__STORAGE__SECRET_ACCESS_KEY"));
    assert_eq!(s(&init["environment"]["GARAGE_BUCKET"]), var("REPORTD__STORAGE__BUCKET"));
    assert!(
        garage_toml.contains(&format!("s3_region = \"{}\"", var("REPORTD__STORAGE__REGION"))),
        "REPORTD__STORAGE__REGION is Garage's s3_region"
    );

    // depends_on: healthy for services with a healthcheck, completed for one-shots.
    for (name, svc) in &services {
        for (dep, cond) in svc["depends_on"].as_hash().into_iter().flatten() {
            let (dep, cond) = (scalar(dep), s(&cond["condition"]).to_string());
            let target = services.get(&dep).unwrap_or_else(|| panic!("{name} depends on unknown {dep}"));
            match cond.as_str() {
                "service_healthy" => assert!(
                    !target["healthcheck"]["test"].is_badvalue(),
                    "{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                ),
                "service_completed_successfully" => {
                    assert_eq!(s(&target["restart"]), "no", "{name} waits for one-shot {dep}, which must not restart")
                }
                other => panic!("{name} -> {dep}: condition {other:?}; use service_healthy or service_completed_successfully"),
            }
        }
        if is_reportd(svc) && s(&svc["command"][0]) != "migrate" {
            for (dep, cond) in [
                ("garage-init", "service_completed_successfully"),
                ("migrate", "service_completed_successfully"),
                ("kafka", "service_healthy"),
                ("redis", "service_healthy"),
            ] {
                assert_eq!(s(&svc["depends_on"][dep]["condition"]), cond, "{name} depends on {dep}");
            }
        }
    }
}

#[test]
fn compose_file_passes_docker_compose_config() {
    let (ok, out) = run(
        Command::new(venv().join("libexec/docker-compose")).args(["-f", "docker/compose.yml", "config", "--quiet"]),
        None,
    );
    assert!(ok, "docker compose config rejects docker/compose.yml:\n{out}");
}

// ------------------------------------------------------------------ Dockerfile

/// Dockerfile instructions with continuation lines joined, comments dropped.
fn instructions(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read(path).lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[test]
fn the_dockerfile_runs_the_binary_with_settings_it_understands() {
    let text = read("docker/Dockerfile");
    assert!(text.contains("ENTRYPOINT [\"reportd\"]"));
    let vars: Vec<(String, String)> = text
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| k.starts_with("REPORTD__"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(!vars.is_empty());
    load_settings(None, &vars, "docker/Dockerfile");
}

#[test]
fn the_dockerfile_builds_a_small_pinned_non_root_image() {
    let ins = instructions("docker/Dockerfile");
    let froms: Vec<&String> = ins.iter().filter(|i| i.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    for from in &froms {
        let image = from.split_whitespace().nth(1).unwrap();
        assert!(unpinned(image).is_none(), "{from}: {}", unpinned(image).unwrap());
    }
    let runtime_base = froms.last().unwrap().split_whitespace().nth(1).unwrap();
    assert!(
        runtime_base.contains("slim") || runtime_base.contains("distroless"),
        "runtime image {runtime_base} is debian-slim or distroless"
    );
    let last = ins.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    let runtime = &ins[last..];
    let user = runtime.iter().rev().find_map(|i| i.strip_prefix("USER ")).expect("USER in the runtime stage");
    let uid: u32 = user.split(':').next().unwrap().parse().unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert!(uid > 0, "USER is not root");
    let health = runtime.iter().find(|i| i.starts_with("HEALTHCHECK")).expect("HEALTHCHECK");
    assert!(health.contains("/health") && (health.contains("curl") || health.contains("reportd")), "{health}");
    let labels = runtime.iter().filter(|i| i.starts_with("LABEL")).cloned().collect::<Vec<_>>().join(" ");
    for key in ["title", "description", "source", "licenses", "version", "revision"] {
        assert!(labels.contains(&format!("org.opencontainers.image.{key}=")), "OCI label {key}");
    }
    let version_arg = runtime.iter().find_map(|i| i.strip_prefix("ARG VERSION=")).expect("ARG VERSION=");
    assert_eq!(version_arg, cargo_version(), "the image's version label follows Cargo.toml");
    assert_eq!(runtime.last().map(String::as_str), Some("CMD [\"serve\"]"));

    let builder = ins[..last].join("\n");
    assert!(
        builder.contains("CARGO_PROFILE_RELEASE_STRIP=symbols") || builder.contains("profile.release.debug=false"),
        "the binary is built stripped"
    );
    for pkg in ["cmake", "libssl-dev", "libsasl2-dev", "zlib1g-dev"] {
        assert!(builder.contains(pkg), "the builder installs {pkg} (librdkafka with SSL and SASL)");
    }
    let runtime_text = runtime.join("\n");
    for pkg in ["libssl3", "libsasl2-2", "ca-certificates"] {
        assert!(runtime_text.contains(pkg), "the runtime image has {pkg}");
    }

    // Every path a COPY takes from the build context gets past the .dockerignore.
    let ignore = read("docker/Dockerfile.dockerignore");
    let allowed: Vec<&str> =
        ignore.lines().filter_map(|l| l.trim().strip_prefix('!')).map(|p| p.trim_end_matches('/')).collect();
    for i in ins.iter().filter(|i| i.starts_with("COPY ") && !i.contains("--from=")) {
        let words: Vec<&str> = i.split_whitespace().skip(1).filter(|w| !w.starts_with("--")).collect();
        for src in &words[..words.len() - 1] {
            let src = src.trim_end_matches('/');
            assert!(
                allowed.iter().any(|a| src == *a || src.starts_with(&format!("{a}/"))),
                "{i}: {src} is excluded by docker/Dockerfile.dockerignore"
            );
            assert!(root().join(src).exists(), "{i}: {src} does not exist");
        }
    }
}

#[test]
fn the_dockerfiles_pass_hadolint() {
    let (ok, out) =
        run(Command::new(venv().join("bin/hadolint")).args(["docker/Dockerfile", "docker/garage/Dockerfile"]), None);
    assert!(ok, "hadolint:\n{out}");
}

#[test]
fn the_deployment_scripts_pass_shellcheck() {
    let scripts =
        ["docker/garage/init.sh", "docker/k8s/gen-configmap.sh", "scripts/validate-setup.sh", "scripts/validate-deploy.sh"];
    let (ok, out) = run(Command::new(venv().join("bin/shellcheck")).args(scripts), None);
    assert!(ok, "shellcheck:\n{out}");
}

// ------------------------------------------------------------------ Kubernetes

const OVERLAYS: &[&str] = &["dev", "prod"];

fn docs(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap().into_iter().filter(|d| !d.is_null() && !d.is_badvalue()).collect()
}

fn of_kind<'a>(objs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    objs.iter().filter(|o| s(&o["kind"]) == kind).collect()
}

fn named<'a>(objs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    of_kind(objs, kind)
        .into_iter()
        .find(|o| s(&o["metadata"]["name"]) == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

/// The data of a ConfigMap or Secret, as strings.
fn data_of(obj: &Yaml) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        obj["data"].as_hash().into_iter().flatten().map(|(k, v)| (scalar(k), scalar(v))).collect();
    if s(&obj["kind"]) == "Secret" {
        out = out.into_iter().map(|(k, v)| (k, base64_decode(&v))).collect();
    }
    out.extend(obj["stringData"].as_hash().into_iter().flatten().map(|(k, v)| (scalar(k), scalar(v))));
    out
}

/// A container's environment as the pod would see it: envFrom (rendered
/// ConfigMaps, the rendered Secret or else secret.example.yaml), then env; a
/// value from the downward API becomes a stand-in of the pod's name.
fn container_env(objs: &[Yaml], container: &Yaml) -> Vec<(String, String)> {
    let example = yaml("docker/k8s/secret.example.yaml").remove(0);
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for from in list(&container["envFrom"]) {
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            env.extend(data_of(named(objs, "ConfigMap", name)));
        }
        if let Some(name) = from["secretRef"]["name"].as_str() {
            let secret = of_kind(objs, "Secret").into_iter().find(|o| s(&o["metadata"]["name"]) == name);
            match secret {
                Some(secret) => env.extend(data_of(secret)),
                None => {
                    assert_eq!(s(&example["metadata"]["name"]), name, "Secret {name} is neither rendered nor the example");
                    env.extend(data_of(&example));
                }
            }
        }
    }
    for e in list(&container["env"]) {
        let value = match (&e["value"], &e["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Yaml::BadValue, Yaml::String(path)) => {
                assert_eq!(path, "metadata.name", "{:?}", e["name"]);
                "reportd-worker-7c9f8d6b5-x2k4q".to_string()
            }
            (v, _) => scalar(v),
        };
        env.insert(s(&e["name"]).to_string(), value);
    }
    env.into_iter().filter(|(k, _)| k.starts_with("REPORTD__")).collect()
}

#[test]
fn kubernetes_overlays_render_and_pass_schemas_and_restricted_pss_offline() {
    let mut failures = Vec::new();
    for overlay in OVERLAYS {
        let (ok, out) = validate_k8s(overlay, &kustomize(overlay));
        eprintln!("{out}");
        if !ok {
            failures.push(out);
        }
    }
    let (ok, out) = run(
        Command::new(venv().join("bin/python")).args([
            "scripts/validate-k8s.py",
            "--name",
            "secret.example",
            "docker/k8s/secret.example.yaml",
        ]),
        None,
    );
    if !ok {
        failures.push(out);
    }
    assert!(failures.is_empty(), "scripts/validate-k8s.py found problems:\n{}", failures.join("\n"));
}

#[test]
fn the_kubernetes_validator_rejects_what_it_should() {
    let prod = kustomize("prod");
    let dev = kustomize("dev");
    let scaled_object = prod.split("\n---\n").find(|d| d.contains("kind: ScaledObject")).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "privilege escalation",
            prod.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
            "allowPrivilegeEscalation: must be false (restricted)",
        ),
        ("capabilities kept", prod.replace("- ALL", "- NET_RAW"), "capabilities.drop: must include ALL"),
        ("root user", prod.replace("runAsUser: 10001", "runAsUser: 0"), "runAsUser: must not be 0"),
        ("no seccomp", prod.replace("type: RuntimeDefault", "type: Unconfined"), "must not be Unconfined"),
        ("writable root", prod.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"), "readOnlyRootFilesystem: must be true"),
        ("token mounted", prod.replace("automountServiceAccountToken: false", "automountServiceAccountToken: true"), "automountServiceAccountToken: must be false"),
        ("unsized emptyDir", prod.replace("sizeLimit: 64Mi", "medium: \"\""), "emptyDir.sizeLimit: must be set"),
        ("host network", prod.replace("enableServiceLinks: false", "hostNetwork: true"), "host namespaces"),
        ("latest image", prod.replace("reportd/reportd:0.1.0", "reportd/reportd:latest"), "uses latest"),
        ("unknown field", prod.replace("terminationGracePeriodSeconds:", "terminationGracePeriod:"), "terminationGracePeriod' was unexpected"),
        ("wrong type", prod.replace("maxUnavailable: 1\n", "maxUnavailable: [1]\n"), "schema (Kubernetes 1.32.0)"),
        ("CRD unknown field", prod.replace("  endpoints:", "  endpoint:"), "ServiceMonitor/reportd: spec: schema"),
        ("KEDA typo", prod.replace("lagThreshold: \"20\"", "lagTreshold: \"20\""), "lagTreshold: not a kafka scaler setting"),
        (
            "replicas under an autoscaler",
            prod.replace("spec:\n  revisionHistoryLimit: 5", "spec:\n  replicas: 2\n  revisionHistoryLimit: 5"),
            "spec.replicas: must be left out",
        ),
        ("two autoscalers", format!("{dev}\n---\n{scaled_object}"), "has more than one autoscaler"),
        ("bad quantity", prod.replace("cpu: \"1\"", "cpu: lots"), "'lots' is not a Kubernetes quantity"),
        ("no readiness probe", prod.replace("path: /ready", "path: /health"), "readinessProbe: must be an httpGet of /ready"),
        (
            "a required ConfigMap that is missing",
            prod.replace("name: reportd-reports
          optional: true", "name: reportd-reports"),
            "ConfigMap reportd-reports is not in the output",
        ),
    ];
    for (what, manifests, expected) in cases {
        assert_ne!(manifests, prod, "{what}: the mutation changed nothing");
        let (ok, out) = validate_k8s(what, &manifests);
        assert!(!ok && out.contains(expected), "{what}: expected a failure mentioning {expected:?}, got:\n{out}");
    }
}

#[test]
fn kubernetes_overlays_match_the_code() {
    let original = read("config.toml");
    let expected_config = original.replacen("host = \"127.0.0.1\"", "host = \"0.0.0.0\"", 1);
    assert_ne!(expected_config, original, "config.toml has [http] host = \"127.0.0.1\"");
    assert_eq!(read("docker/k8s/base/config.toml"), expected_config, "run docker/k8s/gen-configmap.sh");
    let tmp = tempfile::tempdir().unwrap();

    for overlay in OVERLAYS {
        let objs = docs(&kustomize(overlay));
        let what = |x: &str| format!("overlay {overlay}: {x}");

        // The ConfigMap is config.toml, listening on all interfaces.
        let config = of_kind(&objs, "ConfigMap")
            .into_iter()
            .find(|o| s(&o["metadata"]["name"]).starts_with("reportd-config"))
            .expect("ConfigMap reportd-config");
        let embedded = s(&config["data"]["config.toml"]);
        assert_eq!(embedded.trim_end(), expected_config.trim_end(), "{}", what("run docker/k8s/gen-configmap.sh"));
        let config_path = tmp.path().join(format!("{overlay}.toml"));
        std::fs::write(&config_path, embedded).unwrap();

        let deployments = of_kind(&objs, "Deployment");
        assert_eq!(deployments.len(), 2, "{}", what("Deployments api and worker"));
        let mut worker_settings = None;
        for d in &deployments {
            let name = s(&d["metadata"]["name"]);
            let pod = &d["spec"]["template"]["spec"];
            let c = &pod["containers"][0];
            let mode = s(&c["args"][0]);
            assert_eq!(Some(mode), name.strip_prefix("reportd-"), "{}", what(&format!("{name} runs reportd {mode}")));
            assert!(COMMANDS.contains(&mode), "{}", what(&format!("{name}: no command {mode}")));
            let image = s(&c["image"]);
            assert!(unpinned(image).is_none(), "{}", what(&format!("{name}: {}", unpinned(image).unwrap_or_default())));
            if *overlay == "prod" {
                assert!(image.contains('/'), "{}", what("prod pulls from a registry path"));
            }
            let env = container_env(&objs, c);
            let config_env = list(&c["env"]).iter().find(|e| s(&e["name"]) == "REPORTD_CONFIG").expect("REPORTD_CONFIG");
            let mounted = list(&c["volumeMounts"]).iter().any(|m| {
                s(&config_env["value"]) == format!("{}/config.toml", s(&m["mountPath"]))
                    && list(&pod["volumes"]).iter().any(|v| {
                        v["name"] == m["name"] && s(&v["configMap"]["name"]) == s(&config["metadata"]["name"])
                    })
            });
            assert!(mounted, "{}", what(&format!("{name}: REPORTD_CONFIG is the mounted ConfigMap")));
            let settings = load_settings(Some(&config_path), &env, &what(name));
            assert!(settings.http.host.is_unspecified(), "{}", what("pods listen on all interfaces"));
            // Named report definitions: reports.dir is where ConfigMap reportd-reports is mounted.
            let reports_dir = settings.reports.dir.display().to_string();
            let reports_mounted = list(&c["volumeMounts"]).iter().any(|m| {
                s(&m["mountPath"]) == reports_dir
                    && list(&pod["volumes"])
                        .iter()
                        .any(|v| v["name"] == m["name"] && s(&v["configMap"]["name"]).starts_with("reportd-reports"))
            });
            assert!(reports_mounted, "{}", what(&format!("{name}: reports.dir {reports_dir} is ConfigMap reportd-reports")));
            let port = list(&c["ports"]).iter().find(|p| s(&p["name"]) == "http").expect("port http");
            assert_eq!(port["containerPort"].as_i64(), Some(settings.http.port as i64), "{}", what("containerPort = http.port"));
            let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_i64().expect("grace period") as u64);
            assert!(
                grace > settings.worker.shutdown_deadline,
                "{}",
                what(&format!("{name}: terminationGracePeriodSeconds {grace:?} must exceed worker.shutdown_deadline"))
            );
            if mode == "worker" {
                let id = list(&c["env"]).iter().find(|e| s(&e["name"]) == "REPORTD__QUEUE__INSTANCE_ID");
                assert_eq!(
                    id.map(|e| s(&e["valueFrom"]["fieldRef"]["fieldPath"])),
                    Some("metadata.name"),
                    "{}",
                    what("the worker's consumer identity is its pod name")
                );
                let scratch = &settings.worker.scratch_dir;
                assert!(
                    list(&c["volumeMounts"]).iter().any(|m| s(&m["mountPath"]) == scratch.as_str()),
                    "{}",
                    what(&format!("worker.scratch_dir {scratch} is a volume"))
                );
                worker_settings = Some(settings);
            }
            // One PodDisruptionBudget per Deployment.
            let labels = &d["spec"]["selector"]["matchLabels"];
            assert_eq!(
                of_kind(&objs, "PodDisruptionBudget").iter().filter(|p| p["spec"]["selector"]["matchLabels"] == *labels).count(),
                1,
                "{}",
                what(&format!("one PodDisruptionBudget for {name}"))
            );
            let scraped = !d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"].is_badvalue();
            assert_eq!(scraped, *overlay != "prod", "{}", what("scrape annotations in base, ServiceMonitor in prod"));
        }
        let settings = worker_settings.expect("a worker Deployment");

        // Autoscaling: a CPU HPA in dev, KEDA (lag + CPU) in prod, never beyond the partitions.
        let hpas = of_kind(&objs, "HorizontalPodAutoscaler");
        let scaled = of_kind(&objs, "ScaledObject");
        let partitions = settings.queue.partitions as i64;
        match *overlay {
            "dev" => {
                assert!(hpas.len() == 1 && scaled.is_empty(), "{}", what("a CPU HPA, no ScaledObject"));
                let max = hpas[0]["spec"]["maxReplicas"].as_i64().unwrap();
                assert!(max <= partitions, "{}", what(&format!("HPA maxReplicas {max} > queue.partitions {partitions}")));
            }
            _ => {
                assert!(hpas.is_empty() && scaled.len() == 1, "{}", what("a ScaledObject, no HPA of its own"));
                let spec = &scaled[0]["spec"];
                assert_eq!(s(&spec["scaleTargetRef"]["name"]), "reportd-worker");
                let max = spec["maxReplicaCount"].as_i64().unwrap();
                assert!(max <= partitions, "{}", what(&format!("maxReplicaCount {max} > queue.partitions {partitions}")));
                let kafka = list(&spec["triggers"]).iter().find(|t| s(&t["type"]) == "kafka").expect("kafka trigger");
                let md = &kafka["metadata"];
                assert_eq!(s(&md["topic"]), settings.queue.topic, "{}", what("the trigger watches queue.topic"));
                assert_eq!(s(&md["consumerGroup"]), settings.queue.group_id, "{}", what("the trigger watches queue.group_id"));
                assert_eq!(s(&md["bootstrapServers"]), settings.queue.brokers, "{}", what("the trigger asks queue.brokers"));
                assert!(s(&md["lagThreshold"]).parse::<u32>().is_ok_and(|n| n > 0), "{}", what("lagThreshold"));
                assert!(list(&spec["triggers"]).iter().any(|t| s(&t["type"]) == "cpu"), "{}", what("a CPU trigger too"));
                let monitors = of_kind(&objs, "ServiceMonitor");
                assert_eq!(monitors.len(), 1, "{}", what("a ServiceMonitor"));
                assert_eq!(s(&monitors[0]["spec"]["endpoints"][0]["path"]), "/metrics");
            }
        }

        // NetworkPolicy: the backends' ports and DNS are allowed out; the API and metrics port in.
        let mut egress_ports = BTreeSet::new();
        let mut ingress_ports = BTreeSet::new();
        for np in of_kind(&objs, "NetworkPolicy") {
            for rule in list(&np["spec"]["egress"]) {
                egress_ports.extend(list(&rule["ports"]).iter().filter_map(|p| p["port"].as_i64()));
            }
            for rule in list(&np["spec"]["ingress"]) {
                ingress_ports.extend(list(&rule["ports"]).iter().filter_map(|p| p["port"].as_i64()));
            }
        }
        for port in [53, 5432, 6379, 9092, 9093, 443, 3900] {
            assert!(egress_ports.contains(&port), "{}", what(&format!("egress to port {port}")));
        }
        assert_eq!(ingress_ports, BTreeSet::from([settings.http.port as i64]), "{}", what("ingress only on http.port"));
    }
}

// ------------------------------------------------------------------ alert rules

/// Metric names an expression selects: identifiers outside label matchers,
/// ranges, strings, numbers and grouping clauses that are not functions,
/// aggregations or keywords. (scripts/validate-alerts.py does the same with a
/// real PromQL parser.)
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf",
        "nan", "atan2", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
        "topk", "quantile", "limitk", "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false; // the next (...) lists labels
    while i < chars.len() {
        let c = chars[i];
        if c == '{' || c == '[' || c == '"' || c == '\'' {
            let close = match c {
                '{' => '}',
                '[' => ']',
                q => q,
            };
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '(' && skip_group {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            // A number or a duration (0.95, 1e3, 5m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&word.as_str()) {
                skip_group = true;
            } else if next != Some(&'(') && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn alert_rules() -> Vec<Yaml> {
    let doc = yaml("docker/prometheus/alerts.yml").remove(0);
    list(&doc["groups"]).iter().flat_map(|g| list(&g["rules"]).to_vec()).collect()
}

#[test]
fn alert_rules_use_only_metrics_that_reportd_exports() {
    let telemetry = read("src/telemetry.rs");
    let exported: BTreeSet<String> = telemetry
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub(crate) const ").or_else(|| l.trim().strip_prefix("pub const ")))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert!(exported.len() > 10, "src/telemetry.rs lists the metric names");
    let rules = alert_rules();
    assert!(!rules.is_empty());
    let mut used = BTreeSet::new();
    for rule in &rules {
        let name = s(&rule["alert"]);
        for metric in metric_names(s(&rule["expr"])) {
            if metric == "up" {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| metric.strip_suffix(suffix).filter(|b| exported.contains(*b)))
                .unwrap_or(&metric)
                .to_string();
            assert!(exported.contains(&base), "{name}: {metric} is not a metric in src/telemetry.rs");
            used.insert(base);
        }
    }
    for required in [
        "reportd_dead_letters_total",
        "reportd_outbox_lag_seconds",
        "reportd_jobs",
        "reportd_jobs_completed_total",
        "reportd_jobs_failed_total",
        "reportd_cache_up",
    ] {
        assert!(used.contains(required), "no alert uses {required}");
    }
    assert_eq!(
        metric_names(r#"sum by (le) (rate(x_bucket{a="b"}[5m] offset 1h)) / on() group_left(z) max(y) > 0.5 unless up"#),
        ["x_bucket", "y", "up"]
    );
}

/// The RUNBOOK.md sections the alerts link to.
const RUNBOOK_ANCHORS: &[&str] =
    &["dead-letters", "error-rate", "jobs-stuck", "outbox-lag", "queue-backlog", "cache-down", "target-down"];

#[test]
fn every_alert_explains_itself_and_links_the_runbook() {
    let mut anchors = BTreeSet::new();
    for rule in alert_rules() {
        let name = s(&rule["alert"]);
        assert!(!name.is_empty(), "only alerting rules: {rule:?}");
        assert!(["critical", "warning"].contains(&s(&rule["labels"]["severity"])), "{name}: severity");
        for key in ["summary", "description"] {
            assert!(!s(&rule["annotations"][key]).trim().is_empty(), "{name}: annotation {key}");
        }
        let url = s(&rule["annotations"]["runbook_url"]);
        let anchor = url.strip_prefix("RUNBOOK.md#").unwrap_or_else(|| panic!("{name}: runbook_url {url}"));
        anchors.insert(anchor.to_string());
    }
    assert_eq!(anchors, RUNBOOK_ANCHORS.iter().map(|a| a.to_string()).collect(), "runbook anchors");
    // When RUNBOOK.md exists, each anchor is one of its headings (GitHub's slugs) or an explicit anchor.
    if let Ok(runbook) = std::fs::read_to_string(root().join("RUNBOOK.md")) {
        let slugs: BTreeSet<String> = runbook
            .lines()
            .filter_map(|l| l.strip_prefix('#').map(|h| h.trim_start_matches('#').trim()))
            .map(|h| {
                h.to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect();
        for a in RUNBOOK_ANCHORS {
            let explicit = runbook.contains(&format!("id=\"{a}\"")) || runbook.contains(&format!("name=\"{a}\""));
            assert!(slugs.contains(*a) || explicit, "RUNBOOK.md has no heading (or <a id>) for #{a}");
        }
    }
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let promtool = venv().join("bin/promtool");
    let (ok, out) = run(Command::new(&promtool).args(["check", "rules", "docker/prometheus/alerts.yml"]), None);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = run(Command::new(&promtool).args(["test", "rules", "docker/prometheus/alerts.test.yml"]), None);
    assert!(ok, "promtool test rules:\n{out}");
    let (ok, out) = run(
        Command::new(venv().join("bin/python")).args(["scripts/validate-alerts.py", "docker/prometheus/alerts.yml"]),
        None,
    );
    assert!(ok, "scripts/validate-alerts.py:\n{out}");
}
