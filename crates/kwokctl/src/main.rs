fn main() -> std::process::ExitCode {
    kwokctl::run(std::env::args_os())
}
