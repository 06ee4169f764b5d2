//! `modhash-worker`: runs one untrusted module in a locked-down process.
//!
//! Started by a host through `modhash_load::isolated` (never by hand), with
//! its end of the socket pair as stdin, `/dev/null` as stdout and a pipe to
//! the host as stderr. The program itself lives in the library, next to the
//! host side it speaks to; see `docs/isolation.md`.

fn main() -> std::process::ExitCode {
    modhash_load::worker_main()
}
