//! Check: reference-free tests of a translated segment against its source.
//!
//! A small LLM changes numbers, leaves words in Arabic script, loops, and drops or
//! invents text. None of that needs a reference to notice: each check here compares the
//! English with its Arabic source, and a failed check becomes a [`Warning`] that every
//! output shows the reader.

use serde::{Deserialize, Serialize};

use crate::glossary::{fold_words, Term};
use crate::load::is_arabic_letter;

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A number in the source is missing from the English, or one was added.
    Numbers,
    /// Arabic script left in the English.
    Untranslated,
    /// The output repeats the source instead of translating it.
    Echo,
    /// The same words over and over.
    Repetition,
    /// Generation stopped at the token cap: the end may be missing.
    Truncated,
    /// Far shorter or longer than translations of this length normally are.
    Length,
    /// A glossary term was not rendered as the glossary says.
    Glossary,
}

impl CheckKind {
    pub const ALL: [CheckKind; 7] = [
        CheckKind::Numbers,
        CheckKind::Untranslated,
        CheckKind::Echo,
        CheckKind::Repetition,
        CheckKind::Truncated,
        CheckKind::Length,
        CheckKind::Glossary,
    ];

    /// The name of a check as the JSON record spells it.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Numbers => "numbers",
            CheckKind::Untranslated => "untranslated",
            CheckKind::Echo => "echo",
            CheckKind::Repetition => "repetition",
            CheckKind::Truncated => "truncated",
            CheckKind::Length => "length",
            CheckKind::Glossary => "glossary",
        }
    }
}

/// A reason to doubt one translated segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub check: CheckKind,
    pub message: String,
}

impl Warning {
    fn new(check: CheckKind, message: String) -> Self {
        Self { check, message }
    }
}

/// English/Arabic length ratio in characters. FLORES-200 human translations range from
/// 0.68 to 1.9 over 1012 sentences; beyond these bounds something was dropped or invented.
const MIN_LENGTH_RATIO: f64 = 0.5;
const MAX_LENGTH_RATIO: f64 = 2.5;
/// Ratios of very short segments (headings, datelines) say little.
const MIN_CHARS_FOR_RATIO: usize = 30;

/// Runs every check on one translated segment.
pub fn check_segment(
    source: &str,
    translation: &str,
    hit_cap: bool,
    terms: &[&Term],
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let arabic_share = arabic_letter_share(translation);
    if arabic_share > 0.5 {
        warnings.push(Warning::new(
            CheckKind::Echo,
            "the output is mostly Arabic: the source was repeated, not translated".into(),
        ));
    } else if let Some(word) = translation
        .split_whitespace()
        .find(|w| has_arabic_script(w))
    {
        warnings.push(Warning::new(
            CheckKind::Untranslated,
            format!("Arabic script left in the English: «{word}»"),
        ));
    }
    let missing = missing_numbers(source, translation);
    if !missing.is_empty() {
        warnings.push(Warning::new(
            CheckKind::Numbers,
            format!("number(s) from the source missing: {}", missing.join(", ")),
        ));
    }
    let added = added_numbers(source, translation);
    if !added.is_empty() {
        warnings.push(Warning::new(
            CheckKind::Numbers,
            format!("number(s) not in the source: {}", added.join(", ")),
        ));
    }
    if hit_cap {
        warnings.push(Warning::new(
            CheckKind::Truncated,
            "generation hit the token cap; the end may be missing".into(),
        ));
    }
    if let Some(phrase) = repeated_phrase(translation) {
        warnings.push(Warning::new(
            CheckKind::Repetition,
            format!("repeats «{phrase}»"),
        ));
    }
    let source_chars = source.chars().filter(|c| !c.is_whitespace()).count();
    if source_chars >= MIN_CHARS_FOR_RATIO && arabic_share <= 0.5 {
        let ratio =
            translation.chars().filter(|c| !c.is_whitespace()).count() as f64 / source_chars as f64;
        if !(MIN_LENGTH_RATIO..=MAX_LENGTH_RATIO).contains(&ratio) {
            warnings.push(Warning::new(
                CheckKind::Length,
                format!("English is {ratio:.2}× the length of the Arabic (normal: 0.7–1.9×)"),
            ));
        }
    }
    for term in terms {
        if !term.is_rendered_in(translation) {
            warnings.push(Warning::new(
                CheckKind::Glossary,
                format!(
                    "«{}» should be rendered as “{}”",
                    term.arabic,
                    term.preferred()
                ),
            ));
        }
    }
    warnings
}

fn arabic_letter_share(text: &str) -> f64 {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return 0.0;
    }
    text.chars().filter(|&c| is_arabic_letter(c)).count() as f64 / letters as f64
}

/// Arabic number words and ordinals, spelling-folded as [`fold_words`] folds them. When
/// the source spells numbers out, small numbers in the English ("the 23rd session") are
/// translations, not inventions.
const ARABIC_NUMBER_WORDS: &[&str] = &[
    "واحد",
    "واحده",
    "اثنان",
    "اثنين",
    "اثنتين",
    "ثلاث",
    "ثلاثه",
    "ثلاثين",
    "اربع",
    "اربعه",
    "اربعين",
    "خمس",
    "خمسه",
    "خمسين",
    "ست",
    "سته",
    "ستين",
    "سبع",
    "سبعه",
    "سبعين",
    "ثمان",
    "ثماني",
    "ثمانيه",
    "ثمانين",
    "تسع",
    "تسعه",
    "تسعين",
    "عشر",
    "عشره",
    "عشرين",
    "مائه",
    "مئه",
    "الف",
    "مليون",
    "مليار",
    "اول",
    "اولي",
    "ثاني",
    "ثانيه",
    "ثالث",
    "ثالثه",
    "رابع",
    "رابعه",
    "خامس",
    "خامسه",
    "سادس",
    "سادسه",
    "سابع",
    "سابعه",
    "ثامن",
    "ثامنه",
    "تاسع",
    "تاسعه",
    "عاشر",
    "عاشره",
];

fn spells_out_numbers(source: &str) -> bool {
    fold_words(source).iter().any(|w| {
        let bare = w.strip_prefix('و').unwrap_or(w);
        let bare = bare
            .strip_prefix("ال")
            .or_else(|| bare.strip_prefix("لل"))
            .unwrap_or(bare);
        ARABIC_NUMBER_WORDS.contains(&bare)
    })
}

/// Numbers in the English that the source does not have.
pub fn added_numbers(source: &str, translation: &str) -> Vec<String> {
    let spelled_out = spells_out_numbers(source);
    let mut source_numbers = numbers(source);
    let mut added = Vec::new();
    for n in numbers(translation) {
        match source_numbers.iter().position(|s| s == &n) {
            Some(i) => {
                source_numbers.swap_remove(i);
            }
            None => {
                let small = n.parse::<u64>().is_ok_and(|v| v <= 1000);
                if !(spelled_out && small) {
                    added.push(n);
                }
            }
        }
    }
    added
}

/// The signature of a decoding loop: a short phrase (1–4 words) three times back to back,
/// a longer one (5–20 words) twice back to back, or an 8-word run three times anywhere.
/// Press releases legitimately repeat "Minister of Foreign Affairs of …" down a list, so
/// shorter phrases scattered through the text do not count.
pub fn repeated_phrase(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let back_to_back = |n: usize, times: usize| {
        (0..words.len().saturating_sub(n * times - 1)).find_map(|start| {
            let phrase = &words[start..start + n];
            (1..times)
                .all(|k| words.get(start + k * n..start + (k + 1) * n) == Some(phrase))
                .then(|| phrase.join(" "))
        })
    };
    if let Some(p) = (1..=4).find_map(|n| back_to_back(n, 3)) {
        return Some(p);
    }
    if let Some(p) = (5..=20).find_map(|n| back_to_back(n, 2)) {
        return Some(p);
    }
    let mut counts = std::collections::HashMap::new();
    for window in words.windows(8) {
        let c = counts.entry(window).or_insert(0);
        *c += 1;
        if *c >= 3 {
            return Some(window.join(" "));
        }
    }
    None
}

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
    use crate::glossary::Glossary;

    fn kinds(w: &[Warning]) -> Vec<CheckKind> {
        w.iter().map(|w| w.check).collect()
    }

    #[test]
    fn check_names_match_the_json_record() {
        for check in CheckKind::ALL {
            assert_eq!(
                serde_json::to_value(check).unwrap(),
                serde_json::Value::from(check.name())
            );
        }
    }

    #[test]
    fn a_faithful_translation_passes() {
        let g = Glossary::default_glossary();
        let src = "عقد مجلس التعاون اجتماعه في الرياض يوم 12 أكتوبر 2021م.";
        let w = check_segment(
            src,
            "The GCC held its meeting in Riyadh on October 12, 2021.",
            false,
            &g.find(src),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn each_failure_is_named() {
        let src = "عقد المجلس اجتماعه في الرياض يوم 12 أكتوبر 2021م.";
        let w = check_segment(
            src,
            "The council met in Riyadh on October 13, 2021.",
            false,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Numbers, CheckKind::Numbers]);
        assert!(w[0].message.contains("12") && w[1].message.contains("13"));

        let w = check_segment(
            src,
            "The council met in الرياض on October 12, 2021.",
            false,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Untranslated]);
        let w = check_segment(src, src, false, &[]);
        assert_eq!(kinds(&w), vec![CheckKind::Echo]);
        let w = check_segment(
            src,
            "The council met on 12 October 2021 and and and and.",
            true,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Truncated, CheckKind::Repetition]);
        let w = check_segment(src, "Met 12 2021.", false, &[]);
        assert_eq!(kinds(&w), vec![CheckKind::Length]);
    }

    #[test]
    fn spelled_out_numbers_may_become_digits() {
        let src = "الدورة الثالثة والعشرين لمنتدى الدوحة";
        assert!(added_numbers(src, "the 23rd Doha Forum").is_empty());
        assert_eq!(
            added_numbers("منتدى الدوحة", "the 23rd Doha Forum"),
            vec!["23"]
        );
        // "ست" inside a longer word is not the number six.
        assert_eq!(
            added_numbers("حوار استراتيجي", "6 strategic dialogues"),
            vec!["6"]
        );
    }

    #[test]
    fn loops_are_found_but_ordinary_english_is_not() {
        assert_eq!(
            repeated_phrase("the council the council the council met"),
            Some("the council".into())
        );
        assert!(repeated_phrase("very very good, and the council met the council").is_none());
        assert!(repeated_phrase(
            "Minister of Foreign Affairs of Kazakhstan, Minister of Foreign Affairs of Kyrgyzstan, \
             Minister of Foreign Affairs of Turkmenistan and Minister of Foreign Affairs of Uzbekistan"
        )
        .is_none());
        let english =
            "the two sides discussed regional issues and the two sides discussed regional issues";
        assert!(
            repeated_phrase(english).is_none(),
            "one repeat after a conjunction is English"
        );
        let looped =
            "the two sides discussed regional issues the two sides discussed regional issues";
        assert_eq!(
            repeated_phrase(looped),
            Some("the two sides discussed regional issues".into())
        );
    }

    #[test]
    fn glossary_terms_must_be_rendered() {
        let g = Glossary::default_glossary();
        let src = "في مدينة نور سلطان عاصمة جمهورية كازاخستان";
        let w = check_segment(
            src,
            "in the city of Nuri Sultan, capital of Kazakhstan",
            false,
            &g.find(src),
        );
        assert_eq!(kinds(&w), vec![CheckKind::Glossary]);
        assert!(w[0].message.contains("Nur-Sultan"));
    }

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
