//! `modhash-worker`: the sandboxed process `modhash load --policy isolate`
//! (and any host using `modhash_load`) runs untrusted modules in. Shipped
//! with `modhash` so that `cargo install` puts it where the loader looks:
//! next to the `modhash` executable.

fn main() -> std::process::ExitCode {
    modhash_load::worker_main()
}
