//! No container engine runs here, so the deployment files are checked against
//! the code instead: every REPORTD__ variable they set must load into Settings,
//! every command must be one the binary has, and the k8s ConfigMap must be
//! config.toml.
use std::path::Path;

use reportd::config::Settings;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Loads Settings with these variables set (and nothing else from the environment).
fn load_with(vars: &[(String, String)], what: &str) {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        Settings::load(Path::new("no-such-config.toml"), false).map_err(|e| format!("{what}: {e}"))?;
        Ok(())
    });
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

#[test]
fn compose_environment_loads_into_settings() {
    let docs = yaml("docker/compose.yml");
    let doc = &docs[0];
    let env = reportd_vars(&doc["x-reportd"]["environment"]);
    assert!(env.len() >= 10, "compose sets the backends: {env:?}");
    load_with(&env, "docker/compose.yml");
    let services = doc["services"].as_hash().unwrap();
    for (name, svc) in services {
        if let Some(cmd) = svc["command"].as_str().or_else(|| svc["command"][0].as_str())
            && svc["image"].as_str().is_some_and(|i| i.starts_with("reportd"))
        {
            assert!(["serve", "api", "worker", "migrate"].contains(&cmd), "{name:?} runs {cmd}");
        }
    }
}

#[test]
fn kubernetes_manifests_match_the_code() {
    let env_cm = &yaml("docker/k8s/env-configmap.yaml")[0];
    let mut vars = reportd_vars(&env_cm["data"]);
    for doc in yaml("docker/k8s/secret.example.yaml") {
        vars.extend(reportd_vars(&doc["stringData"]));
    }
    load_with(&vars, "docker/k8s env-configmap + secret");

    for (file, mode) in [("docker/k8s/api-deployment.yaml", "api"), ("docker/k8s/worker-deployment.yaml", "worker")] {
        let d = &yaml(file)[0];
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["args"][0].as_str(), Some(mode), "{file}");
        let env: Vec<(String, String)> = container["env"]
            .as_vec()
            .map(|v| v.iter().filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string()))).collect())
            .unwrap_or_default();
        load_with(&env.into_iter().filter(|(k, _)| k.starts_with("REPORTD__")).collect::<Vec<_>>(), file);
    }

    // The ConfigMap is config.toml, listening on all interfaces.
    let cm = &yaml("docker/k8s/configmap.yaml")[0];
    let embedded = cm["data"]["config.toml"].as_str().unwrap();
    let original = std::fs::read_to_string(root().join("config.toml")).unwrap();
    let expected = original.replacen("host = \"127.0.0.1\"", "host = \"0.0.0.0\"", 1);
    assert_eq!(embedded.trim_end(), expected.trim_end(), "run docker/k8s/gen-configmap.sh");
}

#[test]
fn the_dockerfile_runs_the_binary_with_settings_it_understands() {
    let text = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    assert!(text.contains("ENTRYPOINT [\"reportd\"]"));
    let vars: Vec<(String, String)> = text
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| k.starts_with("REPORTD__"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(!vars.is_empty());
    load_with(&vars, "docker/Dockerfile");
}
