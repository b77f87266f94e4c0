//! Durations, in two grammars:
//! - what people type in flags (`parse`): jiff's friendly format (`90s`, `1m`, `1h30m`, `7d`, `2 weeks`, `1.5h`)
//!   with days of 24 hours, and a bare number meaning seconds (as `kubectl --request-timeout=30` does); months and
//!   years are refused, their length depends on the date;
//! - what resources store (`parse_field`, `FIELD_PATTERN`): days, hours, minutes and seconds, each at most once
//!   and in that order (`90d`, `1h30m`, `0s`), the form `format` writes. The API server validates fields with
//!   the pattern (and a length of 2 to 28) and the bridge reads them with `parse_field`; the two accept exactly
//!   the same texts (tested against each other below, and against a real API server in
//!   `tests/tests/resource_model.rs`), so a value the API server admitted is never silently dropped.

use std::time::Duration;

use schemars::{Schema, SchemaGenerator, json_schema};

/// The pattern of a duration field: each unit at most once, in order, up to six digits each.
pub const FIELD_PATTERN: &str = r"^([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$";
/// The shortest valid field (`0s`): the pattern alone would accept the empty text.
const FIELD_MIN_LENGTH: u32 = 2;
const FIELD_MAX_LENGTH: u32 = 28;

/// The OpenAPI schema of a duration field (`#[schemars(schema_with = "duration::field_schema")]`).
pub fn field_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": FIELD_PATTERN,
        "minLength": FIELD_MIN_LENGTH,
        "maxLength": FIELD_MAX_LENGTH,
        "description": "a duration such as 90d, 36h, 1h30m or 0s: days, hours, minutes and seconds, each at most once, in that order",
    })
}

/// Parses a duration field (see `FIELD_PATTERN`).
pub fn parse_field(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: write days, hours, minutes and seconds, each at most once and in that order, e.g. 90d, 1h30m or 0s"
        )
    };
    let mut rest = text;
    let mut seconds: u64 = 0;
    let mut components = 0;
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(digits) != Some(&(unit as u8)) {
            continue;
        }
        if digits > 6 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        seconds += value * size;
        rest = &rest[digits + 1..];
        components += 1;
    }
    if components == 0 || !rest.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(seconds))
}

use jiff::{Span, SpanRelativeTo};

/// Parses a duration such as `1h30m` or `7d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let invalid = || format!("invalid duration {text:?}: use e.g. 90s, 15m, 1h30m or 7d");
    let span: Span = text.parse().map_err(|_| invalid())?;
    let signed = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("invalid duration {text:?}: months and years vary in length; use days (e.g. 30d)"))?;
    Duration::try_from(signed).map_err(|_| format!("invalid duration {text:?}: it must not be negative"))
}

/// A duration as a field holds it (`1h30m`, `7d`, `0s`; whole seconds, anything finer dropped): `parse_field`
/// and `parse` read it back.
pub fn format(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_durations_parse_with_24_hour_days() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("2 weeks"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn nonsense_months_and_negatives_are_refused_with_a_hint() {
        assert!(parse("soon").unwrap_err().contains("use e.g. 90s"));
        assert!(parse("1 month").unwrap_err().contains("use days"));
        assert!(parse("-5m").is_err());
    }

    #[test]
    fn fields_take_each_unit_once_in_order() {
        assert_eq!(parse_field("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_field("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_field("1d2h3m4s"), Ok(Duration::from_secs(93_784)));
        assert_eq!(parse_field("0s"), Ok(Duration::ZERO));
        for bad in ["", "30m1h", "1d1d", "1h 30m", "1.5h", "7", "d", "-1d", "1w", "1234567s", "1D"] {
            assert!(parse_field(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_field("30m1h").unwrap_err().contains("in that order"));
    }

    #[test]
    fn format_writes_fields() {
        for seconds in [0, 1, 59, 60, 3600, 86_399, 86_400, 93_784, 90 * 86_400] {
            let text = format(Duration::from_secs(seconds));
            assert_eq!(parse_field(&text), Ok(Duration::from_secs(seconds)), "{text}");
        }
    }

    /// The pattern the API server checks and the parser the bridge reads with agree on every text of a generated
    /// sample: a value admitted is a value read, and one refused is never half-read.
    #[test]
    fn the_field_pattern_and_the_parser_accept_the_same_texts() {
        use rand::{RngExt, SeedableRng, rngs::StdRng, seq::IndexedRandom};
        let pattern = regex::Regex::new(FIELD_PATTERN).unwrap();
        let admitted = |t: &str| {
            pattern.is_match(t) && t.len() >= FIELD_MIN_LENGTH as usize && t.len() <= FIELD_MAX_LENGTH as usize
        };
        let alphabet = ['0', '1', '5', '9', 'd', 'h', 'm', 's', 'w', ' ', '.', '-'];
        let mut rng = StdRng::seed_from_u64(20261203);
        let mut agreed_valid = 0;
        for _ in 0..200_000 {
            let len = rng.random_range(0..12);
            let text: String = (0..len).map(|_| *alphabet.choose(&mut rng).unwrap()).collect();
            assert_eq!(admitted(&text), parse_field(&text).is_ok(), "{text:?}");
            agreed_valid += usize::from(admitted(&text));
        }
        assert!(agreed_valid > 100, "the sample must hold valid texts too, not only refusals: {agreed_valid}");
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "45s", "1h30m", "7d", "1d2h3m4s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
