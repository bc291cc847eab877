//! Settings as they may be shown: `reportd config show` and any log line that
//! echoes them. Values of keys that look secret (password, secret, token, a
//! name ending in `key`) are replaced, passwords in URLs are masked, and so are
//! the secret pairs of `queue.librdkafka`.
use serde_json::Value;

const MASK: &str = "***";

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token"].iter().any(|w| n.contains(w)) || n.ends_with("key") || n.ends_with("key_id")
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`.
fn mask_url(s: &str) -> Option<String> {
    let mut url = url::Url::parse(s).ok()?;
    url.password()?;
    url.set_password(Some(MASK)).ok()?;
    Some(url.to_string())
}

/// `a=1,sasl.password=x` → `a=1,sasl.password=***`.
fn mask_pairs(s: &str) -> String {
    s.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_name(k.trim()) || k.contains("pem") => format!("{k}={MASK}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The value with every secret masked (and unset values left out, as TOML has no null).
pub fn redact(value: Value) -> Value {
    redact_under("", value)
}

fn redact_under(name: &str, value: Value) -> Value {
    match value {
        // Everything under a secret name (a map of tenants' secrets) is secret.
        Value::Object(map) if secret_name(name) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, redact_under(name, v))).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| {
                let v = redact_under(&k, v);
                (k, v)
            }).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redact_under(name, v)).collect()),
        Value::String(s) if s.is_empty() => Value::String(s),
        Value::String(_) if secret_name(name) => Value::String(MASK.into()),
        Value::String(s) if name == "librdkafka" => Value::String(mask_pairs(&s)),
        Value::String(s) => Value::String(mask_url(&s).unwrap_or(s)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::redact;

    #[test]
    fn secrets_are_masked_and_the_rest_is_kept() {
        let shown = redact(json!({
            "storage": {"secret_access_key": "abc", "access_key_id": "AKIA", "signing_key": "", "bucket": "reports"},
            "cache": {"redis_url": "rediss://:hunter2@redis:6380/0", "key_prefix": "reportd:status:"},
            "database": {"url": "postgres://app:s3cr3t@db/reportd?sslmode=verify-full"},
            "queue": {"librdkafka": "security.protocol=SASL_SSL,sasl.username=u,sasl.password=p,ssl.key.pem=---"},
            "sources": {"warehouse": {"url": "postgres://ro:pw@wh/sales", "password": "x"}},
            "webhooks": {"secrets": {"acme": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}},
        }));
        assert_eq!(shown["storage"]["secret_access_key"], "***");
        assert_eq!(shown["storage"]["access_key_id"], "***");
        assert_eq!(shown["storage"]["signing_key"], "", "an empty value hides nothing");
        assert_eq!(shown["storage"]["bucket"], "reports");
        assert_eq!(shown["cache"]["redis_url"], "rediss://:***@redis:6380/0");
        assert_eq!(shown["cache"]["key_prefix"], "reportd:status:");
        assert_eq!(shown["database"]["url"], "postgres://app:***@db/reportd?sslmode=verify-full");
        assert_eq!(
            shown["queue"]["librdkafka"],
            "security.protocol=SASL_SSL,sasl.username=u,sasl.password=***,ssl.key.pem=***"
        );
        assert_eq!(shown["sources"]["warehouse"]["url"], "postgres://ro:***@wh/sales");
        assert_eq!(shown["sources"]["warehouse"]["password"], "***");
        assert_eq!(shown["webhooks"]["secrets"]["acme"], "***");
        let text = shown.to_string();
        for secret in ["abc", "AKIA", "hunter2", "s3cr3t", "sasl.password=p", "pw@", "whsec_"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
