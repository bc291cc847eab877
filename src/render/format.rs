//! Display text of a cell, following the column's Excel format where a PDF can:
//! used for PDF cells and to size XLSX columns.
use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::job::{CellRef, Column, ColumnType};

/// Turns a cell into display text, following the column's Excel format where it can.
#[derive(Debug, Clone)]
pub(crate) enum CellFormatter {
    Text,
    Number(Option<NumberFormat>),
    Date(Option<DateFormat>),
    DateTime(Option<DateFormat>),
    Boolean,
}

impl CellFormatter {
    pub(crate) fn new(column: &Column) -> Self {
        let fmt = column.format.as_deref();
        match column.kind {
            ColumnType::Text => CellFormatter::Text,
            ColumnType::Number | ColumnType::Integer => CellFormatter::Number(fmt.and_then(NumberFormat::parse)),
            ColumnType::Date => CellFormatter::Date(fmt.and_then(DateFormat::parse)),
            ColumnType::Datetime => CellFormatter::DateTime(fmt.and_then(DateFormat::parse)),
            ColumnType::Boolean => CellFormatter::Boolean,
        }
    }

    /// Writes the display text into `out` (cleared first).
    pub(crate) fn format(&self, cell: CellRef<'_>, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        match (self, cell) {
            (_, CellRef::Null) => {}
            (_, CellRef::Text(s)) => {
                out.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
            }
            (CellFormatter::Number(Some(f)), CellRef::Number(v)) => f.write(v, out),
            (CellFormatter::Number(Some(f)), CellRef::Integer(v)) => f.write(v as f64, out),
            (_, CellRef::Number(v)) => general_number(v, out),
            (_, CellRef::Integer(v)) => {
                let _ = write!(out, "{v}");
            }
            (CellFormatter::Date(Some(f)) | CellFormatter::DateTime(Some(f)), CellRef::Date(d)) => {
                f.write(d.and_hms_opt(0, 0, 0).unwrap_or_default(), out)
            }
            (_, CellRef::Date(d)) => {
                let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
            }
            (CellFormatter::Date(Some(f)) | CellFormatter::DateTime(Some(f)), CellRef::DateTime(dt)) => f.write(dt, out),
            (_, CellRef::DateTime(dt)) => {
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    dt.year(),
                    dt.month(),
                    dt.day(),
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                );
            }
            (_, CellRef::Bool(b)) => out.push_str(if b { "TRUE" } else { "FALSE" }),
        }
    }
}

/// Excel's "General" look: no exponent for everyday magnitudes, no float noise.
fn general_number(v: f64, out: &mut String) {
    use std::fmt::Write;
    if v != 0.0 && (v.abs() >= 1e15 || v.abs() < 1e-9) {
        let _ = write!(out, "{v:e}");
        return;
    }
    let _ = write!(out, "{v:.9}");
    if out.contains('.') {
        let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(trimmed);
    }
    if out == "-0" {
        out.clear();
        out.push('0');
    }
}

/// The parts of an Excel number format a PDF table can show:
/// literal prefix and suffix, thousands separators, decimals and percent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberFormat {
    prefix: String,
    suffix: String,
    decimals: usize,
    thousands: bool,
    percent: bool,
}

impl NumberFormat {
    pub(crate) fn parse(fmt: &str) -> Option<NumberFormat> {
        let section = fmt.split(';').next()?;
        let (mut prefix, mut suffix) = (String::new(), String::new());
        let (mut decimals, mut thousands, mut percent, mut seen_digit, mut in_decimals) = (0, false, false, false, false);
        let mut chars = section.chars().peekable();
        while let Some(c) = chars.next() {
            let literal = match c {
                '0' | '#' | '?' => {
                    seen_digit = true;
                    if in_decimals {
                        decimals += 1;
                    }
                    suffix.clear();
                    None
                }
                '.' if seen_digit || chars.peek().is_some_and(|n| matches!(n, '0' | '#' | '?')) => {
                    in_decimals = true;
                    seen_digit = true;
                    None
                }
                ',' if seen_digit && !in_decimals => {
                    thousands = true;
                    None
                }
                '%' => {
                    percent = true;
                    Some("%".to_string())
                }
                '"' => Some(chars.by_ref().take_while(|&q| q != '"').collect()),
                '\\' => chars.next().map(String::from),
                '[' => {
                    // [$€-416] is a currency symbol; [Red] and the like are colours.
                    let inner: String = chars.by_ref().take_while(|&q| q != ']').collect();
                    inner.strip_prefix('$').map(|s| s.split('-').next().unwrap_or("").to_string())
                }
                '_' => {
                    chars.next();
                    Some(" ".into())
                }
                '*' => {
                    chars.next();
                    None
                }
                '@' => None,
                other => Some(other.to_string()),
            };
            if let Some(l) = literal {
                if seen_digit { suffix.push_str(&l) } else { prefix.push_str(&l) }
            }
        }
        seen_digit.then_some(NumberFormat { prefix, suffix, decimals, thousands, percent })
    }

    pub(crate) fn write(&self, v: f64, out: &mut String) {
        use std::fmt::Write;
        let v = if self.percent { v * 100.0 } else { v };
        let digits = format!("{:.*}", self.decimals, v.abs());
        let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
        let negative = v < 0.0 && digits.bytes().any(|b| b.is_ascii_digit() && b != b'0');
        if negative {
            out.push('-');
        }
        out.push_str(&self.prefix);
        if self.thousands {
            let len = int.len();
            for (i, ch) in int.chars().enumerate() {
                if i > 0 && (len - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(ch);
            }
        } else {
            let _ = write!(out, "{int}");
        }
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push_str(&self.suffix);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum DatePart {
    Year4,
    Year2,
    MonthName,
    MonthAbbr,
    Month2,
    Month1,
    Day2,
    Day1,
    Hour2,
    Hour1,
    Minute2,
    Second2,
    Literal(String),
}

/// The parts of an Excel date format (yyyy, mm, dd, hh, mm, ss…) a PDF can show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DateFormat(Vec<DatePart>);

impl DateFormat {
    pub(crate) fn parse(fmt: &str) -> Option<DateFormat> {
        let lower = fmt.split(';').next()?.to_ascii_lowercase();
        let b: Vec<char> = lower.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        let run = |i: usize, c: char| b[i..].iter().take_while(|&&x| x == c).count();
        while i < b.len() {
            let c = b[i];
            let n = run(i, c);
            let part = match c {
                'y' => Some(if n >= 3 { DatePart::Year4 } else { DatePart::Year2 }),
                'd' if n <= 2 => Some(if n == 2 { DatePart::Day2 } else { DatePart::Day1 }),
                'h' => Some(if n >= 2 { DatePart::Hour2 } else { DatePart::Hour1 }),
                's' => Some(DatePart::Second2),
                'm' => {
                    // "mm" after hours or before seconds means minutes, as in Excel.
                    let after_hour = parts.iter().rev().find(|p| !matches!(p, DatePart::Literal(_)))
                        .is_some_and(|p| matches!(p, DatePart::Hour1 | DatePart::Hour2));
                    let before_sec = b[i + n..].iter().find(|ch| ch.is_ascii_alphabetic()) == Some(&'s');
                    Some(if (after_hour || before_sec) && n <= 2 {
                        DatePart::Minute2
                    } else {
                        match n {
                            1 => DatePart::Month1,
                            2 => DatePart::Month2,
                            3 => DatePart::MonthAbbr,
                            _ => DatePart::MonthName,
                        }
                    })
                }
                '"' => {
                    let lit: String = b[i + 1..].iter().take_while(|&&q| q != '"').collect();
                    let len = lit.chars().count() + 2;
                    parts.push(DatePart::Literal(lit));
                    i += len;
                    continue;
                }
                '\\' if i + 1 < b.len() => {
                    parts.push(DatePart::Literal(b[i + 1].to_string()));
                    i += 2;
                    continue;
                }
                '[' | 'a' | 'd' | 'e' | 'g' | 'b' => return None,
                other => Some(DatePart::Literal(other.to_string())),
            };
            parts.extend(part);
            i += n.max(1);
        }
        parts.iter().any(|p| !matches!(p, DatePart::Literal(_))).then_some(DateFormat(parts))
    }

    pub(crate) fn write(&self, dt: NaiveDateTime, out: &mut String) {
        use std::fmt::Write;
        const MONTHS: [&str; 12] = [
            "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
            "November", "December",
        ];
        let month = MONTHS[(dt.month0() as usize).min(11)];
        for p in &self.0 {
            let _ = match p {
                DatePart::Year4 => write!(out, "{:04}", dt.year()),
                DatePart::Year2 => write!(out, "{:02}", dt.year() % 100),
                DatePart::MonthName => write!(out, "{month}"),
                DatePart::MonthAbbr => write!(out, "{}", &month[..3]),
                DatePart::Month2 => write!(out, "{:02}", dt.month()),
                DatePart::Month1 => write!(out, "{}", dt.month()),
                DatePart::Day2 => write!(out, "{:02}", dt.day()),
                DatePart::Day1 => write!(out, "{}", dt.day()),
                DatePart::Hour2 => write!(out, "{:02}", dt.hour()),
                DatePart::Hour1 => write!(out, "{}", dt.hour()),
                DatePart::Minute2 => write!(out, "{:02}", dt.minute()),
                DatePart::Second2 => write!(out, "{:02}", dt.second()),
                DatePart::Literal(s) => write!(out, "{s}"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn num(fmt: &str, v: f64) -> String {
        let mut s = String::new();
        NumberFormat::parse(fmt).unwrap().write(v, &mut s);
        s
    }

    #[test]
    fn number_formats() {
        assert_eq!(num("#,##0.00", 1234567.891), "1,234,567.89");
        assert_eq!(num("#,##0.00", -1234.5), "-1,234.50");
        assert_eq!(num("0", 3.6), "4");
        assert_eq!(num("0.0%", 0.256), "25.6%");
        assert_eq!(num("\"R$ \"#,##0.00", 99.0), "R$ 99.00");
        assert_eq!(num("[$€-2] #,##0.00", 5.0), "€ 5.00");
        assert_eq!(num("#,##0 \"kg\"", 1500.0), "1,500 kg");
        assert_eq!(num("0.00", -0.001), "0.00");
        assert!(NumberFormat::parse("General").is_none());
    }

    #[test]
    fn general_numbers_have_no_float_noise() {
        let mut s = String::new();
        general_number(0.1 + 0.2, &mut s);
        assert_eq!(s, "0.3");
        s.clear();
        general_number(1234.5, &mut s);
        assert_eq!(s, "1234.5");
        s.clear();
        general_number(-0.0, &mut s);
        assert_eq!(s, "0");
    }

    #[test]
    fn date_formats() {
        let dt = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap().and_hms_opt(7, 8, 9).unwrap();
        let f = |fmt: &str| {
            let mut s = String::new();
            DateFormat::parse(fmt).unwrap().write(dt, &mut s);
            s
        };
        assert_eq!(f("dd/mm/yyyy"), "05/01/2026");
        assert_eq!(f("yyyy-mm-dd hh:mm:ss"), "2026-01-05 07:08:09");
        assert_eq!(f("d mmm yy"), "5 Jan 26");
        assert_eq!(f("hh:mm"), "07:08");
    }

}
