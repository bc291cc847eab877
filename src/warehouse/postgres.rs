//! The PostgreSQL data source (sqlx). A report runs in a read-only
//! transaction with its statement timeout: the query is prepared once to learn
//! the types PostgreSQL infers for its placeholders and the columns it
//! returns, declared as a server-side cursor with the parameters bound to
//! those types, and fetched a batch at a time in text form, each row encoded
//! into the payload as it arrives. Memory holds one batch, whatever the report.
use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgTypeInfo, Postgres};
use sqlx::{Arguments, AssertSqlSafe, Column, ConnectOptions, Either, Encode, Executor, Row, SqlSafeStr, Statement, Type, TypeInfo, ValueRef};

use super::{QueryOutput, Warehouse, WarehouseError};
use crate::config::SourceSettings;
use crate::job::PayloadWriter;
use crate::job::cell::{ColumnType, encode};
use crate::job::report::{ParamValue, ReportDefinition};

/// Rows per `FETCH`: enough to make round trips cheap, few enough to keep memory flat.
const BATCH: usize = 1000;
const CURSOR: &str = "reportd_rows";

pub(crate) struct PgWarehouse {
    pools: BTreeMap<String, PgPool>,
}

impl PgWarehouse {
    /// One lazy pool per source: a source that is down does not stop the start;
    /// the reports that need it fail (and retry) until it answers.
    pub(crate) fn new(sources: &BTreeMap<String, SourceSettings>) -> Result<Self, WarehouseError> {
        let mut pools = BTreeMap::new();
        for (name, source) in sources {
            let options = PgConnectOptions::from_str(&source.url)
                .map_err(|e| WarehouseError::Query(format!("sources.{name}.url: {e}")))?
                .application_name("reportd-reports")
                .disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(source.max_connections)
                .acquire_timeout(source.connect_timeout)
                .connect_lazy_with(options);
            pools.insert(name.clone(), pool);
        }
        Ok(Self { pools })
    }
}

#[async_trait]
impl Warehouse for PgWarehouse {
    async fn run(
        &self,
        definition: &ReportDefinition,
        params: &[ParamValue],
        out: &mut PayloadWriter,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<QueryOutput, WarehouseError> {
        let failed = |e: sqlx::Error| classify(e, definition);
        let pool = self.pools.get(&definition.source).ok_or_else(|| {
            WarehouseError::Query(format!("no data source \"{}\" in this process's settings", definition.source))
        })?;
        let mut tx = pool.begin().await.map_err(failed)?;
        // The session's settings for this transaction only: read-only, the
        // definition's timeout (each statement: the DECLARE and every FETCH),
        // and a text form of dates and times this reader knows.
        let setup = format!(
            "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'",
            definition.timeout.as_millis().max(1)
        );
        sqlx::raw_sql(AssertSqlSafe(setup)).execute(&mut *tx).await.map_err(failed)?;

        let statement = (&mut *tx).prepare(AssertSqlSafe(definition.sql.clone()).into_sql_str()).await.map_err(failed)?;
        let types: Vec<PgTypeInfo> = match statement.parameters() {
            Some(Either::Left(types)) => types.to_vec(),
            Some(Either::Right(n)) => {
                return Err(WarehouseError::Query(format!("PostgreSQL did not say the types of the query's {n} placeholders")));
            }
            None => Vec::new(),
        };
        // Parameters bind in order to $1, $2, …; the query may leave the last ones unused.
        if types.len() > params.len() {
            return Err(WarehouseError::Query(format!(
                "the query uses ${} but the definition lists {} parameters",
                types.len(),
                params.len()
            )));
        }
        let columns: Vec<(String, ColumnType)> =
            statement.columns().iter().map(|c| (c.name().to_string(), column_type(c.type_info()))).collect();

        let mut args = PgArguments::default();
        for (i, (value, ty)) in params.iter().zip(&types).enumerate() {
            let name = definition.params.get(i).map_or("?", |p| p.name.as_str());
            let bound = Bound::new(value, ty).map_err(|m| WarehouseError::Query(format!("parameter \"{name}\" (${}): {m}", i + 1)))?;
            args.add(bound).map_err(|e| WarehouseError::Query(format!("parameter \"{name}\" (${}): {e}", i + 1)))?;
        }
        let declare = format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {}", definition.sql);
        sqlx::query_with(AssertSqlSafe(declare), args).persistent(false).execute(&mut *tx).await.map_err(failed)?;

        let fetch = format!("FETCH FORWARD {BATCH} FROM {CURSOR}");
        let mut rows = 0u64;
        let mut cells = Vec::with_capacity(256);
        loop {
            if stop() {
                return Err(WarehouseError::Stopped);
            }
            let batch = sqlx::raw_sql(AssertSqlSafe(fetch.clone())).fetch_all(&mut *tx).await.map_err(failed)?;
            for row in &batch {
                rows += 1;
                if rows > definition.max_rows {
                    return Err(WarehouseError::Query(format!(
                        "the query returned more than the report's max_rows ({}) rows",
                        definition.max_rows
                    )));
                }
                cells.clear();
                for (i, (name, kind)) in columns.iter().enumerate() {
                    let value = row.try_get_raw(i).map_err(failed)?;
                    if value.is_null() {
                        encode::null(&mut cells);
                        continue;
                    }
                    let text = value.as_str().map_err(|e| WarehouseError::Query(format!("row {rows}, column \"{name}\": {e}")))?;
                    encode_cell(&mut cells, *kind, text)
                        .map_err(|m| WarehouseError::Query(format!("row {rows}, column \"{name}\": {m}")))?;
                }
                out.write_row(&cells)?;
            }
            if batch.len() < BATCH {
                break;
            }
        }
        // Read-only: nothing to keep. Ending it closes the cursor.
        let _ = tx.rollback().await;
        Ok(QueryOutput { columns, rows })
    }
}

/// The column type a PostgreSQL type becomes; anything else is its text.
fn column_type(ty: &PgTypeInfo) -> ColumnType {
    match ty.name() {
        "INT2" | "INT4" | "INT8" | "OID" => ColumnType::Integer,
        "FLOAT4" | "FLOAT8" | "NUMERIC" => ColumnType::Number,
        "DATE" => ColumnType::Date,
        "TIMESTAMP" | "TIMESTAMPTZ" => ColumnType::Datetime,
        "BOOL" => ColumnType::Boolean,
        _ => ColumnType::Text,
    }
}

/// Encodes one non-null value, as PostgreSQL prints it (ISO dates, UTC times).
fn encode_cell(cells: &mut Vec<u8>, kind: ColumnType, text: &str) -> Result<(), String> {
    match kind {
        ColumnType::Text => encode::text(cells, text),
        ColumnType::Integer => encode::integer(cells, text.parse().map_err(|_| format!("\"{text}\" is not an integer"))?),
        ColumnType::Number => match text.parse::<f64>() {
            // NaN and ±Infinity have no cell: they are left empty.
            Ok(n) if n.is_finite() => encode::number(cells, n),
            Ok(_) => encode::null(cells),
            Err(_) => return Err(format!("\"{text}\" is not a number")),
        },
        // infinity and BC dates have no spreadsheet form either.
        ColumnType::Date => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => encode::date(cells, d),
            Err(_) => encode::null(cells),
        },
        ColumnType::Datetime => {
            // timestamptz prints as UTC here ("+00"), timestamp without an offset.
            let local = text.strip_suffix("+00").unwrap_or(text);
            match NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f") {
                Ok(t) => encode::datetime(cells, t),
                Err(_) => encode::null(cells),
            }
        }
        ColumnType::Boolean => encode::boolean(cells, text == "t"),
    }
    Ok(())
}

/// A parameter, converted to the type PostgreSQL inferred for its placeholder.
struct Bound {
    ty: PgTypeInfo,
    value: Typed,
}

enum Typed {
    Null,
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// A decimal string, sent in NUMERIC's binary form.
    Numeric(String),
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    Timestamptz(DateTime<Utc>),
}

impl Bound {
    fn new(value: &ParamValue, ty: &PgTypeInfo) -> Result<Bound, String> {
        let name = ty.name();
        let mismatch = || format!("PostgreSQL needs {} here, and {} is not one", name.to_lowercase(), value.to_json());
        let integer = || -> Result<i64, String> {
            match value {
                ParamValue::Integer(i) => Ok(*i),
                ParamValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(*n as i64),
                ParamValue::Text(s) => s.trim().parse().map_err(|_| mismatch()),
                _ => Err(mismatch()),
            }
        };
        let number = || -> Result<f64, String> {
            match value {
                ParamValue::Integer(i) => Ok(*i as f64),
                ParamValue::Number(n) => Ok(*n),
                ParamValue::Text(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(mismatch),
                _ => Err(mismatch()),
            }
        };
        let datetime = || -> Result<DateTime<Utc>, String> {
            match value {
                ParamValue::DateTime(t) => Ok(*t),
                ParamValue::Date(d) => Ok(d.and_hms_opt(0, 0, 0).ok_or_else(mismatch)?.and_utc()),
                ParamValue::Text(s) => DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| mismatch()),
                _ => Err(mismatch()),
            }
        };
        let out_of_range = |bits: u32| format!("{} does not fit PostgreSQL's {} ({bits}-bit)", value.to_json(), name.to_lowercase());
        let typed = match (value, name) {
            (ParamValue::Null, _) => Typed::Null,
            (_, "INT2") => Typed::I16(i16::try_from(integer()?).map_err(|_| out_of_range(16))?),
            (_, "INT4") => Typed::I32(i32::try_from(integer()?).map_err(|_| out_of_range(32))?),
            (_, "INT8") => Typed::I64(integer()?),
            (_, "FLOAT4") => Typed::F32(number()? as f32),
            (_, "FLOAT8") => Typed::F64(number()?),
            (ParamValue::Integer(i), "NUMERIC") => Typed::Numeric(i.to_string()),
            (_, "NUMERIC") => Typed::Numeric(format!("{}", number()?)),
            (ParamValue::Bool(b), "BOOL") => Typed::Bool(*b),
            (ParamValue::Text(s), "BOOL") if s == "true" || s == "false" => Typed::Bool(s == "true"),
            (ParamValue::Date(d), "DATE") => Typed::Date(*d),
            (ParamValue::Text(s), "DATE") => Typed::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| mismatch())?),
            (_, "TIMESTAMP") => Typed::Timestamp(datetime()?.naive_utc()),
            (_, "TIMESTAMPTZ") => Typed::Timestamptz(datetime()?),
            (ParamValue::Text(s), "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "UNKNOWN" | "CITEXT") => Typed::Text(s.clone()),
            (other, "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "UNKNOWN" | "CITEXT") => Typed::Text(match other.to_json() {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            }),
            (_, "BOOL" | "DATE") => return Err(mismatch()),
            _ => {
                return Err(format!(
                    "PostgreSQL needs {} here, which reportd does not bind; cast the placeholder in the query (e.g. $n::text)",
                    name.to_lowercase()
                ));
            }
        };
        Ok(Bound { ty: ty.clone(), value: typed })
    }
}

impl Type<Postgres> for Bound {
    fn type_info() -> PgTypeInfo {
        // Never used: `produces` names each value's type.
        <String as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Bound {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match &self.value {
            Typed::Null => Ok(IsNull::Yes),
            Typed::I16(v) => <i16 as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::I32(v) => <i32 as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::I64(v) => <i64 as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::F32(v) => <f32 as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::F64(v) => <f64 as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::Numeric(s) => {
                buf.extend_from_slice(&numeric_binary(s)?);
                Ok(IsNull::No)
            }
            Typed::Text(v) => <String as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::Bool(v) => <bool as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::Date(v) => <NaiveDate as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::Timestamp(v) => <NaiveDateTime as Encode<Postgres>>::encode_by_ref(v, buf),
            Typed::Timestamptz(v) => <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(v, buf),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }
}

/// NUMERIC's binary form of a plain decimal (`-123.45`): digit count, weight
/// of the first base-10000 digit, sign, display scale, then the digits.
fn numeric_binary(decimal: &str) -> Result<Vec<u8>, String> {
    let (negative, digits) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{decimal}\" is not a plain decimal"));
    }
    let int = int.trim_start_matches('0');
    let scale = frac.len();
    let mut padded = "0".repeat((4 - int.len() % 4) % 4) + int;
    let int_groups = padded.len() / 4;
    padded += frac;
    padded += &"0".repeat((4 - frac.len() % 4) % 4);
    let mut groups: Vec<i16> = padded.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0'))).collect();
    let mut weight = int_groups as i32 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&(if negative && !groups.is_empty() { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(scale.min(1000) as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(out)
}

/// Which failures another attempt may cure.
fn classify(e: sqlx::Error, definition: &ReportDefinition) -> WarehouseError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                "57014" => WarehouseError::Query(format!(
                    "the report's query ran past its statement timeout ({}): {}",
                    format!("{:?}", definition.timeout),
                    db.message()
                )),
                // connection exceptions, the server shutting down, out of resources, conflicts
                c if c.starts_with("08") || c.starts_with("53") || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01") => {
                    WarehouseError::Unavailable(format!("{} (SQLSTATE {c})", db.message()))
                }
                c => WarehouseError::Query(format!("the report's query failed: {} (SQLSTATE {c})", db.message())),
            }
        }
        e @ (sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)) => WarehouseError::Unavailable(e.to_string()),
        e => WarehouseError::Query(format!("the report's query failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_binary_matches_postgres() {
        // 123.45: 2 digits (0123, 4500), weight 0, positive, scale 2
        assert_eq!(numeric_binary("123.45").unwrap(), [0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 17, 148]);
        // -0.5: one digit 5000 at weight -1, negative, scale 1
        assert_eq!(numeric_binary("-0.5").unwrap(), [0, 1, 255, 255, 64, 0, 0, 1, 19, 136]);
        // 10000: one digit 1 at weight 1
        assert_eq!(numeric_binary("10000").unwrap(), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(numeric_binary("0").unwrap(), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(numeric_binary("1e5").is_err());
    }

    #[test]
    fn text_cells_decode_by_column_type() {
        let mut cells = Vec::new();
        encode_cell(&mut cells, ColumnType::Datetime, "2026-03-01 10:00:00.25+00").unwrap();
        encode_cell(&mut cells, ColumnType::Number, "NaN").unwrap();
        encode_cell(&mut cells, ColumnType::Boolean, "t").unwrap();
        assert!(encode_cell(&mut cells, ColumnType::Integer, "x").is_err());
        let decoded: Vec<_> = crate::job::cell::Cells::new(&cells).collect::<Result<_, _>>().unwrap();
        let at = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_milli_opt(10, 0, 0, 250).unwrap();
        assert_eq!(decoded[0], crate::job::CellRef::DateTime(at));
        assert_eq!(decoded[1], crate::job::CellRef::Null);
        assert_eq!(decoded[2], crate::job::CellRef::Bool(true));
    }
}
