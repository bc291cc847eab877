//! The columns and rows of one table: the body's own, or one sheet's. The two
//! keys may come in either order, so rows that come first are spooled and
//! replayed when the columns arrive.
use serde::de::MapAccess;

use super::columns::ColumnsSeed;
use super::ctx::Ctx;
use super::rows::RowList;
use super::spool::{Spool, SpoolSeed};
use crate::job::cell::Column;

enum Rows {
    Absent,
    Done(u64),
    Spooled(Spool),
}

pub(crate) struct Table {
    columns_path: String,
    rows_path: String,
    columns: Option<Vec<Column>>,
    rows: Rows,
}

impl Table {
    /// `prefix` is empty for the body, `sheets[1].` for a sheet.
    pub fn new(prefix: &str) -> Self {
        Self {
            columns_path: format!("{prefix}columns"),
            rows_path: format!("{prefix}rows"),
            columns: None,
            rows: Rows::Absent,
        }
    }

    pub fn has_columns(&self) -> bool {
        self.columns.is_some()
    }

    pub fn has_rows(&self) -> bool {
        !matches!(self.rows, Rows::Absent)
    }

    /// Reads the `columns` value, then types any rows that were waiting for it.
    pub fn read_columns<'de, A: MapAccess<'de>>(&mut self, map: &mut A, ctx: &mut Ctx) -> Result<(), A::Error> {
        let columns = map.next_value_seed(ColumnsSeed { ctx: &mut *ctx, path: &self.columns_path })?;
        if let Rows::Spooled(spool) = std::mem::replace(&mut self.rows, Rows::Absent) {
            self.rows = Rows::Done(spool.replay(ctx, &columns, &self.rows_path)?);
        }
        self.columns = Some(columns);
        Ok(())
    }

    pub fn read_rows<'de, A: MapAccess<'de>>(&mut self, map: &mut A, ctx: &mut Ctx) -> Result<(), A::Error> {
        self.rows = match &self.columns {
            Some(columns) => Rows::Done(map.next_value_seed(RowList { ctx, columns, path: &self.rows_path })?),
            None => match map.next_value_seed(SpoolSeed { ctx, path: &self.rows_path })? {
                Some(spool) => Rows::Spooled(spool),
                None => Rows::Done(0),
            },
        };
        Ok(())
    }

    /// The columns and the row count; `None` without columns, which the
    /// caller reports in its own words. Spooled rows cannot remain here:
    /// they were replayed when the columns arrived.
    pub fn finish(self) -> Option<(Vec<Column>, u64)> {
        let rows = match self.rows {
            Rows::Done(n) => n,
            Rows::Absent | Rows::Spooled(_) => 0,
        };
        self.columns.map(|columns| (columns, rows))
    }

    pub fn columns_path(&self) -> &str {
        &self.columns_path
    }
}
