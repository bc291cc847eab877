//! API keys and tenants: keys made while the API runs turn authentication
//! on; every route but /health, /ready and signed downloads wants a key; no
//! tenant sees another's jobs; operators see all; revoked keys stop working.
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

async fn status_of(r: reqwest::Response) -> (u16, Value) {
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Waits until requests without a key are refused (keys were just created).
async fn until_auth_is_on(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.client.get(app.url("/jobs")).send().await.unwrap().status() != 401 {
        assert!(Instant::now() < deadline, "creating a key did not turn authentication on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn without_keys_a_loopback_api_is_open_and_jobs_belong_to_the_default_tenant() {
    let app = spawn_app().await;
    let id = app.submit(&report("xlsx", "open", 2)).await;
    app.wait_until_done(&id).await;
    let job = app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(job.tenant, "default");
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 200);
}

#[actix_rt::test]
async fn tenants_see_only_their_own_jobs_and_operators_see_all() {
    let app = spawn_app().await;
    let open = app.submit(&report("xlsx", "before any key", 2)).await;
    let (acme, globex, ops) = (
        create_key(&app.cli_env(), "acme", "client"),
        create_key(&app.cli_env(), "globex", "client"),
        create_key(&app.cli_env(), "ops", "operator"),
    );
    until_auth_is_on(&app).await;
    let (acme, globex, ops) = (app.as_key(&acme), app.as_key(&globex), app.as_key(&ops));

    // No key, or a bad one: 401 JSON with WWW-Authenticate.
    for (path, key) in [("/jobs", None), ("/status/00000000-0000-0000-0000-000000000000", None), ("/jobs", Some("rpd_nope"))] {
        let mut req = app.client.get(app.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let r = app.client.post(app.url("/generate")).json(&report("xlsx", "anonymous", 1)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Health and readiness stay open (probes carry no keys).
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(app.url("/ready")).send().await.unwrap().status(), 200);

    let mine = acme.submit(&report("xlsx", "acme's", 3)).await;
    let status = acme.wait_until_done(&mine).await;
    assert_eq!(app.store.get(mine.parse().unwrap()).await.unwrap().unwrap().tenant, "acme");

    // Another tenant: the job does not exist, whatever it tries.
    let (code, body) = status_of(globex.get(&format!("/status/{mine}")).await).await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("not_found")));
    let r = globex.client.post(app.url(&format!("/jobs/{mine}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = globex.client.delete(app.url(&format!("/jobs/{mine}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let listed: Value = globex.get("/jobs").await.json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 0, "{listed}");
    let r = globex.get("/jobs?tenant=acme").await;
    assert_eq!(r.status(), 403, "a client cannot list another tenant");
    // The jobs of the open period are the default tenant's, not acme's.
    assert_eq!(acme.get(&format!("/status/{open}")).await.status(), 404);

    // The signed link is the capability: it works without a key, for whoever holds it.
    let link = status["download_url"].as_str().unwrap();
    assert_eq!(app.client.get(app.url(link)).send().await.unwrap().status(), 200);

    // Operators see every tenant, and read metrics; clients may not.
    assert_eq!(ops.get(&format!("/status/{mine}")).await.status(), 200);
    let all: Value = ops.get("/jobs?limit=500").await.json().await.unwrap();
    let ids: Vec<&str> = all["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&mine.as_str()) && ids.contains(&open.as_str()), "{ids:?}");
    let only: Value = ops.get("/jobs?tenant=acme").await.json().await.unwrap();
    assert_eq!(only["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(ops.get("/metrics").await.status(), 200);
    assert_eq!(acme.get("/metrics").await.status(), 403);
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 401);
}

#[actix_rt::test]
async fn idempotency_keys_are_per_tenant_and_a_conflict_names_no_job() {
    let app = spawn_app().await;
    let (a, b) = (create_key(&app.cli_env(), "a", "client"), create_key(&app.cli_env(), "b", "client"));
    until_auth_is_on(&app).await;
    let (a, b) = (app.as_key(&a), app.as_key(&b));
    let body = report("xlsx", "same", 2);
    let post = |who: &As<'_>, body: &Value| {
        who.client.post(app.url("/generate")).header("Idempotency-Key", "k-1").json(body).send()
    };
    let first: Value = post(&a, &body).await.unwrap().json().await.unwrap();
    let other: Value = post(&b, &body).await.unwrap().json().await.unwrap();
    assert_ne!(first["id"], other["id"], "the same key from another tenant is another job");
    let r = post(&a, &report("xlsx", "different", 2)).await.unwrap();
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(text.contains("idempotency_conflict"));
    for id in [&first["id"], &other["id"]] {
        assert!(!text.contains(id.as_str().unwrap()), "a 409 names no job: {text}");
    }
}

#[actix_rt::test]
async fn a_revoked_key_is_refused_within_seconds() {
    let app = spawn_app().await;
    let key = create_key(&app.cli_env(), "brief", "client");
    let _ops = create_key(&app.cli_env(), "ops", "operator");
    until_auth_is_on(&app).await;
    let brief = app.as_key(&key);
    assert_eq!(brief.get("/jobs").await.status(), 200);
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .env_clear()
        .envs(app.cli_env())
        .args(["keys", "list", "--json"])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(!listed.contains(&key), "keys list never shows a key");
    let id = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|k| k["tenant"] == "brief")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .env_clear()
        .envs(app.cli_env())
        .args(["keys", "revoke", &id])
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    while brief.get("/jobs").await.status() != 401 {
        assert!(Instant::now() < deadline, "the revoked key still works after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn keys_from_the_settings_work_as_hashes() {
    use sha2::{Digest, Sha256};
    let key = "rpd_static-test-key-0123456789abcdef";
    let entry = format!("acme:client:{}", hex::encode(Sha256::digest(key)));
    let app = spawn_app_with(|s| s.auth.keys = vec![entry], reportd::actors::supervisor::Roles::SERVE, Default::default()).await;
    assert_eq!(app.client.get(app.url("/jobs")).send().await.unwrap().status(), 401, "keys exist: auth is on");
    let acme = app.as_key(key);
    let id = acme.submit(&report("pdf", "static", 2)).await;
    acme.wait_until_done(&id).await;
}

#[test]
fn an_api_on_a_public_address_without_keys_refuses_to_start_unless_auth_is_off() {
    let dir = tempfile::tempdir().unwrap();
    // Runs `reportd api` on 0.0.0.0: its exit status if it stopped, or None once it listens.
    let run = |mode: &str| {
        let log = dir.path().join(format!("{mode}.log"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
            .current_dir(dir.path())
            .env_clear()
            .env("REPORTD__DATA_DIR", dir.path().join("d"))
            .env("REPORTD__HTTP__HOST", "0.0.0.0")
            .env("REPORTD__HTTP__PORT", "0")
            .env("REPORTD__AUTH__MODE", mode)
            .arg("api")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = child.try_wait().unwrap() {
                return (Some(status), std::fs::read_to_string(&log).unwrap_or_default());
            }
            if text.contains("reportd listening") {
                child.kill().unwrap();
                child.wait().unwrap();
                return (None, text);
            }
            assert!(Instant::now() < deadline, "neither refused nor listened: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (status, err) = run("auto");
    assert!(status.is_some_and(|s| !s.success()), "it must refuse: {err}");
    assert!(err.contains("without authentication") && err.contains("auth.mode"), "{err}");
    let (status, err) = run("off");
    assert!(status.is_none(), "with auth.mode = \"off\" it serves: {err}");
    assert!(err.contains("AUTHENTICATION IS OFF"), "and says so: {err}");
}
