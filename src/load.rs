//! Load: read a document, normalize it, split it into classified paragraphs.

/// True for letters of the Arabic script blocks (not digits or punctuation).
pub fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{064A}' | '\u{066E}'..='\u{06D3}' | '\u{06FA}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
}

/// Whitespace-separated words containing at least one Arabic letter.
pub fn count_arabic_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(is_arabic_letter))
        .count()
}
