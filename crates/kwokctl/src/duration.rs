//! Go-style durations (`300ms`, `1.5s`, `2m`, `1h30m`, `0`) as used by upstream flags.

use std::time::Duration;

/// Parses a Go duration string. A bare `0` is allowed; negative durations are rejected.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(format!("invalid duration {input:?}"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("invalid duration {input:?}: negative"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {input:?}"))?;
        if number_len == 0 {
            return Err(format!("invalid duration {input:?}"));
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {input:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit {unit:?} in duration {input:?}")),
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    // Go's durations are nanoseconds in an i64 (about 292 years); longer ones are invalid.
    if total > i64::MAX as f64 / 1e9 {
        return Err(format!("invalid duration {input:?}: out of range"));
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {input:?}"))
}

/// Formats a duration the way logs show elapsed times, e.g. `0.25s`, `1m3s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let rounded = (secs * 1000.0).round() / 1000.0;
        format!("{rounded}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_go_range_are_errors() {
        // Found by fuzzing: this panicked in `Duration::from_secs_f64`.
        assert!(parse("92233720368549223372s").is_err());
        assert!(parse("2562048h").is_err());
        assert_eq!(
            parse("2562047h").unwrap(),
            Duration::from_secs(2562047 * 3600)
        );
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse("10").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("5x").is_err());
    }

    #[test]
    fn human_is_short() {
        assert_eq!(human(Duration::from_millis(250)), "0.25s");
        assert_eq!(human(Duration::from_secs(63)), "1m3s");
    }
}
