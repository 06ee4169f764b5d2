//! The `anchor!` macro expands in the host's crate (the core forbids the
//! `link_section` it needs), so it is tested from outside.

fn anchor() -> modhash::Anchor {
    modhash::anchor!()
}

#[test]
fn an_unsealed_host_reads_the_placeholder() {
    assert_eq!(anchor(), modhash::Anchor::Unsealed);
    assert_eq!(anchor().to_string(), "unsealed");
}
