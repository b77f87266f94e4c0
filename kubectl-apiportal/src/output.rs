//! Output formats, kept apart from the commands: each command computes rows or objects, and this prints them
//! the way `kubectl get` does (tables with UPPERCASE headers and no borders, or json, yaml, name).

use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::{cli::OutputFormat, error::Error};

/// A table: headers, rows, and the columns shown only with `-o wide`.
pub struct Table {
    pub headers: Vec<&'static str>,
    pub wide_from: usize,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        let wide_from = headers.len();
        Self { headers, wide_from, rows: Vec::new() }
    }

    /// Adds columns shown only with `-o wide`.
    pub fn with_wide(mut self, headers: Vec<&'static str>) -> Self {
        self.wide_from = self.headers.len();
        self.headers.extend(headers);
        self
    }

    /// Renders like kubectl's tabwriter: columns padded by three spaces, the last one unpadded.
    pub fn render(&self, wide: bool, no_headers: bool) -> String {
        let visible = if wide { self.headers.len() } else { self.wide_from };
        let mut lines: Vec<Vec<&str>> = Vec::new();
        if !no_headers {
            lines.push(self.headers[..visible].to_vec());
        }
        for row in &self.rows {
            lines.push(row[..visible].iter().map(String::as_str).collect());
        }
        let widths: Vec<usize> =
            (0..visible).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i + 1 == visible {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}   ", width = widths[i]));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// How a list is printed, chosen by `-o`.
pub fn print_list<T: Serialize>(
    format: Option<OutputFormat>,
    no_headers: bool,
    items: &[T],
    table: impl FnOnce() -> Table,
    name: impl Fn(&T) -> String,
    empty_scope: &str,
) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    let result = match format.unwrap_or(OutputFormat::Table) {
        OutputFormat::Table | OutputFormat::Wide if items.is_empty() => {
            eprintln!("No resources found{empty_scope}.");
            Ok(())
        }
        f @ (OutputFormat::Table | OutputFormat::Wide) => {
            write!(stdout, "{}", table().render(f == OutputFormat::Wide, no_headers))
        }
        OutputFormat::Json | OutputFormat::Yaml => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}});
            write!(stdout, "{}", serialize(&list, format.unwrap())?)
        }
        OutputFormat::Name => items.iter().try_for_each(|i| writeln!(stdout, "{}", name(i))),
    };
    result.map_err(|e| Error::Other(format!("cannot write output: {e}")))
}

/// Prints one object as json or yaml.
pub fn print_object<T: Serialize>(object: &T, format: OutputFormat) -> Result<(), Error> {
    print!("{}", serialize(object, format)?);
    Ok(())
}

pub fn serialize<T: Serialize>(object: &T, format: OutputFormat) -> Result<String, Error> {
    match format {
        OutputFormat::Yaml => {
            serde_saphyr::to_string(object).map_err(|e| Error::Other(format!("cannot render YAML: {e}")))
        }
        _ => serde_json::to_string_pretty(object)
            .map(|s| s + "\n")
            .map_err(|e| Error::Other(format!("cannot render JSON: {e}"))),
    }
}

/// kubectl's HumanDuration: `45s`, `3m20s`, `5m`, `2h10m`, `20h`, `3d4h`, `25d`, `2y`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 { format!("{y}y") } else { format!("{y}y{}d", d % 365) }
    } else {
        format!("{}y", d / 365)
    }
}

/// AGE column value for a creation timestamp, at `now`.
pub fn age(created: Option<&Time>, now: Timestamp) -> String {
    match created {
        Some(t) => human_duration(now.as_second() - t.0.as_second()),
        None => "<unknown>".to_owned(),
    }
}

/// A table cell: the value, or `<none>`.
pub fn cell(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => "<none>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(1800), "30m");
        assert_eq!(human_duration(4 * 3600 + 600), "4h10m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(40 * 86400), "40d");
    }

    #[test]
    fn tables_pad_columns_and_hide_wide_ones() {
        let mut table = Table::new(vec!["NAME", "PLAN"]).with_wide(vec!["USER"]);
        table.rows.push(vec!["toys-gold".into(), "gold".into(), "alice".into()]);
        assert_eq!(table.render(false, false), "NAME        PLAN\ntoys-gold   gold\n");
        assert_eq!(table.render(true, true), "toys-gold   gold   alice\n");
    }
}
