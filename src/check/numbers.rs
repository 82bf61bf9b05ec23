//! Numbers: every number of the source in the English, and none the source lacks.

use super::{Check, CheckKind, Finding, Subject};
use crate::glossary::fold_words;

pub struct Numbers;

impl Check for Numbers {
    fn kind(&self) -> CheckKind {
        CheckKind::Numbers
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        let mut found = Vec::new();
        let missing = missing_numbers(s.source, s.translation);
        if !missing.is_empty() {
            found.push(self.finding(
                s.source,
                format!("number(s) from the source missing: {}", missing.join(", ")),
            ));
        }
        for (wrong, right) in backwards_compound_numbers(s.translation) {
            found.push(Finding::new(
                CheckKind::Numbers,
                format!("“{wrong}” is not English for {right}"),
                format!("Write {right} in digits, not “{wrong}”."),
            ));
        }
        let added = added_numbers(s.source, s.translation);
        if !added.is_empty() {
            found.push(self.finding(
                s.source,
                format!("number(s) not in the source: {}", added.join(", ")),
            ));
        }
        found
    }
}

impl Numbers {
    fn finding(&self, source: &str, message: String) -> Finding {
        let n = numbers(source);
        let hint = if n.is_empty() {
            "Do not add any numbers.".to_string()
        } else {
            format!(
                "Copy every number exactly, in Western digits: {}. Do not add other numbers.",
                n.join(", ")
            )
        };
        Finding::new(CheckKind::Numbers, message, hint)
    }
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

const UNITS: [(&str, &str, u32); 9] = [
    ("one", "first", 1),
    ("two", "second", 2),
    ("three", "third", 3),
    ("four", "fourth", 4),
    ("five", "fifth", 5),
    ("six", "sixth", 6),
    ("seven", "seventh", 7),
    ("eight", "eighth", 8),
    ("nine", "ninth", 9),
];
const TENS: [(&str, &str, u32); 8] = [
    ("twenty", "twentieth", 20),
    ("thirty", "thirtieth", 30),
    ("forty", "fortieth", 40),
    ("fifty", "fiftieth", 50),
    ("sixty", "sixtieth", 60),
    ("seventy", "seventieth", 70),
    ("eighty", "eightieth", 80),
    ("ninety", "ninetieth", 90),
];

/// Arabic says 23 as "three and twenty" («الثالثة والعشرين»); a literal translation
/// keeps that order, which in English is a different number or none. Returns each such
/// phrase with the number it stands for ("third and twentieth" → "23rd"). A cardinal
/// pair after "between" or "from" is a range, not a number.
pub fn backwards_compound_numbers(text: &str) -> Vec<(String, String)> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()).to_lowercase())
        .collect();
    let mut found = Vec::new();
    for i in 0..words.len().saturating_sub(2) {
        if words[i + 1] != "and" {
            continue;
        }
        let unit = UNITS
            .iter()
            .find(|(c, o, _)| words[i] == *c || words[i] == *o);
        let tens = TENS
            .iter()
            .find(|(c, o, _)| words[i + 2] == *c || words[i + 2] == *o);
        let (Some(&(unit_cardinal, _, u)), Some(&(_, tens_ordinal, t))) = (unit, tens) else {
            continue;
        };
        let ordinal = words[i + 2] == tens_ordinal;
        let range = i > 0 && matches!(words[i - 1].as_str(), "between" | "from");
        if !ordinal && (range || words[i] != unit_cardinal) {
            continue;
        }
        let n = t + u;
        let right = if ordinal {
            let suffix = match u {
                1 => "st",
                2 => "nd",
                3 => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        } else {
            n.to_string()
        };
        found.push((words[i..i + 3].join(" "), right));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_compounds_are_found_and_ranges_are_not() {
        assert_eq!(
            backwards_compound_numbers("the third and twentieth sessions of the forum"),
            vec![("third and twentieth".to_string(), "23rd".to_string())]
        );
        assert_eq!(
            backwards_compound_numbers("five and forty delegates"),
            vec![("five and forty".to_string(), "45".to_string())]
        );
        assert!(backwards_compound_numbers("between one and twenty delegates").is_empty());
        assert!(backwards_compound_numbers("the first and second sessions").is_empty());
        assert!(backwards_compound_numbers("the 23rd session").is_empty());
    }
}
