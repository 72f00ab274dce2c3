fn main() -> std::process::ExitCode {
    cchc::cli::main()
}
