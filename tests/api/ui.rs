//! The operators' dashboard at /ui: who may see it (and act through it), what
//! its JSON says, and, in headless Chromium driven through chromedriver, an
//! operator who logs in, watches a job finish, and retries a failed one.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
use serde_json::Value;

use crate::helpers::*;

/// A urlencoded form body of one field, as a browser posts it.
fn form(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish()
}

/// An app with an operator and a client key, once authentication is on.
async fn keyed_app(faults: Faults, roles: Roles) -> (TestApp, String, String) {
    let app = spawn_app_with(|s| s.retry.max_attempts = 2, roles, faults).await;
    let operator = create_key(&app.cli_env(), "ops", "operator");
    let client = create_key(&app.cli_env(), "acme", "client");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.client.get(app.url("/ui/api/overview")).send().await.unwrap().status() != 401 {
        assert!(Instant::now() < deadline, "creating keys did not turn authentication on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (app, operator, client)
}

/// A client that shows redirects instead of following them, as a browser's first hop.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The session cookie's `name=value` from a login's answer.
fn session_cookie(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[actix_rt::test]
async fn the_dashboard_is_for_operators_and_changes_need_its_own_page() {
    let (app, operator, client) = keyed_app(Faults::default(), Roles::SERVE).await;
    let http = no_redirects();
    let origin = app.address.clone();

    // No key: the login form (and 401 for the JSON routes).
    let r = http.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("name=\"key\""), "the login form");
    let r = http.get(app.url("/ui/api/overview")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");

    // A client's key: 403, as a bearer or through the form.
    assert_eq!(http.get(app.url("/ui")).bearer_auth(&client).send().await.unwrap().status(), 403);
    assert_eq!(http.get(app.url("/ui/api/overview")).bearer_auth(&client).send().await.unwrap().status(), 403);
    let r = http.post(app.url("/ui/login")).header("origin", &origin).header("content-type", "application/x-www-form-urlencoded").body(form("key", &client)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http.post(app.url("/ui/login")).header("origin", &origin).header("content-type", "application/x-www-form-urlencoded").body(form("key", "rpd_nope")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // An operator's key as a bearer: the page, with its security headers.
    let r = http.get(app.url("/ui")).bearer_auth(&operator).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(r.text().await.unwrap().contains("Jobs by state"));

    // A login forged by another site is refused; the real one sets a cookie without the key.
    let r = http.post(app.url("/ui/login")).header("origin", "http://evil.example").header("content-type", "application/x-www-form-urlencoded").body(form("key", &operator)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = http.post(app.url("/ui/login")).header("origin", &origin).header("content-type", "application/x-www-form-urlencoded").body(form("key", &operator)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui");
    let cookie = session_cookie(&r);
    assert!(!cookie.contains(&operator) && !cookie.contains(&operator[4..]), "the key is not in the cookie");
    let page = http.get(app.url("/ui")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf-token\" content=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    assert_eq!(csrf.len(), 64, "{page}");

    // A job in error, retried through the session: only with the token and from the same origin.
    let job = app.as_key(&client).submit(&report("xlsx", "kept", 2)).await;
    app.as_key(&client).wait_until_done(&job).await;
    let retry = |origin: &str, token: &str| {
        http.post(app.url(&format!("/ui/api/jobs/{job}/retry"))).header("cookie", &cookie).header("origin", origin).header("x-csrf-token", token).send()
    };
    assert_eq!(retry(&origin, "").await.unwrap().status(), 403, "no token");
    assert_eq!(retry("http://evil.example", &csrf).await.unwrap().status(), 403, "another site");
    let r = retry(&origin, &csrf).await.unwrap();
    assert_eq!(r.status(), 409, "passes the checks, reaches the retry: the job is done, not failed");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_failed");
    let status: Value = http.get(app.url(&format!("/ui/api/jobs/{job}"))).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["status"], "done");

    // Logging out ends the session in the store: the old cookie no longer works.
    let r = http.post(app.url("/ui/logout")).header("cookie", &cookie).header("origin", &origin).header("content-type", "application/x-www-form-urlencoded").body(form("csrf", &csrf)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(http.get(app.url("/ui/api/overview")).header("cookie", &cookie).send().await.unwrap().status(), 401);
}

#[actix_rt::test]
async fn without_keys_on_loopback_the_dashboard_is_open_like_every_route() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Jobs by state"));
    assert_eq!(app.client.get(app.url("/ui/api/overview")).send().await.unwrap().status(), 200);
    // Open is not forgeable: a change from another site is still refused.
    let id = app.submit(&report("pdf", "open", 1)).await;
    let r = app.client.delete(app.url(&format!("/ui/api/jobs/{id}"))).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
}

/// The overview's figures: counts, the queue and its lag, throughput and
/// latency over the window, the newest jobs with their links, the workers.
#[actix_rt::test]
async fn the_overview_reports_the_queue_throughput_latency_and_workers() {
    // An API alone: what it accepts waits in the queue.
    let api = spawn_app_with(|_| {}, Roles::API, Faults::default()).await;
    let waiting = api.submit(&report("xlsx", "waiting", 3)).await;
    let o: Value = api.client.get(api.url("/ui/api/overview")).send().await.unwrap().json().await.unwrap();
    assert_eq!(o["data"]["queue"]["depth"], 1, "{o}");
    assert!(o["data"]["queue"]["lag_seconds"].as_f64().is_some(), "{o}");
    assert_eq!(o["data"]["recent"][0]["id"], waiting.as_str());
    assert!(o["html"]["counts"].as_str().unwrap().contains("data-test=\"count-queued\">1<"), "{}", o["html"]["counts"]);
    api.stop().await;

    // Workers on the same data take it; more jobs finish.
    let app = spawn_in(api.data_dir.clone(), |_| {}, Roles::SERVE, Faults::default()).await;
    let mut ids = vec![waiting];
    for i in 0..3 {
        ids.push(app.submit(&report("pdf", &format!("timed {i}"), 5)).await);
    }
    for id in &ids {
        app.wait_until_done(id).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let o = loop {
        let o: Value = app.client.get(app.url("/ui/api/overview")).send().await.unwrap().json().await.unwrap();
        // Workers report every 5 s; wait for the report that counts these jobs.
        if o["data"]["workers"].as_array().is_some_and(|w| w.iter().any(|w| w["jobs_done"].as_i64() >= Some(3))) {
            break o;
        }
        assert!(Instant::now() < deadline, "no worker reported its jobs: {}", o["data"]["workers"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let d = &o["data"];
    assert_eq!(d["counts"]["done"], 4, "{d}");
    assert_eq!((d["queue"]["depth"].as_u64(), d["queue"]["lag_seconds"].as_f64()), (Some(0), None), "{d}");
    assert_eq!(d["window"]["done"], 4);
    assert_eq!(d["window"]["per_minute"].as_array().unwrap().iter().map(|m| m["done"].as_u64().unwrap()).sum::<u64>(), 4);
    let (p50, p95) = (d["window"]["p50_seconds"].as_f64().unwrap(), d["window"]["p95_seconds"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p95, "p50 {p50}, p95 {p95}");
    // The job that waited for workers was the slowest: it is the p95 (the 4th of 4).
    let waited = d["recent"].as_array().unwrap().iter().find(|j| j["id"] == ids[0].as_str()).unwrap();
    let created: chrono::DateTime<chrono::Utc> = waited["created_at"].as_str().unwrap().parse().unwrap();
    let finished: chrono::DateTime<chrono::Utc> = waited["finished_at"].as_str().unwrap().parse().unwrap();
    assert!((p95 - (finished - created).as_seconds_f64()).abs() < 0.01, "p95 {p95} is the waiting job's time");
    let recent = d["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["id"], ids[3].as_str(), "newest first");
    for job in recent {
        let link = job["download_url"].as_str().expect("a done job's link");
        assert_eq!(app.client.get(app.url(link)).send().await.unwrap().status(), 200);
    }
    assert!(o["html"]["recent"].as_str().unwrap().contains(&format!("data-id=\"{}\" data-status=\"done\"", ids[3])));
}

/// A title with markup is shown as text, on the page and in the parts.
#[actix_rt::test]
async fn job_titles_are_escaped() {
    let app = spawn_app().await;
    let id = app.submit(&report("xlsx", "<img src=x onerror=alert(1)>", 1)).await;
    app.wait_until_done(&id).await;
    let page = app.client.get(app.url("/ui")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;") && !page.contains("<img src=x"), "{page}");
}

#[cfg(feature = "fault-injection")]
fn doomed_twice() -> Faults {
    use reportd::faults::{FaultAction, FaultPoint, FaultRule};
    // Two failures use up max_attempts = 2; the retry's attempt succeeds.
    Faults::new(vec![FaultRule::new(FaultPoint::Render, "doomed", FaultAction::Fail("disk on fire".into()), Some(2))])
}

#[cfg(not(feature = "fault-injection"))]
fn doomed_twice() -> Faults {
    Faults::default()
}

/// chromedriver and a Chromium on PATH, or why the browser test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
    };
    let driver = find(&["chromedriver"]).ok_or("chromedriver is not on PATH")?;
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]).ok_or("chromium is not on PATH")?;
    Ok((driver, chromium))
}

/// chromedriver, in a process group of its own so the browsers it started go with it.
struct Driver {
    server: Server,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.server.id());
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
    }
}

fn start_driver(path: &std::path::Path) -> Driver {
    use std::os::unix::process::CommandExt;
    let (server, port) = spawn_on_some_port(None, |port| {
        let mut cmd = std::process::Command::new(path);
        cmd.arg(format!("--port={port}")).process_group(0);
        cmd
    });
    Driver { server, port }
}

struct Browser {
    client: fantoccini::Client,
    shots: PathBuf,
}

impl Browser {
    async fn open(driver: &Driver, chromium: &std::path::Path) -> Browser {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500"],
            }),
        );
        let client = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a chromedriver session");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser { client, shots }
    }

    /// The element `css` selects, once the page shows it (the page refreshes every 3 s).
    async fn wait_for(&self, css: &str, what: &str) -> fantoccini::elements::Element {
        match self.client.wait().at_most(Duration::from_secs(45)).every(Duration::from_millis(100)).for_element(fantoccini::Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                self.shot("failure").await;
                let source = self.client.source().await.unwrap_or_default();
                panic!("{what}: `{css}` never showed ({e}); page:\n{source}");
            }
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn log_in(&self, base: &str, key: &str) {
        self.client.goto(&format!("{base}/ui")).await.unwrap();
        let field = self.wait_for("input#key", "the login form").await;
        field.send_keys(key).await.unwrap();
        self.client.find(fantoccini::Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    }
}

#[actix_rt::test]
async fn an_operator_logs_in_watches_a_job_finish_and_retries_a_failed_one_in_chromium() {
    let (driver_path, chromium) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI must run the browser test, but {why}: run scripts/ui-deps.sh"),
        Err(why) => {
            eprintln!("skipping the browser test: {why} (scripts/ui-deps.sh installs chromium and chromium-driver)");
            return;
        }
    };
    let (app, operator, client) = keyed_app(doomed_twice(), Roles::SERVE).await;
    let driver = start_driver(&driver_path);
    let browser = Browser::open(&driver, &chromium).await;

    // A client's key is refused with a 403 page that says why.
    browser.log_in(&app.address, &client).await;
    let refusal = browser.wait_for("[data-test=login-error]", "the refusal of a client key").await;
    assert!(refusal.text().await.unwrap().contains("operator key"));
    browser.shot("login-refused").await;

    // The operator logs in and sees a job it did not submit itself move to done.
    browser.log_in(&app.address, &operator).await;
    browser.wait_for("#part-counts [data-test=count-done]", "the dashboard").await;
    let acme = app.as_key(&client);
    let fine = acme.submit(&report("xlsx", "quarterly sales", 40)).await;
    let row = browser.wait_for(&format!("#part-recent tr[data-id='{fine}'][data-status='done']"), "the job done").await;
    let link = row.find(fantoccini::Locator::Css("a[data-test=download]")).await.expect("a download link").attr("href").await.unwrap();
    assert!(link.is_some_and(|l| l.contains("sig=")));
    browser.shot("dashboard").await;

    if cfg!(feature = "fault-injection") {
        // A job fails into error, the operator retries it, and it is done.
        let doomed = acme.submit(&report("pdf", "doomed export", 5)).await;
        let retry = format!("#part-errors button[data-action=retry][data-id='{doomed}']");
        browser.wait_for(&retry, "the failed job with its Retry button").await.click().await.unwrap();
        browser.shot("retry-clicked").await;
        browser.wait_for(&format!("#part-recent tr[data-id='{doomed}'][data-status='done']"), "the retried job done").await;
        let flash = browser.client.find(fantoccini::Locator::Css("#flash")).await.unwrap().text().await.unwrap();
        assert!(flash.contains("queued again"), "{flash}");
        assert!(browser.client.find(fantoccini::Locator::Css(&retry)).await.is_err(), "no longer in error");
        let status = acme.wait_until_done(&doomed).await;
        assert_eq!(status["attempts"], 1, "a fresh attempt budget: {status}");
        browser.shot("retried").await;
    } else {
        eprintln!("the retry part needs --features fault-injection to make a job fail");
    }
    browser.client.close().await.unwrap();
}
