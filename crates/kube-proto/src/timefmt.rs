//! RFC 3339 timestamps and Go duration strings, the JSON forms of
//! `metav1.Time`, `metav1.MicroTime` and `metav1.Duration`.

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix seconds (+ optional microseconds) as RFC 3339 in UTC.
/// Years outside 0000..=9999 are an error, as in Go's JSON encoding.
pub(crate) fn format_rfc3339(seconds: i64, micros: Option<u32>) -> Result<String, String> {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(format!(
            "timestamp {seconds} is outside the year range [0,9999]"
        ));
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    Ok(match micros {
        None => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        Some(us) => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}Z"),
    })
}

/// Parses an RFC 3339 timestamp into (Unix seconds, nanoseconds).
pub(crate) fn parse_rfc3339(s: &str) -> Result<(i64, u32), String> {
    let err = || format!("invalid RFC 3339 time {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(err());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(err)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(err());
        }
        let value: u32 = frac[..digits].parse().map_err(|_| err())?;
        nanos = value * 10u32.pow((9 - digits) as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
            if rb.len() != 6
                || !matches!(rb[0], b'+' | b'-')
                || rb[3] != b':'
                || !digits(&rb[1..3])
                || !digits(&rb[4..6])
            {
                return Err(err());
            }
            let oh: i64 = rest[1..3].parse().map_err(|_| err())?;
            let om: i64 = rest[4..6].parse().map_err(|_| err())?;
            let off = oh * 3600 + om * 60;
            if rb[0] == b'-' { -off } else { off }
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    Ok((days * 86_400 + hour * 3600 + min * 60 + sec - offset, nanos))
}

/// Formats nanoseconds as Go's `time.Duration.String()` does.
pub(crate) fn format_go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    let frac = |value: u64, unit: u64| -> String {
        let (int, rem) = (value / unit, value % unit);
        if rem == 0 {
            return int.to_string();
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 1_000));
    }
    if u < NANOS_PER_SEC as u64 {
        return format!("{sign}{}ms", frac(u, 1_000_000));
    }
    let secs = u / NANOS_PER_SEC as u64;
    let (h, m) = (secs / 3600, secs / 60 % 60);
    let s = frac(u % (60 * NANOS_PER_SEC as u64), NANOS_PER_SEC as u64);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// Parses a Go duration string (`1h2m3.5s`, `300ms`, `-1.5h`) into nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<i64, String> {
    let err = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return Err(err());
        }
        let value: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let nanos = total.round() as i64;
    Ok(if neg { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_roundtrip() {
        assert_eq!(format_rfc3339(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_704_164_645, None).unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            format_rfc3339(1_704_164_645, Some(123_456)).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            parse_rfc3339("2024-01-02T03:04:05Z").unwrap(),
            (1_704_164_645, 0)
        );
        assert_eq!(
            parse_rfc3339("2024-01-02T04:04:05.5+01:00").unwrap(),
            (1_704_164_645, 500_000_000)
        );
        assert_eq!(
            format_rfc3339(-62_135_596_800, None).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        assert!(format_rfc3339(i64::MAX, None).is_err());
        assert!(format_rfc3339(i64::MIN, None).is_err());
        assert!(parse_rfc3339("2024-01-02 03:04:05Z").is_err());
        assert!(parse_rfc3339("2024-01-02T03:04:05.Z").is_err());
        assert!(parse_rfc3339("2024-01-02T03:04:05+é:00").is_err());
        assert!(parse_rfc3339("2024-01-02T03:04:0é").is_err());
    }

    #[test]
    fn go_durations() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
        ];
        for (n, s) in cases {
            assert_eq!(format_go_duration(n), s);
            assert_eq!(parse_go_duration(s).unwrap(), n, "{s}");
        }
        assert_eq!(format_go_duration(i64::MIN), "-2562047h47m16.854775808s");
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
