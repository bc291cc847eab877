//! API keys, by the hash of the key.
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder};

use super::classify;
use super::entity::api_key;
use crate::job::ApiKey;
use crate::store::StoreError;

use api_key::Column as C;

pub(super) async fn create(db: &DatabaseConnection, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
    let row = api_key::ActiveModel {
        id: Set(key.id.clone()),
        tenant: Set(key.tenant.clone()),
        role: Set(key.role.as_str().to_owned()),
        hash: Set(hash.to_owned()),
        created_at: Set(key.created_at),
        revoked_at: Set(None),
    };
    api_key::Entity::insert(row).exec_without_returning(db).await.map(|_| ()).map_err(classify)
}

pub(super) async fn all(db: &DatabaseConnection) -> Result<Vec<ApiKey>, StoreError> {
    let rows = api_key::Entity::find().order_by(C::CreatedAt, Order::Asc).all(db).await.map_err(classify)?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

pub(super) async fn revoke(db: &DatabaseConnection, id: &str) -> Result<bool, StoreError> {
    let done = api_key::Entity::update_many()
        .col_expr(C::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(C::Id.eq(id))
        .filter(C::RevokedAt.is_null())
        .exec(db)
        .await
        .map_err(classify)?;
    Ok(done.rows_affected == 1)
}

pub(super) async fn by_hash(db: &DatabaseConnection, hash: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = api_key::Entity::find().filter(C::Hash.eq(hash)).filter(C::RevokedAt.is_null()).one(db).await.map_err(classify)?;
    row.map(ApiKey::try_from).transpose()
}

pub(super) async fn any(db: &DatabaseConnection) -> Result<bool, StoreError> {
    Ok(api_key::Entity::find().filter(C::RevokedAt.is_null()).count(db).await.map_err(classify)? > 0)
}
