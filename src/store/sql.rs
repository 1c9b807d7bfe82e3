//! Helpers every SQLite file of the store shares: errors that say what was
//! being done, integers in and out of SQLite's signed 64 bits, and running
//! a query to a `Vec`.

use rusqlite::types::Type;
use rusqlite::{Connection, Params, Row};

use super::encode::BadValue;
use super::StoreError;

/// Wrap a rusqlite error with what was being done.
pub(super) fn sql(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite {
        op: op.into(),
        source,
    }
}

/// A column's value is not one the store writes: reported as a conversion
/// failure of that column, so it carries the column index.
pub(super) fn bad(col: usize, ty: Type, e: BadValue) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, ty, Box::new(e))
}

/// A round number or count as SQLite's signed integer; one that does not
/// fit is an error, not a wrapped number.
pub(super) fn int(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The inverse of [`int`].
pub(super) fn get_u64(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Integer, Box::new(e)))
}

/// A `LIMIT` as SQLite's integer (a limit too large for it is no limit).
pub(super) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Every row of `query` (a cached statement), decoded by `from_row`; an
/// error names `op`.
pub(super) fn all_rows<T>(
    conn: &Connection,
    op: &str,
    query: &str,
    params: impl Params,
    from_row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare_cached(query).map_err(sql(op))?;
    let rows = st.query_map(params, from_row).map_err(sql(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql(op))
}
