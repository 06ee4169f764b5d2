//! Every CLI behaviour, error cases included, as a small file under
//! `tests/cmd/`: the command, its expected stdout, stderr and exit code.
//! Together they read as the manual.

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .case("tests/cmd/*.toml")
        .case("tests/cmd/*.md");
}
