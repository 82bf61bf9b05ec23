//! Buckwalter transliteration: the one-ASCII-character-per-Arabic-letter spelling the
//! BAMA lexicon is written in.

/// Arabic letters and diacritics with their Buckwalter characters.
const TABLE: &[(char, char)] = &[
    ('\u{0621}', '\''),
    ('\u{0622}', '|'),
    ('\u{0623}', '>'),
    ('\u{0624}', '&'),
    ('\u{0625}', '<'),
    ('\u{0626}', '}'),
    ('\u{0627}', 'A'),
    ('\u{0628}', 'b'),
    ('\u{0629}', 'p'),
    ('\u{062A}', 't'),
    ('\u{062B}', 'v'),
    ('\u{062C}', 'j'),
    ('\u{062D}', 'H'),
    ('\u{062E}', 'x'),
    ('\u{062F}', 'd'),
    ('\u{0630}', '*'),
    ('\u{0631}', 'r'),
    ('\u{0632}', 'z'),
    ('\u{0633}', 's'),
    ('\u{0634}', '$'),
    ('\u{0635}', 'S'),
    ('\u{0636}', 'D'),
    ('\u{0637}', 'T'),
    ('\u{0638}', 'Z'),
    ('\u{0639}', 'E'),
    ('\u{063A}', 'g'),
    ('\u{0640}', '_'),
    ('\u{0641}', 'f'),
    ('\u{0642}', 'q'),
    ('\u{0643}', 'k'),
    ('\u{0644}', 'l'),
    ('\u{0645}', 'm'),
    ('\u{0646}', 'n'),
    ('\u{0647}', 'h'),
    ('\u{0648}', 'w'),
    ('\u{0649}', 'Y'),
    ('\u{064A}', 'y'),
    ('\u{064B}', 'F'),
    ('\u{064C}', 'N'),
    ('\u{064D}', 'K'),
    ('\u{064E}', 'a'),
    ('\u{064F}', 'u'),
    ('\u{0650}', 'i'),
    ('\u{0651}', '~'),
    ('\u{0652}', 'o'),
    ('\u{0670}', '`'),
    ('\u{0671}', '{'),
    ('\u{067E}', 'P'),
    ('\u{0686}', 'J'),
    ('\u{06A4}', 'V'),
    ('\u{06AF}', 'G'),
];

/// The Buckwalter spelling of `arabic`, or `None` if it holds a character the scheme
/// has no letter for. Persian kaf and yeh, common in pasted text, read as Arabic ones.
pub fn to_buckwalter(arabic: &str) -> Option<String> {
    arabic
        .chars()
        .map(|c| {
            let c = match c {
                '\u{06A9}' => '\u{0643}',
                '\u{06CC}' => '\u{064A}',
                other => other,
            };
            TABLE.iter().find(|(a, _)| *a == c).map(|(_, b)| *b)
        })
        .collect()
}

/// Arabic script for a Buckwalter string; characters outside the scheme are kept.
pub fn to_arabic(buckwalter: &str) -> String {
    buckwalter
        .chars()
        .map(|b| {
            TABLE
                .iter()
                .find(|(_, x)| *x == b)
                .map(|(a, _)| *a)
                .unwrap_or(b)
        })
        .collect()
}

/// Short vowels, shadda, sukun, tanwin, dagger alef and tatweel: what unvocalized text
/// leaves out, so lookups ignore it.
pub fn is_vocalization(b: char) -> bool {
    matches!(b, 'F' | 'N' | 'K' | 'a' | 'u' | 'i' | '~' | 'o' | '`' | '_')
}

/// The spelling variants writers mix freely, folded for lookup: hamza forms of alef
/// and alef wasla to bare alef, alef maqsura to ya, ta marbuta to ha.
pub fn fold(b: char) -> char {
    match b {
        '>' | '<' | '|' | '{' => 'A',
        'Y' => 'y',
        'p' => 'h',
        other => other,
    }
}

/// `word` without vocalization and with its spelling variants folded.
pub fn lookup_key(buckwalter: &str) -> String {
    buckwalter
        .chars()
        .filter(|&c| !is_vocalization(c))
        .map(fold)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_folds() {
        let bw = to_buckwalter("والأقمار").unwrap();
        assert_eq!(bw, "wAl>qmAr");
        assert_eq!(to_arabic(&bw), "والأقمار");
        assert_eq!(lookup_key("wAl>aqomAr"), "wAlAqmAr");
        assert_eq!(lookup_key("mdrsp"), "mdrsh");
        assert_eq!(to_buckwalter("كتاب!"), None);
        assert_eq!(to_buckwalter("ی").as_deref(), Some("y"));
    }
}
