//! How big a target sheet may be. A board reads whatever file it is given,
//! uploads included, so every dimension that costs memory or time has a cap
//! that ends the load with a message instead.

/// Caps on one target sheet, set under `[limits]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SheetLimits {
    /// The file's size on disk (also the largest upload the dashboard
    /// accepts).
    pub max_file_bytes: u64,
    /// Rows from the first filled row to the last (CSV: records).
    pub max_rows: u32,
    /// What the parts of an `.xlsx` or `.ods` zip may expand to, together,
    /// as their zip directory declares it (the zip reader holds each part
    /// to its declared size).
    pub max_unzipped_bytes: u64,
}

impl Default for SheetLimits {
    /// 8 MiB, 100,000 rows, 64 MiB unzipped: ten times the largest list a
    /// board is benchmarked with, and far below what a workbook of that
    /// size needs.
    fn default() -> SheetLimits {
        SheetLimits {
            max_file_bytes: 8 * 1024 * 1024,
            max_rows: 100_000,
            max_unzipped_bytes: 64 * 1024 * 1024,
        }
    }
}

impl SheetLimits {
    /// Cells held for one sheet (each row up to its last filled column):
    /// sixteen a row on average, so a long list with a few columns always
    /// fits, and a wide sparse one cannot cost gigabytes.
    pub fn max_cells(&self) -> u64 {
        u64::from(self.max_rows).saturating_mul(16)
    }
}

/// The message for a sheet longer than `max_rows`: filled rows span from
/// `first` to at least `reached` (1-based).
pub fn too_many_rows(first: u32, reached: u32, max_rows: u32) -> String {
    format!(
        "it has filled rows from row {first} to at least row {reached}, more than the limit of \
         {max_rows} rows (`{MAX_ROWS_KEY}`); split the list, or raise the limit if the board \
         is meant to watch that many"
    )
}

/// The message for a sheet holding more than [`SheetLimits::max_cells`].
pub fn too_many_cells(limits: &SheetLimits) -> String {
    format!(
        "it holds more than {} cells (16 a row for {} rows, `{MAX_ROWS_KEY}`); a target list has \
         a few columns: delete what is far to the right or below the list",
        limits.max_cells(),
        limits.max_rows
    )
}

/// Caps of the separate process that reads `.xlsx`, `.xls` and `.ods`
/// files (see [`super::isolate`]): what a workbook that passes the limits
/// above may still cost while the spreadsheet library reads it.
pub const READER_MEMORY_BYTES: u64 = 384 * 1024 * 1024;
/// Wall-clock and CPU time for that process.
pub const READER_SECONDS: u64 = 30;

/// The config keys, for messages.
pub const MAX_FILE_KEY: &str = "limits.sheet_max_mb";
pub const MAX_ROWS_KEY: &str = "limits.sheet_max_rows";
pub const MAX_UNZIPPED_KEY: &str = "limits.sheet_max_unzipped_mb";

/// Bytes as a person reads them: "8 MiB", "512 KiB", "17 bytes".
pub fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(human_bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_bytes(2048), "2 KiB");
        assert_eq!(human_bytes(17), "17 bytes");
    }
}
