//! The CLI client (`reportd submit|status|download|jobs|retry|delete`) as a
//! script uses it: the binary against an app on port 0, files in a scratch
//! directory, exit codes and stdout checked; the progress bar through a pty.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use calamine::{Data, Reader, Xlsx};
use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
use serde_json::{Value, json};

use crate::helpers::*;

/// What one run of the binary left.
struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout, which must be exactly one JSON document.
    fn json(&self) -> Value {
        let docs: Vec<Value> = serde_json::Deserializer::from_slice(&self.stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.text(), self.stderr));
        assert_eq!(docs.len(), 1, "one JSON document on stdout: {}", self.text());
        docs.into_iter().next().unwrap()
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.text(), self.stderr);
        self
    }

    fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "stdout: {}\nstderr: {}", self.text(), self.stderr);
        self
    }
}

/// The binary, run in a scratch directory against one app (`REPORTD_URL`).
struct Cli {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(app: &TestApp) -> Self {
        let env = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("REPORTD_URL".into(), app.address.clone()),
        ];
        Cli { dir: tempfile::tempdir().unwrap(), env }
    }

    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), content).unwrap();
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None).await
    }

    /// Runs on a blocking thread: the app's actors share this test's runtime.
    async fn run_with_stdin(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Out {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"));
        cmd.current_dir(self.dir.path())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("reportd runs");
            if let Some(bytes) = stdin {
                let mut pipe = child.stdin.take().unwrap();
                std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &bytes));
            }
            let out = child.wait_with_output().unwrap();
            Out { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into() }
        })
        .await
        .unwrap()
    }
}

fn sheet(path: &Path) -> (Vec<String>, calamine::Range<Data>) {
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(std::fs::read(path).unwrap())).unwrap();
    let names = wb.sheet_names();
    let range = wb.worksheet_range(&names[0]).unwrap();
    (names, range)
}

/// A ten-column NDJSON file (text, number, integer, date, boolean, twice);
/// column 7 holds the row number.
fn ndjson_text(format: &str, title: &str, rows: u64) -> String {
    let kinds = ["text", "number", "integer", "date", "boolean"];
    let columns: Vec<Value> = (0..10).map(|j| json!({"name": format!("c{j}"), "type": kinds[j % 5]})).collect();
    let mut out = format!("{}\n", json!({"format": format, "title": title, "columns": columns}));
    for i in 0..rows {
        let date = format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
        out.push_str(&format!(
            "[\"Região {i}\",{},{},\"{date}\",{},\"Cidade {}\",{},{i},\"{date}\",{}]\n",
            i as f64 * 0.5, i % 1000, i % 3 == 0, i % 211, i as f64 * 1.5, i % 2 == 0
        ));
    }
    out
}

#[actix_rt::test]
async fn submit_a_json_body_wait_and_download_with_flags_over_its_fields() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    cli.write("vendas.json", report("xlsx", "Vendas", 3).to_string());

    let out = cli.run(&["submit", "vendas.json", "--wait", "-o", "vendas.xlsx"]).await.ok();
    let id: uuid::Uuid = out.text().trim().parse().expect("human output: the job id alone on stdout");
    assert!(out.stderr.contains("done"), "{}", out.stderr);
    let (names, range) = sheet(&cli.path("vendas.xlsx"));
    assert_eq!(names, ["Vendas"]);
    assert_eq!(range.get_size(), (4, 5));
    assert_eq!(range.get((1, 0)), Some(&Data::String("Região 0 — ção".into())));
    assert_eq!(app.status(&id.to_string()).await["status"], "done");

    let out = cli.run(&["submit", "vendas.json", "--format", "pdf", "--title", "Relatório CLI", "-o", "r.pdf", "--json"]).await.ok();
    let status = out.json();
    assert_eq!((status["status"].as_str(), status["format"].as_str()), (Some("done"), Some("pdf")), "{status}");
    assert_eq!(status["title"], "Relatório CLI");
    assert!(pdf_pages(&std::fs::read(cli.path("r.pdf")).unwrap())[0].contains("Relatório CLI"));

    // No format, no title: xlsx, and the file's name.
    let body = report("xlsx", "x", 2);
    cli.write("sem_titulo.json", json!({"columns": body["columns"], "rows": body["rows"]}).to_string());
    let status = cli.run(&["submit", "sem_titulo.json", "-o", ".", "--json"]).await.ok().json();
    assert_eq!((status["title"].as_str(), status["format"].as_str()), (Some("sem_titulo"), Some("xlsx")));
    assert!(cli.path("sem_titulo.xlsx").exists(), "-o DIR takes the server's file name");
}

#[actix_rt::test]
async fn submit_ndjson_files_and_stdin_streamed() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    cli.write("linhas.ndjson", ndjson_text("xlsx", "Linhas", 1000));

    let status = cli.run(&["submit", "linhas.ndjson", "--wait", "-o", "linhas.xlsx", "--json"]).await.ok().json();
    assert_eq!((status["status"].as_str(), status["rows"].as_u64()), (Some("done"), Some(1000)), "{status}");
    let (_, range) = sheet(&cli.path("linhas.xlsx"));
    assert_eq!(range.get_size(), (1001, 10));
    assert_eq!(range.get((1000, 7)), Some(&Data::Float(999.0)));

    cli.write("linhas.jsonl", format!("\n{}", ndjson_text("xlsx", "Linhas", 20)));
    let status = cli.run(&["submit", "linhas.jsonl", "--format", "pdf", "--title", "Em PDF", "-o", "l.pdf", "--json"]).await.ok().json();
    assert_eq!((status["format"].as_str(), status["title"].as_str()), (Some("pdf"), Some("Em PDF")));
    assert!(pdf_pages(&std::fs::read(cli.path("l.pdf")).unwrap())[0].contains("Em PDF"));

    // stdin: without --wait, the server's 202 answer.
    let stdin = ndjson_text("xlsx", "Da entrada", 50).into_bytes();
    let out = cli.run_with_stdin(&["submit", "-", "--input-format", "ndjson", "--json"], Some(stdin)).await.ok();
    let accepted = out.json();
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["status_url"], format!("/status/{id}"));
    let status = app.wait_until_done(id).await;
    assert_eq!((status["title"].as_str(), status["rows"].as_u64()), (Some("Da entrada"), Some(50)));
}

/// Every kind of column, and values that only look like numbers or dates.
const CSV: &str = "Nome,Qtd,Preço,Dia,Quando,Ativo,CEP,Nota,Cod,Taxa,Antigo\n\
\"Silva, Ana\",3,10.5,2026-01-31,2026-01-31T10:00:00Z,true,01310,,+1,1e3,1899-12-31\n\
Bob,4,11,2026-02-01,2026-02-01T12:30:00-03:00,FALSE,20040,\"diz \"\"olá\"\"\",2,-0.5,2026-01-01\n";

#[actix_rt::test]
async fn submit_csv_with_inferred_or_given_types() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    cli.write("clientes.csv", CSV);

    let status = cli.run(&["submit", "clientes.csv", "-o", "c.xlsx", "--json"]).await.ok().json();
    assert_eq!((status["title"].as_str(), status["rows"].as_u64()), (Some("clientes"), Some(2)), "{status}");
    let (_, r) = sheet(&cli.path("c.xlsx"));
    let header: Vec<String> = (0..11).map(|c| r.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(header, ["Nome", "Qtd", "Preço", "Dia", "Quando", "Ativo", "CEP", "Nota", "Cod", "Taxa", "Antigo"]);
    assert_eq!(r.get((1, 0)), Some(&Data::String("Silva, Ana".into())));
    assert_eq!(r.get((1, 1)), Some(&Data::Float(3.0)));
    assert_eq!(r.get((1, 2)), Some(&Data::Float(10.5)));
    match (r.get((1, 3)), r.get((2, 4))) {
        (Some(Data::DateTime(d)), Some(Data::DateTime(t))) => {
            assert_eq!(d.as_datetime().unwrap().date().to_string(), "2026-01-31");
            assert_eq!(t.as_datetime().unwrap().to_string(), "2026-02-01 15:30:00", "converted to UTC");
        }
        other => panic!("date and datetime cells: {other:?}"),
    }
    assert_eq!((r.get((1, 5)), r.get((2, 5))), (Some(&Data::Bool(true)), Some(&Data::Bool(false))));
    assert_eq!(r.get((1, 6)), Some(&Data::String("01310".into())), "a leading zero keeps it text");
    assert!(matches!(r.get((1, 7)), None | Some(Data::Empty)), "an empty cell is null: {:?}", r.get((1, 7)));
    assert_eq!(r.get((2, 7)), Some(&Data::String("diz \"olá\"".into())));
    assert_eq!(r.get((2, 8)), Some(&Data::String("2".into())), "`+1` is not a JSON number: the column is text");
    assert_eq!((r.get((1, 9)), r.get((2, 9))), (Some(&Data::Float(1000.0)), Some(&Data::Float(-0.5))));
    assert_eq!(r.get((2, 10)), Some(&Data::String("2026-01-01".into())), "1899 is no spreadsheet date: text");

    // --columns: the types given win; the rest are still inferred.
    let args = ["submit", "clientes.csv", "--columns", "Qtd:text,CEP:integer", "-o", "g.xlsx", "--title", "Tipos"];
    cli.run(&args).await.ok();
    let (names, r) = sheet(&cli.path("g.xlsx"));
    assert_eq!(names, ["Tipos"]);
    assert_eq!(r.get((1, 1)), Some(&Data::String("3".into())));
    assert_eq!(r.get((1, 6)), Some(&Data::Float(1310.0)));
    assert_eq!(r.get((1, 2)), Some(&Data::Float(10.5)));

    // stdin, inferred (spooled for the first pass) and fully typed (streamed at once).
    let args = ["submit", "-", "--input-format", "csv", "--title", "Entrada", "-o", "s.xlsx"];
    cli.run_with_stdin(&args, Some(CSV.as_bytes().to_vec())).await.ok();
    assert_eq!(sheet(&cli.path("s.xlsx")).1.get((2, 1)), Some(&Data::Float(4.0)));
    let args = ["submit", "-", "--input-format", "csv", "--title", "Tipada", "--columns", "a:text,b:integer", "-o", "t.xlsx"];
    cli.run_with_stdin(&args, Some(b"a,b\nx,1\ny,2\n".to_vec())).await.ok();
    assert_eq!(sheet(&cli.path("t.xlsx")).1.get((2, 1)), Some(&Data::Float(2.0)));

    // A value that does not fit a given type: the server refuses it by row and column.
    cli.write("ruim.csv", "a,n\nx,1\ny,abc\n");
    let out = cli.run(&["submit", "ruim.csv", "--columns", "n:integer"]).await.code(3);
    assert!(out.stderr.contains("validation_failed: ") && out.stderr.contains("rows[1][1]"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[actix_rt::test]
async fn exit_codes_tell_usage_refusals_and_an_unreachable_server_apart() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    cli.write("a.txt", "x");
    cli.write("ragged.csv", "a,b\n1,2\n3\n");
    let unknown = uuid::Uuid::now_v7().to_string();

    // 2: usage, clap's own and the client's.
    for args in [
        &["submit"][..],
        &["jobs", "--limit", "0"],
        &["status", "not-a-uuid"],
        &["submit", "a.txt"],
        &["submit", "missing.json"],
        &["submit", "-", "--wait"],
        &["submit", "ragged.csv"],
        &["download", &unknown, "-o", "-", "--json"],
        &["status", &unknown, "--url", "ftp://x"],
    ] {
        let out = cli.run(args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    let out = cli.run(&["submit", "ragged.csv"]).await;
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);

    // 3: a 4xx, printed as `code: message`; with --json, the server's error as the document.
    let out = cli.run(&["status", &unknown]).await.code(3);
    assert!(out.stderr.starts_with("not_found: "), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = cli.run(&["status", &unknown, "--json"]).await.code(3);
    assert_eq!(out.json()["error"]["code"], "not_found");
    cli.run(&["retry", &unknown]).await.code(3);
    cli.run(&["delete", &unknown]).await.code(3);

    // 4: nothing listens.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    for args in [&["status", &unknown, "--url", &closed][..], &["jobs", "--url", &closed]] {
        let out = cli.run(args).await.code(4);
        assert!(out.stderr.contains("unreachable"), "{}", out.stderr);
    }
    let out = cli.run(&["jobs", "--url", &closed, "--json"]).await.code(4);
    assert_eq!(out.json()["error"]["code"], "unreachable");

    // Documented in --help.
    for command in ["submit", "status", "download", "jobs", "retry", "delete"] {
        let help = cli.run(&[command, "--help"]).await.ok().text();
        assert!(help.contains("Exit codes") && help.contains("4  server unreachable"), "{command}: {help}");
    }
}

#[actix_rt::test]
#[allow(clippy::default_constructed_unit_structs)] // `Faults` has fields with fault-injection on
async fn a_job_that_fails_exits_1_under_wait_and_can_be_retried() {
    // A job whose payload is gone before any worker runs it fails at once (see failures.rs).
    let api = spawn_app_with(|s| s.queue.inline_payload_max = 0, Roles::API, Faults::default()).await;
    let cli = Cli::new(&api);
    cli.write("orfao.json", report("xlsx", "Órfão", 3).to_string());
    let submit = ["submit", "orfao.json", "--idempotency-key", "orfao-1", "--json"];
    let id = cli.run(&submit).await.ok().json()["id"].as_str().unwrap().to_string();
    let job = api.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    api.storage.delete(&job.payload_key).await.unwrap();
    api.stop().await;
    let app = spawn_in(api.data_dir.clone(), |s| s.retry.max_attempts = 1, Roles::SERVE, Faults::default()).await;
    let cli = Cli::new(&app);
    cli.write("orfao.json", report("xlsx", "Órfão", 3).to_string());

    // The same key and body: the same job, waited for until it fails.
    let out = cli.run(&[&submit[..], &["--wait"]].concat()).await.code(1);
    let status = out.json();
    assert_eq!((status["id"].as_str(), status["status"].as_str()), (Some(id.as_str()), Some("error")), "{status}");
    assert!(out.stderr.contains("payload is missing"), "{}", out.stderr);
    assert!(out.stderr.contains("same job as before"), "{}", out.stderr);
    let out = cli.run(&["submit", "orfao.json", "--idempotency-key", "orfao-1", "-o", "x.xlsx"]).await.code(1);
    assert_eq!(out.text().trim(), id);
    assert!(!cli.path("x.xlsx").exists());
    cli.run(&["download", &id]).await.code(1);

    let out = cli.run(&["retry", &id]).await.ok();
    assert_eq!(out.text().trim(), format!("{id} queued"));
    assert_eq!(app.wait_until_finished(&id).await["status"], "error");
    let answer = cli.run(&["retry", &id, "--json"]).await.ok().json();
    assert_eq!(answer["id"], id.as_str());
    drop(api);
}

#[actix_rt::test]
async fn jobs_status_download_and_delete() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.submit(&report("xlsx", &format!("Lista {i}"), 2)).await);
    }
    for id in &ids {
        app.wait_until_done(id).await;
    }

    let table = cli.run(&["jobs"]).await.ok().text();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS") && lines[0].contains("TITLE"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    for (line, id) in lines[1..].iter().zip(&ids) {
        assert!(line.starts_with(id.as_str()) && line.contains("done") && line.contains("Lista"), "{line}");
    }
    let out = cli.run(&["jobs", "--limit", "2"]).await.ok();
    assert_eq!(out.text().lines().count(), 3);
    assert!(out.stderr.contains(&format!("--cursor {}", ids[1])), "{}", out.stderr);
    let all = cli.run(&["jobs", "--limit", "1", "--all", "--json"]).await.ok().json();
    let listed: Vec<&str> = all["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let page = cli.run(&["jobs", "--limit", "2", "--json"]).await.ok().json();
    assert_eq!((page["jobs"].as_array().unwrap().len(), page["next_cursor"].as_str()), (2, Some(ids[1].as_str())));
    assert_eq!(cli.run(&["jobs", "--status", "error", "--json"]).await.ok().json()["jobs"], json!([]));

    let lines = cli.run(&["status", &ids[0], "--url", &format!("{}/", app.address)]).await.ok().text();
    for expected in [format!("id: {}", ids[0]), "status: done".into(), "title: Lista 0".into(), "rows: 2".into()] {
        assert!(lines.lines().any(|l| l == expected), "{expected} in {lines}");
    }
    assert!(!lines.contains("error:"), "null fields are left out: {lines}");
    let status = cli.run(&["status", &ids[0], "--json"]).await.ok().json();
    assert_eq!(status["title"], "Lista 0");

    // -o -: the report alone on stdout, byte for byte.
    let (_, _, expected) = app.download(&app.status(&ids[0]).await).await;
    let out = cli.run(&["download", &ids[0], "-o", "-"]).await.ok();
    assert_eq!(out.stdout, expected);
    // No -o: the name the server gives; the path on stdout.
    let out = cli.run(&["download", &ids[0]]).await.ok();
    assert_eq!(out.text().trim(), "Lista 0.xlsx");
    assert_eq!(std::fs::read(cli.path("Lista 0.xlsx")).unwrap(), expected);
    std::fs::create_dir(cli.path("sub")).unwrap();
    let saved = cli.run(&["download", &ids[1], "-o", "sub", "--json"]).await.ok().json();
    assert_eq!(saved["id"], ids[1].as_str());
    assert!(saved["path"].as_str().unwrap().ends_with("Lista 1.xlsx"), "{saved}");
    assert_eq!(saved["bytes"].as_u64(), Some(std::fs::metadata(cli.path("sub/Lista 1.xlsx")).unwrap().len()));

    let out = cli.run(&["retry", &ids[2]]).await.code(3);
    assert!(out.stderr.starts_with("not_failed: "), "{}", out.stderr);
    let deleted = cli.run(&["delete", &ids[2], "--json"]).await.ok().json();
    assert_eq!(deleted, json!({"id": ids[2], "status": "deleted"}));
    cli.run(&["status", &ids[2]]).await.code(3);
    assert_eq!(cli.run(&["delete", &ids[0]]).await.ok().text().trim(), format!("{} deleted", ids[0]));
}

#[actix_rt::test]
async fn the_key_goes_as_a_bearer_token_from_the_flag_or_the_environment() {
    let app = spawn_app().await;
    let key = create_key(&app.cli_env(), "acme", "client");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.client.get(app.url("/jobs")).send().await.unwrap().status() != 401 {
        assert!(Instant::now() < deadline, "creating a key did not turn authentication on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cli = Cli::new(&app);
    cli.write("acme.json", report("xlsx", "Acme", 2).to_string());

    let out = cli.run(&["jobs"]).await.code(3);
    assert!(out.stderr.starts_with("unauthorized: "), "{}", out.stderr);
    cli.run(&["jobs", "--key", "rpd_not_a_key"]).await.code(3);
    cli.run(&["submit", "acme.json"]).await.code(3);

    let cli = cli.with_env("REPORTD_KEY", &key);
    cli.run(&["submit", "acme.json", "-o", "acme.xlsx"]).await.ok();
    assert_eq!(sheet(&cli.path("acme.xlsx")).0, ["Acme"]);
    let jobs = cli.run(&["jobs", "--json", "--key", &key]).await.ok().json();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    let help = cli.run(&["jobs", "--help"]).await.ok().text();
    assert!(!help.contains(&key), "--help never shows the key");
}

/// `--wait` on a terminal: indicatif draws on stderr, here a pty made by
/// util-linux's `script`. With `progress` in the status, the bar counts rows
/// towards the total; without it, a spinner names the status.
#[actix_rt::test]
async fn wait_draws_a_progress_bar_on_a_terminal() {
    const ROWS: u64 = 200_000;
    let app = spawn_app().await;
    let cli = Cli::new(&app).with_env("TERM", "xterm-256color");
    cli.write("grande.ndjson", ndjson_text("xlsx", "Grande", ROWS));
    let command = format!("'{}' submit grande.ndjson --wait", env!("CARGO_BIN_EXE_reportd"));
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(cli.dir.path())
        .env_clear()
        .envs(cli.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-qfec", &command, "/dev/null"])
        .stdin(Stdio::null());
    let terminal = tokio::task::spawn_blocking(move || cmd.output().expect("util-linux `script` runs"));

    // Meanwhile: does the server report progress on this checkout?
    let mut server_counts = false;
    while !terminal.is_finished() {
        let page: Value = app.client.get(app.url("/jobs?status=processing")).send().await.unwrap().json().await.unwrap();
        for job in page["jobs"].as_array().into_iter().flatten() {
            let status = app.status(job["id"].as_str().unwrap()).await;
            server_counts |= status["progress"]["total"].as_u64().is_some();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = terminal.await.unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("done in"), "{screen}");
    assert!(screen.contains("\r\x1b[2K"), "indicatif redraws the line in place: {screen:?}");
    if std::env::var_os("REPORTD_TEST_SHOW_PTY").is_some() {
        eprintln!("{screen:?}");
    }

    let counts: Vec<u64> = screen
        .match_indices(&format!("/{ROWS} rows"))
        .filter_map(|(i, _)| screen[..i].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    if server_counts || !counts.is_empty() {
        assert!(counts.len() >= 2, "a bar counting rows: {screen:?}");
        assert!(counts.windows(2).all(|w| w[0] <= w[1]) && counts.last() > counts.first(), "growing counts: {counts:?}");
        assert!(screen.contains('%'), "{screen:?}");
    } else {
        // The spinner fallback: the status's name, redrawn.
        assert!(screen.contains("processing") || screen.contains("queued"), "the status name: {screen:?}");
        let frames: std::collections::BTreeSet<char> = screen.chars().filter(|c| ('\u{2801}'..='\u{28ff}').contains(c)).collect();
        assert!(frames.len() >= 2, "spinner frames (braille dots): {screen:?}");
    }
}
