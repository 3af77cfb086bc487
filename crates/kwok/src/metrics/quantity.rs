//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) as numbers, and the forms the
//! resource metrics API writes them in: CPU in nanocores (`1500000n`), memory in bytes with
//! the largest binary suffix that divides them (`512Ki`).

/// Suffixes and their multipliers.
const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// The value of a quantity in its base unit (cores, bytes).
pub fn parse(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text:?}"
        )
    };
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, m)| text.strip_suffix(suffix).map(|n| (n, *m)))
        .unwrap_or((text, 1.0));
    if number.is_empty() || number.ends_with(['e', 'E']) {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    if !value.is_finite() {
        return Err(invalid());
    }
    Ok(value * multiplier)
}

/// CPU cores as the metrics API writes them: whole nanocores.
pub fn format_cpu(cores: f64) -> String {
    format!("{}n", (cores.max(0.0) * 1e9).round() as u64)
}

/// Bytes with the largest binary suffix that divides them.
pub fn format_memory(bytes: f64) -> String {
    let bytes = bytes.max(0.0).round() as u64;
    for (suffix, unit) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_base_units() {
        assert_eq!(parse("100m").unwrap(), 0.1);
        assert_eq!(parse("2").unwrap(), 2.0);
        assert_eq!(parse("1Mi").unwrap(), 1048576.0);
        assert_eq!(parse("1.5Gi").unwrap(), 1610612736.0);
        assert_eq!(parse("2e3").unwrap(), 2000.0);
        assert!(parse("").is_err());
        assert!(parse("ten").is_err());
    }

    #[test]
    fn metrics_api_forms() {
        assert_eq!(format_cpu(0.25), "250000000n");
        assert_eq!(format_memory(1048576.0), "1Mi");
        assert_eq!(format_memory(1536.0), "1536");
        assert_eq!(format_memory(2048.0), "2Ki");
        assert_eq!(format_memory(0.0), "0");
    }
}
