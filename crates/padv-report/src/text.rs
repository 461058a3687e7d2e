//! Text from trajectories and records on its way into the page: control characters out,
//! long texts cut, so that no input can break the markup (HTML escaping itself is maud's).

/// `s` with every control character except tab and newline (C0 including carriage return,
/// DEL, C1) and every Unicode noncharacter replaced by U+FFFD: HTML forbids them in text
/// and a parser reports each one as an error.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            let forbidden = (c.is_control() && c != '\t' && c != '\n')
                || matches!(c as u32, 0xFDD0..=0xFDEF)
                || (c as u32) & 0xFFFE == 0xFFFE;
            if forbidden {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// [`clean`] `s`, cut to at most `max` characters (with `…` and the number left out).
pub(crate) fn clean_cut(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return clean(s);
    }
    let head: String = s.chars().take(max).collect();
    format!("{} … [{} more characters]", clean(&head), n - max)
}

/// A number for the page: 3 decimals, `–` when absent or not finite.
pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "–".to_string(),
    }
}

/// A score for the page: 3 decimals, or 3 significant digits in scientific notation when it
/// is too small for them (PA of one step can be 1e-4); `–` when absent or not finite.
pub(crate) fn score(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x != 0.0 && x.abs() < 0.01 => format!("{x:.2e}"),
        _ => num(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_noncharacters_are_replaced() {
        assert_eq!(
            clean("a\u{1b}[31mb\r\n\t\u{0}\u{85}\u{FFFF}"),
            "a\u{FFFD}[31mb\u{FFFD}\n\t\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(clean("<ok> & \"fine\""), "<ok> & \"fine\"");
    }

    #[test]
    fn cutting_counts_characters_not_bytes() {
        assert_eq!(clean_cut("ééé", 3), "ééé");
        assert_eq!(clean_cut("éééé", 2), "éé … [2 more characters]");
        assert_eq!(num(Some(0.5)), "0.500");
        assert_eq!(num(Some(f64::NAN)), "–");
        assert_eq!(num(None), "–");
        assert_eq!(score(Some(-0.000_961_2)), "-9.61e-4");
        assert_eq!(score(Some(0.0)), "0.000");
        assert_eq!(score(Some(1.5)), "1.500");
    }
}
