//! Kubernetes resource quantities (`100m`, `1`, `1.5Gi`, `128Mi`, `1k`, `1e3`) as integers.

/// Parses a quantity into thousandths of a unit, rounding up (as Kubernetes' `MilliValue`).
/// Returns `None` for text that is not a quantity.
pub fn parse_milli(text: &str) -> Option<i128> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().ok()?;
    let mut exp10 = -i32::try_from(frac_part.len()).ok()?;
    let mut binary: i128 = 1;
    match suffix {
        "" => {}
        "Ki" => binary = 1 << 10,
        "Mi" => binary = 1 << 20,
        "Gi" => binary = 1 << 30,
        "Ti" => binary = 1 << 40,
        "Pi" => binary = 1 << 50,
        "Ei" => binary = 1 << 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        other if other.starts_with(['e', 'E']) => {
            let e: i32 = other[1..].parse().ok()?;
            exp10 = exp10.checked_add(e)?;
        }
        _ => return None,
    }
    exp10 = exp10.checked_add(3)?; // thousandths
    let mut value = mantissa.checked_mul(binary)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp10.unsigned_abs())?)?;
    } else {
        // Rounded up; a divisor past i128 leaves at most one thousandth.
        value = match 10i128.checked_pow(exp10.unsigned_abs()) {
            Some(div) => value / div + i128::from(value % div != 0),
            None => i128::from(value != 0),
        };
    }
    Some(if negative { -value } else { value })
}

/// A quantity in whole units, rounded up (memory in bytes, pods, extended resources).
pub fn parse_units(text: &str) -> Option<i64> {
    let milli = parse_milli(text)?;
    let units = if milli >= 0 {
        (milli + 999) / 1000
    } else {
        milli / 1000
    };
    Some(units.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// A quantity in thousandths (cpu in millicores).
pub fn parse_milli_i64(text: &str) -> Option<i64> {
    parse_milli(text).map(|m| m.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(parse_milli_i64("100m"), Some(100));
        assert_eq!(parse_milli_i64("1"), Some(1000));
        assert_eq!(parse_milli_i64("0.5"), Some(500));
        assert_eq!(parse_milli_i64("2.25"), Some(2250));
        assert_eq!(parse_milli_i64("1k"), Some(1_000_000));
        assert_eq!(parse_milli_i64("1e3"), Some(1_000_000));
        assert_eq!(parse_milli_i64("1E-3"), Some(1));
        assert_eq!(parse_milli_i64("100u"), Some(1)); // rounded up
        assert_eq!(parse_milli_i64("0"), Some(0));
        assert_eq!(parse_milli_i64("+3"), Some(3000));
        assert_eq!(parse_milli_i64("-1"), Some(-1000));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_units("1Gi"), Some(1 << 30));
        assert_eq!(parse_units("128Mi"), Some(128 << 20));
        assert_eq!(parse_units("1.5Ki"), Some(1536));
        assert_eq!(parse_units("1G"), Some(1_000_000_000));
        assert_eq!(parse_units("1k"), Some(1000));
        assert_eq!(parse_units("1e3"), Some(1000));
        assert_eq!(parse_units("110"), Some(110));
        assert_eq!(parse_units("500m"), Some(1)); // rounded up
        assert_eq!(parse_units("1Ei"), Some(1 << 60));
    }

    #[test]
    fn tiny_and_huge_exponents() {
        // Found by fuzzing: "1e-66" overflowed while rounding up.
        assert_eq!(parse_milli("1e-66"), Some(1));
        assert_eq!(parse_milli("0e-66"), Some(0));
        assert_eq!(
            parse_milli("170141183460469231731687303715884105727n"),
            Some(i128::MAX / 1_000_000 + 1)
        );
        assert_eq!(parse_milli("0.5e-2147483648"), None);
        assert_eq!(parse_milli("1e2147483647"), None);
        assert_eq!(parse_milli("1e40"), None);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1Qi", "1.2.3", ".", "1e", "Mi", "1 Gi"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }
}
