//! Who is calling: `Authorization: Bearer KEY`, checked against the keys in
//! the job store (by the SHA-256 of the key) and those from `auth.keys`.
//! Authentication is on as soon as any key exists; with none (and
//! `auth.mode = "auto"`), every caller is an operator of the `default` tenant.
//! Lookups are cached for `auth.cache_ttl`, so a key revoked or created while
//! the API runs takes effect within it, and the database is not asked once per
//! request.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::AuthMode;
use crate::job::{Caller, Role};
use crate::store::KeyStore;

/// The SHA-256 of a key, as stored and as `auth.keys` gives it.
pub(crate) fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub(crate) struct Auth {
    mode: AuthMode,
    /// `auth.keys`, by hash.
    statics: HashMap<String, Caller>,
    keys: Arc<dyn KeyStore>,
    /// Hash → the key's caller, or `None` for an unknown or revoked key.
    lookups: Cache<String, Option<Caller>>,
    /// Whether any key exists in the store (one entry).
    any: Cache<(), bool>,
}

impl Auth {
    pub(crate) fn new(mode: AuthMode, statics: Vec<(Caller, String)>, keys: Arc<dyn KeyStore>, ttl: Duration) -> Self {
        Self {
            mode,
            statics: statics.into_iter().map(|(caller, hash)| (hash, caller)).collect(),
            keys,
            lookups: Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            any: Cache::builder().max_capacity(1).time_to_live(ttl).build(),
        }
    }

    /// Whether callers need no key: `off`, or `auto` with no key anywhere.
    pub(crate) async fn is_open(&self) -> Result<bool, ApiError> {
        match self.mode {
            AuthMode::Off => Ok(true),
            AuthMode::On => Ok(false),
            AuthMode::Auto if !self.statics.is_empty() => Ok(false),
            AuthMode::Auto => {
                if let Some(any) = self.any.get(&()) {
                    return Ok(!any);
                }
                let any = self.keys.has_keys().await.map_err(|e| ApiError::unavailable("the key store", e))?;
                self.any.insert((), any);
                Ok(!any)
            }
        }
    }

    /// The caller a request's `Authorization` header names.
    pub(crate) async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        if self.is_open().await? {
            return Ok(Caller::open());
        }
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized("this API needs a key: send `Authorization: Bearer <key>`"));
        };
        let Some(key) = value.strip_prefix("Bearer ").map(str::trim).filter(|k| !k.is_empty() && k.len() <= 256) else {
            return Err(ApiError::Unauthorized("the Authorization header must be `Bearer <key>`"));
        };
        self.caller_by_hash(&key_hash(key)).await?.ok_or(ApiError::Unauthorized("this key is not valid (unknown, or revoked)"))
    }

    /// The caller of the key with this hash, or `None` for an unknown or
    /// revoked key (also for dashboard sessions, which keep only the hash).
    pub(crate) async fn caller_by_hash(&self, hash: &str) -> Result<Option<Caller>, ApiError> {
        if let Some(caller) = self.statics.get(hash) {
            return Ok(Some(caller.clone()));
        }
        if let Some(cached) = self.lookups.get(hash) {
            return Ok(cached);
        }
        let found = self.keys.key_by_hash(hash).await.map_err(|e| ApiError::unavailable("the key store", e))?;
        let caller = found.map(|k| Caller { tenant: k.tenant, role: k.role });
        self.lookups.insert(hash.to_owned(), caller.clone());
        Ok(caller)
    }

    /// Where dashboard sessions are kept.
    pub(crate) fn keys(&self) -> &dyn KeyStore {
        &*self.keys
    }
}

/// The caller of a request: handlers that take one require a valid key
/// (when authentication is on); a missing or bad key is a 401.
pub(crate) struct Authenticated(pub(crate) Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Authenticated, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap_or("").to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("the API state is missing".into()))?;
            state.auth.authenticate(header.as_deref()).await.map(Authenticated)
        })
    }
}

/// A caller with the operator role (metrics, every tenant's jobs); a client's key is a 403.
pub(crate) struct Operator;

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Operator, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Authenticated::from_request(req, payload);
        Box::pin(async move {
            match caller.await?.0.role {
                Role::Operator => Ok(Operator),
                Role::Client => Err(ApiError::Forbidden("this needs an operator key")),
            }
        })
    }
}
