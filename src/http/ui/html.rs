//! The dashboard's HTML, built with `format!`: every value that comes from
//! the store or a request goes through `E` (escaped for text and quoted
//! attributes), numbers are written by Rust. The same functions render the
//! first page and the parts the page's script swaps in every few seconds,
//! so there is one renderer, on the server.
use std::fmt::{self, Display, Write as _};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::data::{JobRow, Overview, Worker};

/// Text escaped for HTML element content and double- or single-quoted attributes.
pub(crate) struct E<'a>(pub(crate) &'a str);

impl Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The parts of the page the script refreshes, by element id (`part-…`).
#[derive(Debug, Serialize)]
pub(crate) struct Parts {
    pub(crate) counts: String,
    pub(crate) queue: String,
    pub(crate) throughput: String,
    pub(crate) errors: String,
    pub(crate) recent: String,
    pub(crate) workers: String,
    pub(crate) updated: String,
}

pub(crate) fn parts(o: &Overview) -> Parts {
    Parts {
        counts: counts(o),
        queue: queue(o),
        throughput: throughput(o),
        errors: jobs_table(&o.errors, o.generated_at, true),
        recent: jobs_table(&o.recent, o.generated_at, false),
        workers: workers(&o.workers, o.generated_at),
        updated: format!("updated {}", o.generated_at.format("%H:%M:%S UTC")),
    }
}

/// `12 s`, `4 min`, `3 h`, `2 d`.
pub(crate) fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 10.0 => format!("{s:.1} s"),
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        s => format!("{:.0} d", s / 86_400.0),
    }
}

fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let s = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
    format!("<time datetime=\"{}\" title=\"{}\">{} ago</time>", E(&at.to_rfc3339()), E(&at.to_rfc3339()), duration(s))
}

fn or_dash(v: Option<f64>) -> String {
    v.map(duration).unwrap_or_else(|| "–".into())
}

fn tile(label: &str, value: &str, class: &str, test_id: &str) -> String {
    format!("<div class=\"tile {class}\"><span class=\"value\" data-test=\"{test_id}\">{value}</span><span class=\"label\">{label}</span></div>")
}

fn counts(o: &Overview) -> String {
    let c = &o.counts;
    [
        tile("queued", &c.queued.to_string(), "queued", "count-queued"),
        tile("processing", &c.processing.to_string(), "processing", "count-processing"),
        tile("done", &c.done.to_string(), "done", "count-done"),
        tile("error", &c.error.to_string(), "error", "count-error"),
    ]
    .concat()
}

fn queue(o: &Overview) -> String {
    let q = &o.queue;
    [
        tile("queue depth", &q.depth.to_string(), "", "queue-depth"),
        tile("oldest queued", &or_dash(q.lag_seconds), "", "queue-lag"),
        tile("outbox unsent", &q.outbox_pending.to_string(), "", "outbox-pending"),
        tile("outbox lag", &or_dash(q.outbox_lag_seconds), "", "outbox-lag"),
    ]
    .concat()
}

fn throughput(o: &Overview) -> String {
    let w = &o.window;
    let rate = w.done as f64 / w.minutes as f64;
    let mut html = [
        tile(&format!("done, last {} min", w.minutes), &w.done.to_string(), "done", "window-done"),
        tile(&format!("failed, last {} min", w.minutes), &w.failed.to_string(), "error", "window-failed"),
        tile("done / min", &format!("{rate:.1}"), "", "window-rate"),
        tile("p50 submit→done", &or_dash(w.p50_seconds), "", "window-p50"),
        tile("p95 submit→done", &or_dash(w.p95_seconds), "", "window-p95"),
    ]
    .concat();
    html.push_str(&chart(o));
    html
}

/// Jobs finished per minute as stacked bars (done below, failed above), in
/// SVG attributes only, so the page's Content-Security-Policy holds.
fn chart(o: &Overview) -> String {
    let minutes = &o.window.per_minute;
    let top = minutes.iter().map(|m| m.done + m.failed).max().unwrap_or(0).max(1) as f64;
    let (step, height, bar) = (40.0, 80.0, 28.0);
    let width = minutes.len().max(1) as f64 * step;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {}\" role=\"img\" aria-label=\"jobs finished per minute\">",
        height + 14.0
    );
    for (i, m) in minutes.iter().enumerate() {
        let x = i as f64 * step + (step - bar) / 2.0;
        let done_h = m.done as f64 / top * height;
        let failed_h = m.failed as f64 / top * height;
        let _ = write!(
            svg,
            "<g><title>{} — {} done, {} failed</title>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{done_h:.1}\" fill=\"#2e7d32\"/>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{failed_h:.1}\" fill=\"#c62828\"/></g>",
            E(&m.minute.format("%H:%M").to_string()),
            m.done,
            m.failed,
            height - done_h,
            height - done_h - failed_h,
        );
    }
    if let (Some(first), Some(last)) = (minutes.first(), minutes.last()) {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{width}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            height + 12.0,
            first.minute.format("%H:%M"),
            height + 12.0,
            last.minute.format("%H:%M"),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn short(id: &uuid::Uuid) -> String {
    id.simple().to_string().chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect()
}

fn jobs_table(jobs: &[JobRow], now: DateTime<Utc>, actions: bool) -> String {
    if jobs.is_empty() {
        let what = if actions { "No job is in error." } else { "No job yet." };
        return format!("<p class=\"empty\">{what}</p>");
    }
    let mut html = String::from("<table><thead><tr><th>job</th><th>tenant</th><th>title</th><th>format</th><th>status</th><th>attempts</th><th>created</th>");
    html.push_str(if actions { "<th>error</th><th></th></tr></thead><tbody>" } else { "<th>links</th></tr></thead><tbody>" });
    for j in jobs {
        let id = j.id.to_string();
        let _ = write!(
            html,
            "<tr data-id=\"{id}\" data-status=\"{status}\"><td><code title=\"{id}\">…{short}</code></td><td>{tenant}</td>\
             <td>{title}</td><td>{format}</td><td><span class=\"badge {status}\">{status}</span></td><td>{attempts}</td><td>{created}</td>",
            short = short(&j.id),
            status = j.status.as_str(),
            tenant = E(&j.tenant),
            title = E(&j.title),
            format = j.format.as_str(),
            attempts = j.attempts,
            created = ago(now, j.created_at),
        );
        if actions {
            let _ = write!(
                html,
                "<td class=\"error-text\">{}</td><td class=\"actions\">\
                 <button type=\"button\" data-action=\"retry\" data-id=\"{id}\">Retry</button> \
                 <button type=\"button\" class=\"danger\" data-action=\"delete\" data-id=\"{id}\">Delete</button></td></tr>",
                E(j.error.as_deref().unwrap_or("")),
            );
        } else {
            let download = match &j.download_url {
                Some(url) => format!(" · <a href=\"{}\" data-test=\"download\">download</a>", E(url)),
                None => String::new(),
            };
            let _ = write!(html, "<td><a href=\"{}\">status</a>{download}</td></tr>", E(&j.status_url));
        }
    }
    html.push_str("</tbody></table>");
    html
}

fn workers(workers: &[Worker], now: DateTime<Utc>) -> String {
    if workers.is_empty() {
        return "<p class=\"empty\">No worker has reported in the last hour.</p>".into();
    }
    let mut html = String::from(
        "<table><thead><tr><th>worker</th><th>host</th><th>version</th><th>state</th><th>in flight</th><th>done</th>\
         <th>failed</th><th>started</th><th>last seen</th></tr></thead><tbody>",
    );
    for w in workers {
        let i = &w.info;
        let state = if w.live { "<span class=\"badge done\">live</span>" } else { "<span class=\"badge stale\">not seen</span>" };
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            E(&i.owner),
            E(&i.host),
            E(&i.version),
            i.in_flight,
            i.jobs_done,
            i.jobs_failed,
            ago(now, i.started_at),
            ago(now, i.seen_at),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The whole dashboard. `csrf` is the token the script sends with changes.
pub(crate) fn dashboard(o: &Overview, csrf: Option<&str>, tenant: &str) -> String {
    let p = parts(o);
    let logout = match csrf {
        Some(token) => format!(
            "<form method=\"post\" action=\"/ui/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Log out</button></form>",
            E(token)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reportd</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf-token\" content=\"{csrf}\"><link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\"></head>\
         <body><header><h1>reportd</h1><span class=\"who\">operator · {tenant}</span><span id=\"part-updated\" class=\"updated\">{updated}</span>{logout}</header>\
         <div id=\"flash\" role=\"status\"></div>\
         <main><section><h2>Jobs by state</h2><div id=\"part-counts\" class=\"tiles\">{counts}</div></section>\
         <section><h2>Queue</h2><div id=\"part-queue\" class=\"tiles\">{queue}</div></section>\
         <section class=\"wide\"><h2>Throughput and latency</h2><div id=\"part-throughput\" class=\"tiles\">{throughput}</div></section>\
         <section class=\"wide\"><h2>Jobs in error</h2><div id=\"part-errors\">{errors}</div></section>\
         <section class=\"wide\"><h2>Recent jobs</h2><div id=\"part-recent\">{recent}</div></section>\
         <section class=\"wide\"><h2>Workers</h2><div id=\"part-workers\">{workers}</div></section></main>\
         <script src=\"/ui/assets/dashboard.js\"></script></body></html>",
        csrf = E(csrf.unwrap_or("")),
        tenant = E(tenant),
        updated = E(&p.updated),
        counts = p.counts,
        queue = p.queue,
        throughput = p.throughput,
        errors = p.errors,
        recent = p.recent,
        workers = p.workers,
    )
}

/// The login form, with why the last attempt failed, if it did.
pub(crate) fn login(message: Option<&str>) -> String {
    let message = match message {
        Some(m) => format!("<p class=\"problem\" data-test=\"login-error\">{}</p>", E(m)),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reportd · log in</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\"></head>\
         <body class=\"login\"><form method=\"post\" action=\"/ui/login\"><h1>reportd</h1>{message}\
         <label for=\"key\">Operator API key</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Log in</button>\
         <p class=\"hint\">Make one with <code>reportd keys create --tenant ops --role operator</code>.</p></form></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dangerous_character_is_escaped() {
        let s = E("<script>alert('x') & \"y\"</script>").to_string();
        assert_eq!(s, "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
        assert!(login(Some("<b>bad</b>")).contains("&lt;b&gt;bad&lt;/b&gt;"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.34), "0.3 s");
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(600.0), "10 min");
        assert_eq!(duration(7200.0), "2 h");
        assert_eq!(duration(3.0 * 86_400.0), "3 d");
    }
}
