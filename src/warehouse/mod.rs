//! The data-source port: runs a named report's query and writes its rows into
//! a payload as they arrive, so a report of any size streams in bounded
//! memory. `postgres` is the adapter (one connection pool per `[sources.NAME]`).
pub(crate) mod postgres;

use async_trait::async_trait;

use crate::job::cell::ColumnType;
use crate::job::report::{ParamValue, ReportDefinition};
use crate::job::PayloadWriter;

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The query cannot succeed as it stands: an SQL error, its statement
    /// timeout, more rows than the definition allows, a parameter or value
    /// that has no counterpart here. Retrying will not help.
    #[error("{0}")]
    Query(String),
    /// The source could not be reached, or the connection broke: a later attempt may work.
    #[error("the report's data source is unavailable: {0}")]
    Unavailable(String),
    /// `stop` said so between two batches of rows.
    #[error("stopped")]
    Stopped,
    /// The rows could not be written to scratch space.
    #[error("writing the rows: {0}")]
    Io(#[from] std::io::Error),
}

/// What a query returned: its columns (name and type, in order) and how many rows were written.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<(String, ColumnType)>,
    pub rows: u64,
}

#[async_trait]
pub trait Warehouse: Send + Sync + 'static {
    /// Runs `definition`'s query with `params` bound (in order, to `$1`, `$2`, …;
    /// the query may leave the last ones unused)
    /// in a read-only transaction through a server-side cursor, writing each
    /// row into `out` as encoded cells. Fails with `Query` past
    /// `definition.max_rows` rows or its timeout; asks `stop` between batches.
    async fn run(
        &self,
        definition: &ReportDefinition,
        params: &[ParamValue],
        out: &mut PayloadWriter,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<QueryOutput, WarehouseError>;
}
