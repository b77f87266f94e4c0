//! One duration grammar for every flag and field: jiff's friendly format (`90s`, `1m`, `1h30m`, `7d`, `2 weeks`,
//! `1.5h`) with days of 24 hours, and a bare number meaning seconds (as `kubectl --request-timeout=30` does).
//! Months and years are refused: their length depends on the date.

use std::time::Duration;

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

/// `1h30m`-style text for a duration, the inverse of `parse` (whole seconds).
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
    fn format_round_trips() {
        for text in ["0s", "45s", "1h30m", "7d", "1d2h3m4s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
