//! `reportd keys create|list|revoke|generate`: API keys. A key is shown once,
//! when it is made, alone on the last line of stdout; only its SHA-256 is
//! stored. A running API takes a new or revoked key into account within
//! `auth.cache_ttl`, without a restart.
use chrono::Utc;
use clap::Subcommand;

use crate::config::Settings;
use crate::http::key_hash;
use crate::job::{ApiKey, Role, valid_tenant};
use crate::startup;

#[derive(Subcommand)]
pub(super) enum KeysAction {
    /// Create a key for a tenant and store its hash in the job store.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "client")]
        role: RoleArg,
    },
    /// Every key (never the key itself): id, tenant, role, creation and revocation time.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id; running APIs refuse it within auth.cache_ttl.
    Revoke { id: String },
    /// Make a key for `auth.keys` (a Secret) without storing anything: prints
    /// the `tenant:role:hash` entry, then the key on the last line.
    Generate {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "client")]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum RoleArg {
    Client,
    Operator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Client => Role::Client,
            RoleArg::Operator => Role::Operator,
        }
    }
}

/// A new key: `rpd_` and 64 hex digits of randomness.
fn new_key() -> String {
    format!("rpd_{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn checked_tenant(tenant: &str) -> anyhow::Result<()> {
    anyhow::ensure!(valid_tenant(tenant), "`{tenant}` is not a tenant name: 1 to 64 of A-Z a-z 0-9 . _ -");
    Ok(())
}

pub(super) async fn run(action: KeysAction, settings: &Settings) -> anyhow::Result<()> {
    match action {
        KeysAction::Generate { tenant, role } => {
            checked_tenant(&tenant)?;
            let key = new_key();
            println!("# for auth.keys (REPORTD__AUTH__KEYS); the key follows, shown once:");
            println!("{tenant}:{}:{}", Role::from(role), key_hash(&key));
            println!("{key}");
            return Ok(());
        }
        KeysAction::Create { .. } | KeysAction::List { .. } | KeysAction::Revoke { .. } => {}
    }
    let keys = startup::connect_store(settings).await?.keys;
    match action {
        KeysAction::Create { tenant, role } => {
            checked_tenant(&tenant)?;
            let key = new_key();
            let record = ApiKey {
                id: format!("key_{}", hex::encode(rand::random::<[u8; 6]>())),
                tenant,
                role: role.into(),
                created_at: Utc::now(),
                revoked_at: None,
            };
            keys.create_key(&record, &key_hash(&key)).await?;
            println!("id       {}", record.id);
            println!("tenant   {}", record.tenant);
            println!("role     {}", record.role);
            println!("created  {}", record.created_at.to_rfc3339());
            println!("# the key, shown this once (only its hash is stored):");
            println!("{key}");
        }
        KeysAction::List { json } => {
            let all = keys.keys().await?;
            if json {
                for k in &all {
                    println!("{}", serde_json::to_string(k)?);
                }
            } else {
                println!("{:<17} {:<24} {:<9} {:<26} REVOKED", "ID", "TENANT", "ROLE", "CREATED");
                for k in &all {
                    let revoked = k.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
                    println!("{:<17} {:<24} {:<9} {:<26} {revoked}", k.id, k.tenant, k.role, k.created_at.to_rfc3339());
                }
            }
        }
        KeysAction::Revoke { id } => {
            anyhow::ensure!(keys.revoke_key(&id).await?, "no active key with id {id}");
            println!("revoked {id}");
        }
        KeysAction::Generate { .. } => {}
    }
    Ok(())
}
