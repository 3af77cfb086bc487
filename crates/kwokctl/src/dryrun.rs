//! `--dry-run`: print what would be done, in upstream's shell-like notation, and do nothing.

use std::path::Path;

/// Prints one dry-run line on stdout.
pub fn say(line: impl AsRef<str>) {
    println!("{}", line.as_ref());
}

/// Prints how a detached component would be started.
pub fn fork(cwd: &Path, binary: &Path, args: &[String], log: &Path, pid_file: &Path) {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| binary.display().to_string());
    let mut text = format!("cd {} && \\\n  {name}", cwd.display());
    let mut args = args.iter().peekable();
    while let Some(arg) = args.next() {
        text.push_str(" \\\n  ");
        text.push_str(arg);
        // Keep `--flag value` pairs on one line.
        if arg.starts_with("--")
            && !arg.contains('=')
            && let Some(value) = args.next_if(|v| !v.starts_with('-'))
        {
            text.push(' ');
            text.push_str(value);
        }
    }
    text.push_str(&format!(" \\\n  >{} \\\n  2>&1 \\\n  &", log.display()));
    say(text);
    say(format!("echo $! >{}", pid_file.display()));
}
