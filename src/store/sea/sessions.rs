//! Dashboard sessions, by the hash of their token (see the `ui_sessions` migration).
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::classify;
use super::entity::ui_session;
use crate::store::StoreError;

use ui_session::Column as C;

pub(super) async fn create(db: &DatabaseConnection, token_hash: &str, key_hash: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
    let now = Utc::now();
    // Logins are rare: each sweeps the sessions that ended, so the table stays small.
    ui_session::Entity::delete_many().filter(C::ExpiresAt.lt(now)).exec(db).await.map_err(classify)?;
    let row = ui_session::ActiveModel {
        token_hash: Set(token_hash.to_owned()),
        key_hash: Set(key_hash.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
    };
    ui_session::Entity::insert(row).exec_without_returning(db).await.map(|_| ()).map_err(classify)
}

pub(super) async fn key(db: &DatabaseConnection, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
    let row = ui_session::Entity::find_by_id(token_hash.to_owned())
        .filter(C::ExpiresAt.gt(now))
        .one(db)
        .await
        .map_err(classify)?;
    Ok(row.map(|s| s.key_hash))
}

pub(super) async fn end(db: &DatabaseConnection, token_hash: &str) -> Result<(), StoreError> {
    ui_session::Entity::delete_by_id(token_hash.to_owned()).exec(db).await.map(|_| ()).map_err(classify)
}
