//! Text from an isolated module, made safe to print.
//!
//! Whatever an isolated worker says — its stderr, the messages of its
//! errors — may come from the module, and the host prints it to its own
//! stderr or log. Escaped, it stays one line of visible text: no cursor
//! movement, no erased prefix, no line that looks like the host's own.

use std::io::Write;

/// Append `raw` as printable text: valid UTF-8 stays as it is, except
/// control characters (C0, DEL, C1), the backslash and the invisible
/// characters that change how a terminal lays text out (zero-width and
/// bidirectional controls), which become `\xNN` or `\u{NNNN}`; invalid
/// bytes become `\xNN`. Tabs are kept.
pub(crate) fn escape(raw: &[u8], out: &mut Vec<u8>) {
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.push(b'\t'),
                '\\' => out.extend_from_slice(b"\\\\"),
                c if u32::from(c) < 0x80 && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if c.is_control() || is_layout_control(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
                }
                c => {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
}

/// Zero-width, line/paragraph separators, bidirectional embeddings,
/// overrides and isolates, invisible operators and the byte-order mark.
fn is_layout_control(c: char) -> bool {
    matches!(
        u32::from(c),
        0x061C | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF
    )
}

/// [`escape`] into a `String`.
pub(crate) fn escaped(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    escape(raw, &mut out);
    // Escaping leaves only valid UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn controls_backslashes_invalid_bytes_and_bidi_are_escaped() {
        assert_eq!(
            escaped(b"ok\t\x1b[2K\rx\n\xff\xc3\xa9\\\xe2\x80\xae\xc2\x9b\x7f"),
            "ok\t\\x1b[2K\\x0dx\\x0a\\xff\u{e9}\\\\\\u{202e}\\u{009b}\\x7f"
        );
    }
}
