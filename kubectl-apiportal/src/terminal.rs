//! Text from the cluster, made safe to show on a terminal. Whoever may write an object chooses its strings: an
//! owner a product's display name and description, a consumer a request's use case, a platform team an
//! AuthPolicy. Printed raw, an ESC or CSI sequence could recolour the screen, move the cursor over earlier lines,
//! write the clipboard (OSC 52) or retitle the window, a carriage return or a newline could forge a line the
//! plugin never printed, and a bidirectional override could make text read other than it is.
//!
//! Every line the plugin prints for people goes through `visible`: the `say!`/`tell!` macros (the only way the
//! plugin prints, clippy refuses `println!` and its kin here), the table and describe writers, and errors'
//! Display. `-o json|yaml|name` and `key show --reveal` print the data exactly, as data.
//!
//! One rendering everywhere: `\n`, `\r` and `\t` for those three; `\xNN` for the other C0 controls and DEL;
//! `\uNNNN` for C1 controls, the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E,
//! U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators (U+2028, U+2029). Everything
//! else prints as it is, backslashes included: an owner who types a literal `\x1b` gets the same harmless text.

use std::{borrow::Cow, fmt::Write};

/// `text` with every character that could steer a terminal replaced by a visible escape.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(steers_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if steers_terminal(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0, DEL, C1, bidirectional controls and the Unicode line and paragraph separators.
fn steers_terminal(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        let text = "Toys API — jouets, 玩具, emoji 👩‍💻, C:\\path";
        assert!(matches!(visible(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn every_control_is_shown_not_obeyed() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m", "\\x1b[31mred\\x1b[0m"),
            ("\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}", "\\x1b]52;c;ZWNobyBwd25lZA==\\x07"),
            ("\u{1b}[2A\u{1b}[2Kforged", "\\x1b[2A\\x1b[2Kforged"),
            ("line\nCall it: curl evil", "line\\nCall it: curl evil"),
            ("over\rwrite\tx\u{0}\u{7f}", "over\\rwrite\\tx\\x00\\x7f"),
            ("\u{9b}31m c1 csi \u{85}", "\\u009b31m c1 csi \\u0085"),
            ("\u{202e}txt.exe", "\\u202etxt.exe"),
            ("\u{2066}a\u{2069}\u{200e}\u{200f}\u{61c}", "\\u2066a\\u2069\\u200e\\u200f\\u061c"),
            ("\u{2028}\u{2029}", "\\u2028\\u2029"),
        ];
        for (raw, shown) in cases {
            assert_eq!(visible(raw), shown, "{raw:?}");
            assert!(!visible(raw).chars().any(steers_terminal));
        }
    }
}
