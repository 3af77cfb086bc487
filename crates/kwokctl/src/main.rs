fn main() -> std::process::ExitCode {
    // Like upstream's Go binary, end quietly when the reader of stdout goes away
    // (`kwokctl get clusters | head -1`) instead of failing the write.
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    kwokctl::run(std::env::args_os())
}
