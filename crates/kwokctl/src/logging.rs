//! Logs go to stderr: `LEVEL message key=value ...`, coloured only on a terminal.

use std::io::IsTerminal;

use tracing::Level;

/// Maps upstream's `-v` values (`DEBUG`, `INFO`, `WARN`, `ERROR` or `-4`, `0`, `4`, `8`) to a level.
pub fn parse_level(value: &str) -> Option<Level> {
    match value.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => Some(Level::DEBUG),
        "INFO" | "" => Some(Level::INFO),
        "WARN" | "WARNING" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        other => {
            let n: i32 = other.parse().ok()?;
            Some(match n {
                i32::MIN..=-4 => Level::DEBUG,
                -3..=3 => Level::INFO,
                4..=7 => Level::WARN,
                _ => Level::ERROR,
            })
        }
    }
}

/// Installs the stderr logger; an unknown level falls back to INFO with a warning.
pub fn init(verbosity: &str) {
    let level = parse_level(verbosity);
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .with_max_level(level.unwrap_or(Level::INFO))
        .try_init();
    if level.is_none() {
        tracing::warn!(v = verbosity, "Unknown log level, using INFO");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_accept_names_and_numbers() {
        assert_eq!(parse_level("debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("-4"), Some(Level::DEBUG));
        assert_eq!(parse_level("0"), Some(Level::INFO));
        assert_eq!(parse_level("4"), Some(Level::WARN));
        assert_eq!(parse_level("8"), Some(Level::ERROR));
        assert_eq!(parse_level("loud"), None);
    }
}
