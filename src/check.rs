//! Check: reference-free tests of a translated segment against its source.

use crate::load::is_arabic_letter;

/// Maps Arabic-Indic (٠-٩) and Persian (۰-۹) digits to ASCII digits.
fn ascii_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
        '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
        _ => None,
    }
}

/// The numbers written in `text`, as ASCII digit strings with thousands separators and
/// decimal marks removed ("1,117,320" → "1117320", "٣٫٥" → "35"), so that a number and
/// its translation compare equal however each script punctuates it.
pub fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if let Some(d) = ascii_digit(c) {
            current.push(d);
            continue;
        }
        // A separator counts only between two digits: "2,3" is one number, "2, 3" two.
        let is_separator = matches!(c, ',' | '.' | '\u{066B}' | '\u{066C}');
        let next_is_digit = chars.get(i + 1).and_then(|&n| ascii_digit(n)).is_some();
        if is_separator && !current.is_empty() && next_is_digit {
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Source numbers that do not appear in the translation.
pub fn missing_numbers(source: &str, translation: &str) -> Vec<String> {
    let mut english = numbers(translation);
    let mut missing = Vec::new();
    for n in numbers(source) {
        match english.iter().position(|e| e == &n) {
            Some(i) => {
                english.swap_remove(i);
            }
            None => missing.push(n),
        }
    }
    missing
}

/// True when Arabic letters were left in the English.
pub fn has_arabic_script(text: &str) -> bool {
    text.chars().any(is_arabic_letter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_script_compare_equal() {
        assert_eq!(numbers("في ١٢ أكتوبر ٢٠٢١م"), vec!["12", "2021"]);
        assert_eq!(numbers("on October 12, 2021"), vec!["12", "2021"]);
        assert_eq!(
            numbers("۱۴۰۲ and 1,117,320,768 bytes"),
            vec!["1402", "1117320768"]
        );
        assert_eq!(numbers("3.5% and 2022-2024."), vec!["35", "2022", "2024"]);
    }

    #[test]
    fn missing_numbers_respect_multiplicity() {
        assert!(missing_numbers("عام 2022م", "in 2022").is_empty());
        assert_eq!(
            missing_numbers("من 14 إلى 15 سبتمبر", "on 14 September"),
            vec!["15"]
        );
        assert_eq!(missing_numbers("5 و 5", "5"), vec!["5"]);
    }
}
