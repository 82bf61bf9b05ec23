//! Verbal nouns of the derived verb measures, read off their vowelled stems.
//!
//! «إنقاذ» (rescue) is the verbal noun of «أنقذ» (to rescue); after «لـ» it states a
//! purpose ("to save the Aral Sea"), which a translation must not drop. BAMA lists stems,
//! not roots, so the measure is recognized by its pattern: in a pattern `C` stands for one
//! root letter and every other character must be there as written.

use super::buckwalter::is_vocalization;

struct VerbalNoun {
    /// As BAMA vowels stems; the feminine ending is a suffix there («مكافحة»: `mukAfaH`).
    pattern: &'static str,
    /// The verb's consonants are the root's alone (measures II and III: «حدّد», «كافح»),
    /// so the verb does not share the noun's consonant skeleton («تحديد», «مكافحة»).
    verb_is_root: bool,
}

const VERBAL_NOUNS: &[VerbalNoun] = &[
    // II: تحديد
    VerbalNoun {
        pattern: "taCoCiyC",
        verb_is_root: true,
    },
    // III: مكافحة
    VerbalNoun {
        pattern: "muCACaC",
        verb_is_root: true,
    },
    // IV: إنقاذ, and hollow roots: إقامة
    VerbalNoun {
        pattern: "<iCoCAC",
        verb_is_root: false,
    },
    VerbalNoun {
        pattern: "<iCAC",
        verb_is_root: false,
    },
    // V: تطوّر
    VerbalNoun {
        pattern: "taCaC~uC",
        verb_is_root: false,
    },
    // VI: تعاون
    VerbalNoun {
        pattern: "taCACuC",
        verb_is_root: false,
    },
    // VII: انسحاب
    VerbalNoun {
        pattern: "{inoCiCAC",
        verb_is_root: false,
    },
    // VIII: احتواء
    VerbalNoun {
        pattern: "{iCotiCAC",
        verb_is_root: false,
    },
    // X: استخدام, and hollow roots: استعادة
    VerbalNoun {
        pattern: "{isotiCoCAC",
        verb_is_root: false,
    },
    VerbalNoun {
        pattern: "{isotiCAC",
        verb_is_root: false,
    },
];

/// The root letters of `stem` (vowelled Buckwalter) when it fits `pattern`.
fn root_letters(pattern: &str, stem: &str) -> Option<String> {
    if pattern.chars().count() != stem.chars().count() {
        return None;
    }
    let mut root = String::new();
    for (p, s) in pattern.chars().zip(stem.chars()) {
        if p == 'C' {
            if is_vocalization(s) || s == 'A' {
                return None;
            }
            root.push(s);
        } else if p != s {
            return None;
        }
    }
    Some(root)
}

fn measure_of(stem: &str) -> Option<(&'static VerbalNoun, String)> {
    VERBAL_NOUNS
        .iter()
        .find_map(|m| root_letters(m.pattern, stem).map(|root| (m, root)))
}

/// True when `stem` (vowelled) is the verbal noun of a derived measure (II to X).
pub fn is_derived_verbal_noun(stem: &str) -> bool {
    measure_of(stem).is_some()
}

/// The root letters of a verbal noun whose verb is written with them alone, unlike the
/// noun, so that «تأمين» (insurance) can reach «أمّن» (to secure).
pub fn verb_root(stem: &str) -> Option<String> {
    measure_of(stem)
        .filter(|(m, _)| m.verb_is_root)
        .map(|(_, root)| root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbal_nouns_of_derived_measures_are_recognized() {
        for stem in [
            "taHodiyd",
            "mukAfaH",
            "<inoqA*",
            "<iqAm",
            "taTaw~ur",
            "taEAwun",
            "{inosiHAb",
            "{iHotiwA'",
            "{isotixodAm",
            "{isotiEAd",
        ] {
            assert!(is_derived_verbal_noun(stem), "{stem}");
        }
        for stem in ["Sunoduwq", "majolis", "baHor", "xidom", "kitAb", "taqAriyr"] {
            assert!(!is_derived_verbal_noun(stem), "{stem}");
        }
    }

    #[test]
    fn measures_two_and_three_lead_to_their_verbs() {
        assert_eq!(verb_root("ta>omiyn").as_deref(), Some(">mn"));
        assert_eq!(verb_root("taHodiyd").as_deref(), Some("Hdd"));
        assert_eq!(verb_root("mukAfaH").as_deref(), Some("kfH"));
        assert_eq!(verb_root("<inoqA*"), None);
    }
}
