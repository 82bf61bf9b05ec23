//! English word matching shared by the checks that compare glosses with a translation.

/// The lower-cased words of `text` (letters and apostrophes; a possessive 's dropped).
pub fn english_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphabetic() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .map(|w| w.strip_suffix("'s").unwrap_or(w))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A crude English stem: one inflection ending and a final "e" off ("saving", "saved",
/// "saves" and "save" all give "sav").
fn stem(word: &str) -> &str {
    let mut w = word;
    for ending in ["ing", "ed", "es", "s"] {
        if let Some(rest) = w.strip_suffix(ending) {
            if rest.len() >= 3 {
                w = rest;
                break;
            }
        }
    }
    w.strip_suffix('e').filter(|r| r.len() >= 3).unwrap_or(w)
}

/// Two lower-case English words that are forms of one another: equal, the same crude
/// stem ("save", "saving"), sharing a stem of five letters ("sleeper", "sleeping"), or one
/// the other plus at most three letters ("Asia", "Asian"; "state", "states").
pub fn close(a: &str, b: &str) -> bool {
    if a == b || stem(a) == stem(b) {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 4 && long.starts_with(short) && long.len() - short.len() <= 3 {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    common >= 5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_close_and_other_words_are_not() {
        assert!(close("asia", "asian"));
        assert!(close("states", "state"));
        assert!(close("sleeper", "sleeping"));
        assert!(close("withdraw", "withdrew"));
        assert!(close("save", "saving") && close("rescued", "rescue"));
        assert!(!close("money", "monetary"));
        assert!(close("west", "western"));
        assert!(!close("fund", "monetary"));
        assert!(close("cat", "cats") && !close("cat", "car"));
        assert_eq!(
            english_words("Rahmon's visit, the \"GCC\" and Nur-Sultan"),
            ["rahmon", "visit", "the", "gcc", "and", "nur", "sultan"]
        );
    }
}
