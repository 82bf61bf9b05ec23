//! Segment: split a paragraph into sentences, and over-long sentences into
//! clause-sized pieces that fit the model's budget.
//!
//! Both steps only ever cut at whitespace between tokens and return slices of
//! their input, so joining the pieces with single spaces gives back the text
//! (normalized text has no whitespace runs): nothing is dropped or rewritten.
//!
//! When a boundary is ambiguous we do not split. A missed split costs a longer
//! segment, which `segment_paragraph` cuts down anyway; a wrong split hands the
//! model half a sentence, which it translates badly.

use crate::load::{is_arabic_letter, is_closing_punctuation};

/// Split a paragraph into sentences, keeping each sentence's final punctuation
/// (and any closing quotes or brackets after it) with it.
pub fn split_sentences(paragraph: &str) -> Vec<String> {
    let tokens = tokens(paragraph);
    let mut sentences = Vec::new();
    let mut first = 0;
    for i in 0..tokens.len() {
        let is_last = i + 1 == tokens.len();
        if is_last || ends_sentence(paragraph, &tokens, first, i) {
            sentences.push(span(paragraph, &tokens[first..=i]).to_string());
            first = i + 1;
        }
    }
    sentences
}

/// Split a paragraph into segments of at most `max_tokens` (as measured by
/// `count_tokens`): its sentences, with any sentence that is too long cut at
/// clause boundaries. A single word longer than the cap is kept whole.
pub fn segment_paragraph(
    paragraph: &str,
    max_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<String> {
    let max_tokens = max_tokens.max(1);
    let mut pieces = Vec::new();
    for sentence in split_sentences(paragraph) {
        fit(&sentence, max_tokens, count_tokens, &mut pieces);
    }
    pieces
}

/// A whitespace-delimited token, as a byte range of the text it came from.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(Token { start: s, end: i });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Token {
            start: s,
            end: text.len(),
        });
    }
    out
}

/// The text from the first to the last of `tokens` (which must be non-empty).
fn span<'a>(text: &'a str, tokens: &[Token]) -> &'a str {
    match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => &text[first.start..last.end],
        _ => "",
    }
}

fn token_text(text: &str, token: Token) -> &str {
    &text[token.start..token.end]
}

// ---------------------------------------------------------------------------
// Sentence boundaries
// ---------------------------------------------------------------------------

/// Whether token `i` (not the last) ends a sentence; `first` is the index of
/// the first token of the sentence it belongs to.
fn ends_sentence(text: &str, tokens: &[Token], first: usize, i: usize) -> bool {
    let token = token_text(text, tokens[i]);
    let next = token_text(text, tokens[i + 1]);
    // Stray punctuation after the end ("الوسطى. .") belongs to this sentence:
    // on its own it would be a segment with nothing to translate.
    if !has_alphanumeric(next) {
        return false;
    }
    let core = token.trim_end_matches(is_closing_punctuation);
    let Some(word) = core.strip_suffix('.') else {
        return core.ends_with(['!', '?', '؟', '؛', '…']) && !continues_latin_sentence(core, next);
    };
    if word.ends_with('.') {
        // "..." — an ellipsis, not an abbreviation
        return !starts_lowercase(next);
    }
    let previous = i.checked_sub(1).map(|p| token_text(text, tokens[p]));
    period_ends_sentence(word, previous, i == first, next)
}

/// An ellipsis followed by a lowercase Latin word ("well… maybe") continues the
/// sentence; Arabic has no case, so this never blocks an Arabic split.
fn continues_latin_sentence(core: &str, next: &str) -> bool {
    core.ends_with('…') && starts_lowercase(next)
}

/// Whether a token `word.` (the period already removed) ends a sentence.
fn period_ends_sentence(
    word: &str,
    previous: Option<&str>,
    starts_sentence: bool,
    next: &str,
) -> bool {
    // English sentences start with a capital: "approx. five", "etc. and".
    if starts_lowercase(next) {
        return false;
    }
    let bare = word.trim_start_matches(is_opening_punctuation);
    let Some(last) = bare.chars().last() else {
        return true; // a lone "." token
    };
    if is_closing_punctuation(last) {
        return true; // «...». — a quotation closed before the period
    }
    if is_digit(last) {
        // "1. البند الأول" opens a numbered item; "عام 2022." ends a sentence.
        return !(starts_sentence && bare.chars().all(is_digit));
    }
    if bare.chars().count() == 1 {
        return single_letter_ends_sentence(last, previous);
    }
    !(is_dotted_abbreviation(bare) || LATIN_ABBREVIATIONS.contains(&bare))
}

/// A single letter before a period is an abbreviation or an initial (`د.` Doctor,
/// `أ.` Professor, `م.` Engineer, `J.`), except `م.`/`ه.` right after a year,
/// where it is the Gregorian/Hijri era marker ending the sentence: `2022 م.`.
/// (Tatweel is gone after normalization, so `هـ.` arrives as `ه.`.)
fn single_letter_ends_sentence(letter: char, previous: Option<&str>) -> bool {
    let after_year = previous.is_some_and(|p| p.chars().last().is_some_and(is_digit));
    matches!(letter, 'م' | 'ه') && after_year
}

/// `U.S`, `e.g`, `i.e`, `a.m`, `ص.ب`, `ق.م`, `أ.د`: short letter groups joined
/// by periods (the final period already removed). Long groups ("example.com")
/// are not abbreviations.
fn is_dotted_abbreviation(word: &str) -> bool {
    word.contains('.')
        && word.split('.').all(|part| {
            let n = part.chars().count();
            (1..=3).contains(&n) && part.chars().all(char::is_alphabetic)
        })
}

/// Latin abbreviations that are followed by a name or number, never a sentence end
/// in practice. `etc` is not here: it ends sentences, and "etc. and" is caught by
/// the lowercase rule.
const LATIN_ABBREVIATIONS: &[&str] = &[
    "Dr", "Mr", "Mrs", "Ms", "Prof", "St", "No", "Nos", "Jr", "Sr", "vs", "Gen", "Col", "Lt",
    "Capt", "Sgt", "Rev", "Hon", "Gov", "Sen", "Rep", "Mt", "Fig", "Vol", "Dept", "Ave", "approx",
];

fn starts_lowercase(token: &str) -> bool {
    token
        .trim_start_matches(is_opening_punctuation)
        .chars()
        .next()
        .is_some_and(char::is_lowercase)
}

fn has_alphanumeric(token: &str) -> bool {
    token.chars().any(char::is_alphanumeric)
}

/// ASCII, Arabic-Indic and Eastern Arabic-Indic (Persian) digits.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '\u{0660}'..='\u{0669}' | '\u{06F0}'..='\u{06F9}')
}

fn is_opening_punctuation(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '‘' | '«' | '‹' | '(' | '[' | '{')
}

// ---------------------------------------------------------------------------
// Cutting over-long sentences
// ---------------------------------------------------------------------------

/// Kinds of places where a long sentence may be cut, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    /// After `؛` or `;`: the clauses are nearly independent sentences.
    Semicolon,
    /// After `،` or `,`.
    Comma,
    /// Before a word that starts with the conjunction و: " وأكد", " وشدد".
    WawClause,
    /// Any other space between words.
    Space,
    /// A space before bare punctuation or after a detached "و": cutting there
    /// leaves a piece that starts with a comma or ends with "and".
    Awkward,
}

/// Append `text` to `out`, cut into pieces of at most `max_tokens` where possible.
fn fit(text: &str, max_tokens: usize, count_tokens: &dyn Fn(&str) -> usize, out: &mut Vec<String>) {
    let total = count_tokens(text);
    if total <= max_tokens {
        out.push(text.to_string());
        return;
    }
    let tokens = tokens(text);
    let candidates = usable_boundaries(text, &tokens, max_tokens, count_tokens);
    if candidates.is_empty() {
        // One word longer than the budget: never cut inside a word.
        out.push(text.to_string());
        return;
    }
    let wanted = total.div_ceil(max_tokens).max(2);
    let cuts = choose_cuts(text, &tokens, &candidates, total, wanted, count_tokens);
    let mut start = 0;
    for end in cuts.into_iter().chain([tokens.len()]) {
        // Each piece may still be too long (few good boundaries): cut it further,
        // starting again from the best kind of boundary it contains.
        fit(
            span(text, &tokens[start..end]),
            max_tokens,
            count_tokens,
            out,
        );
        start = end;
    }
}

/// Where to cut: indices `b` (a cut between token `b - 1` and token `b`) of the
/// best kind of boundary present, skipping cuts that would leave a sliver at
/// either end ("من جانبهم،" alone loses its context). If every kind only offers
/// slivers, the best kind is used anyway. Empty for a single token.
fn usable_boundaries(
    text: &str,
    tokens: &[Token],
    max_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<usize> {
    let min_piece = max_tokens / 4;
    let mut by_kind: Vec<(Boundary, usize)> = (1..tokens.len())
        .map(|b| {
            let kind = boundary_kind(token_text(text, tokens[b - 1]), token_text(text, tokens[b]));
            (kind, b)
        })
        .collect();
    by_kind.sort();
    let groups: Vec<Vec<usize>> = by_kind
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| group.iter().map(|&(_, b)| b).collect())
        .collect();
    for group in &groups {
        // Prefix counts grow and suffix counts shrink along the text, so the
        // cuts that leave no sliver form one contiguous run.
        let first = group.partition_point(|&b| count_tokens(span(text, &tokens[..b])) < min_piece);
        let end = group.partition_point(|&b| count_tokens(span(text, &tokens[b..])) >= min_piece);
        if first < end {
            return group[first..end].to_vec();
        }
    }
    groups.into_iter().next().unwrap_or_default()
}

fn boundary_kind(before: &str, after: &str) -> Boundary {
    let before_core = before.trim_end_matches(is_closing_punctuation);
    if before_core.ends_with([';', '؛']) {
        Boundary::Semicolon
    } else if before_core.ends_with([',', '،']) {
        Boundary::Comma
    } else if starts_waw_clause(after) {
        Boundary::WawClause
    } else if !has_alphanumeric(after) || before == "و" {
        Boundary::Awkward
    } else {
        Boundary::Space
    }
}

/// A word that begins with the conjunction و: "وأكد", "والحرص", or a detached "و".
/// Words whose و is part of the root ("وزير", "وفد") are excluded, so that
/// "رئيس الوزراء وزير الخارجية" is not cut before the minister's title.
fn starts_waw_clause(word: &str) -> bool {
    let mut chars = word.chars();
    if chars.next() != Some('و') {
        return false;
    }
    match chars.next() {
        None => true,
        Some(c) if is_arabic_letter(c) => {
            let bare = word.trim_end_matches(|c: char| !c.is_alphanumeric());
            !ROOT_WAW_WORDS.contains(&bare)
        }
        Some(_) => false,
    }
}

/// Frequent press-release words that start with a root و rather than the conjunction.
#[rustfmt::skip]
const ROOT_WAW_WORDS: &[&str] = &[
    "وزير", "وزيرة", "وزراء", "وزارة", "وزارات", "وفد", "وفود", "وكالة", "وكالات",
    "وحدة", "وحدات", "وثيقة", "وثائق", "وطني", "وطنية", "وجهة", "وجهات", "وسائل", "وسيلة",
    "ولاية", "ولايات", "واسع", "واسعة", "واضح", "واضحة", "وسط", "وظيفة", "وظائف", "وجود",
];

/// Pick up to `wanted - 1` cuts among `candidates` (increasing), each as close as
/// possible to an equal share of `total`, so the pieces come out balanced.
fn choose_cuts(
    text: &str,
    tokens: &[Token],
    candidates: &[usize],
    total: usize,
    wanted: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<usize> {
    let prefix = |b: usize| count_tokens(span(text, &tokens[..b]));
    let mut cuts = Vec::new();
    let mut remaining = candidates;
    let mut reached = 0;
    for share in 1..wanted {
        let target = total * share / wanted;
        // A cut that overshot this share already (boundaries are sparse) covers it;
        // cutting again right after it would leave a sliver.
        if target <= reached {
            continue;
        }
        // Prefix counts grow with the prefix, so binary search for the first
        // candidate at or past the target, then take it or its predecessor,
        // whichever is nearer (the predecessor on a tie, to stay under the cap).
        let after = remaining.partition_point(|&b| prefix(b) < target);
        let nearest = [after.checked_sub(1), Some(after)]
            .into_iter()
            .flatten()
            .filter(|&i| i < remaining.len())
            .map(|i| (i, prefix(remaining[i])))
            .min_by_key(|&(_, count)| count.abs_diff(target));
        let Some((index, count)) = nearest else {
            break;
        };
        cuts.push(remaining[index]);
        reached = count;
        remaining = &remaining[index + 1..];
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_file;
    use std::path::Path;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn segment_words(paragraph: &str, cap: usize) -> Vec<String> {
        segment_paragraph(paragraph, cap, &words)
    }

    fn sample_paragraphs() -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("samples directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        paths.sort();
        assert_eq!(paths.len(), 5);
        paths
            .iter()
            .flat_map(|p| load_file(p).expect("sample loads").paragraphs)
            .map(|p| p.text)
            .collect()
    }

    #[test]
    fn splits_on_arabic_and_latin_terminators() {
        assert_eq!(
            split_sentences("هل حضر الوزير؟ نعم حضر! وكان الاجتماع مثمرا؛ واستمر ساعتين… ثم انتهى. وغادر الوفد..."),
            vec![
                "هل حضر الوزير؟",
                "نعم حضر!",
                "وكان الاجتماع مثمرا؛",
                "واستمر ساعتين…",
                "ثم انتهى.",
                "وغادر الوفد...",
            ]
        );
        assert_eq!(
            split_sentences("He waited... Then he left. Really?! Yes."),
            vec!["He waited...", "Then he left.", "Really?!", "Yes."]
        );
    }

    #[test]
    fn does_not_split_numbers() {
        assert_eq!(
            split_sentences("ارتفع النمو بنسبة 3.5 في المئة. وبلغ العدد 1.117.320 شخصا."),
            vec![
                "ارتفع النمو بنسبة 3.5 في المئة.",
                "وبلغ العدد 1.117.320 شخصا."
            ]
        );
        // a number ending the sentence is still a sentence end
        assert_eq!(
            split_sentences("بلغ العدد 1.117.320. وأكد الوزير ذلك."),
            vec!["بلغ العدد 1.117.320.", "وأكد الوزير ذلك."]
        );
        // "1." opening an item is an enumerator, not a sentence
        assert_eq!(
            split_sentences("1. البند الأول من الاتفاق."),
            vec!["1. البند الأول من الاتفاق."]
        );
    }

    #[test]
    fn year_markers() {
        let mid = "اليوم الثلاثاء الموافق 12 أكتوبر 2021م، في مدينة نور سلطان.";
        assert_eq!(split_sentences(mid), vec![mid]);
        assert_eq!(
            split_sentences("وقعت المذكرة عام 2022م. وأكد الجانبان أهميتها."),
            vec!["وقعت المذكرة عام 2022م.", "وأكد الجانبان أهميتها."]
        );
        assert_eq!(
            split_sentences("وقعت المذكرة عام 2022 م. وأكد الجانبان أهميتها في 1443ه. ثم انتهى."),
            vec![
                "وقعت المذكرة عام 2022 م.",
                "وأكد الجانبان أهميتها في 1443ه.",
                "ثم انتهى."
            ]
        );
        assert_eq!(
            split_sentences("في أكتوبر 2021م."),
            vec!["في أكتوبر 2021م."]
        );
    }

    #[test]
    fn does_not_split_after_abbreviations() {
        for text in [
            "التقى د. نايف الحجرف بالوزير.",
            "حاضر أ. محمد و أ.د. سالم في الجامعة.",
            "استقبل م. أحمد الوفد.",
            "العنوان ص.ب. 1234 الرياض.",
            "بني عام 300 ق.م. في عهد الملك.",
            "Dr. Smith met Mr. Jones and Mrs. Brown at St. Mary's.",
            "J. R. R. Tolkien lived in the U.S. for a while.",
            "Fruit, e.g. apples, i.e. the red ones, sold well.",
            "They sold apples, pears, etc. and more.",
            "See No. 5 for details.",
        ] {
            assert_eq!(split_sentences(text), vec![text], "{text}");
        }
        assert_eq!(
            split_sentences("They sold apples, pears, etc. Then they left."),
            vec!["They sold apples, pears, etc.", "Then they left."]
        );
    }

    #[test]
    fn only_splits_at_whitespace_before_more_text() {
        let glued = "دعا إلى تطوير الفضاء الثقافي في آسيا الوسطى.و الحاجة إلى تعزيز التعاون.";
        assert_eq!(split_sentences(glued), vec![glued]);
        // trailing stray punctuation stays with its sentence
        assert_eq!(
            split_sentences("وتعزيز الذاتية الدولية لآسيا الوسطى. ."),
            vec!["وتعزيز الذاتية الدولية لآسيا الوسطى. ."]
        );
        assert!(split_sentences("   ").is_empty());
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            split_sentences("وقال “إننا نشكل الصورة الجديدة”. وأضاف أن العمل مستمر."),
            vec!["وقال “إننا نشكل الصورة الجديدة”.", "وأضاف أن العمل مستمر."]
        );
        assert_eq!(
            split_sentences("وقال \"نعالج القضايا.\" وأشار إلى التقدم. (انتهى) «هل نجحنا؟» نعم."),
            vec![
                "وقال \"نعالج القضايا.\"",
                "وأشار إلى التقدم.",
                "(انتهى) «هل نجحنا؟»",
                "نعم."
            ]
        );
    }

    #[test]
    fn sample_sentences() {
        let paragraphs = sample_paragraphs();
        let first = paragraphs
            .iter()
            .find(|p| p.starts_with("التقى الأمين العام"))
            .expect("002 opening paragraph");
        let sentences = split_sentences(first);
        assert_eq!(sentences.len(), 3);
        assert!(sentences[0].ends_with("في الدوحة يوم الاثنين."));
        assert!(sentences[2].starts_with("ويهدف الجانبان"));
        assert_eq!(
            split_sentences(
                "Your email address will not be published. Required fields are marked *"
            ),
            vec![
                "Your email address will not be published.",
                "Required fields are marked *"
            ]
        );
    }

    #[test]
    fn long_sentences_prefer_semicolons_then_commas() {
        let text = "أكد الوزير أهمية التعاون، وشدد على الحوار؛ ثم بحث الجانبان القضايا الإقليمية";
        assert_eq!(
            segment_words(text, 7),
            vec![
                "أكد الوزير أهمية التعاون، وشدد على الحوار؛",
                "ثم بحث الجانبان القضايا الإقليمية"
            ]
        );
        let text = "أكد الوزير أهمية التعاون بين البلدين، وشدد على الحوار المستمر بين الجانبين";
        assert_eq!(
            segment_words(text, 8),
            vec![
                "أكد الوزير أهمية التعاون بين البلدين،",
                "وشدد على الحوار المستمر بين الجانبين"
            ]
        );
    }

    #[test]
    fn long_sentences_split_before_waw_clauses() {
        let text = "أكد الوزير أهمية التعاون بين البلدين وشدد على ضرورة تعزيز العلاقات";
        assert_eq!(
            segment_words(text, 8),
            vec![
                "أكد الوزير أهمية التعاون بين البلدين",
                "وشدد على ضرورة تعزيز العلاقات"
            ]
        );
        // the و of "وزير" is part of the word, not a conjunction
        let text = "استقبل الرئيس اليوم وزير الخارجية في القصر وبحث معه العلاقات";
        assert_eq!(
            segment_words(text, 7),
            vec![
                "استقبل الرئيس اليوم وزير الخارجية في القصر",
                "وبحث معه العلاقات"
            ]
        );
    }

    #[test]
    fn pieces_are_balanced() {
        let text = "أ، ب، ج، د، ه، و، ز، ح، ط، ي، ك، ل";
        let pieces = segment_words(text, 8);
        assert_eq!(pieces, vec!["أ، ب، ج، د، ه، و،", "ز، ح، ط، ي، ك، ل"]);
        // three pieces of eight, not four of six
        let text = "كلمة ".repeat(24);
        let pieces = segment_words(text.trim(), 8);
        assert_eq!(
            pieces.iter().map(|p| words(p)).collect::<Vec<_>>(),
            vec![8, 8, 8]
        );
    }

    #[test]
    fn avoids_slivers_at_the_ends() {
        // the comma after "من جانبهم" would leave a two-word piece: cut elsewhere
        let text = "من جانبهم، عبر وزراء خارجية دول آسيا الوسطى عن تقديرهم لقرار المجلس وأكدوا اهتمام دولهم بتعزيز العلاقات";
        let pieces = segment_words(text, 12);
        assert_eq!(
            pieces,
            vec![
                "من جانبهم، عبر وزراء خارجية دول آسيا الوسطى عن تقديرهم لقرار المجلس",
                "وأكدوا اهتمام دولهم بتعزيز العلاقات",
            ]
        );
    }

    #[test]
    fn falls_back_to_whitespace_and_keeps_long_words() {
        let text = "يشكل هذا الاجتماع مرحلة هامة في التعاون الإقليمي الشامل بين الدول";
        let pieces = segment_words(text, 4);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| words(p) <= 4), "{pieces:?}");
        assert_eq!(pieces.join(" "), text);

        // a word longer than the cap is one piece, never cut
        let chars = |s: &str| s.chars().count();
        assert_eq!(
            segment_paragraph("الاستراتيجية في التعاون", 5, &chars),
            vec!["الاستراتيجية", "في", "التعاون"]
        );
        assert_eq!(
            segment_paragraph("الاستراتيجية", 1, &chars),
            vec!["الاستراتيجية"]
        );
        assert_eq!(
            segment_paragraph("كلمتان هنا", 0, &words),
            vec!["كلمتان", "هنا"]
        );
    }

    #[test]
    fn long_unpunctuated_text_is_cut_evenly() {
        let text = "كلمة ".repeat(500);
        let pieces = segment_words(text.trim(), 64);
        assert_eq!(pieces.len(), 8); // ceil(500 / 64)
        assert!(
            pieces.iter().all(|p| (62..=63).contains(&words(p))),
            "{pieces:?}"
        );
        assert_eq!(pieces.join(" "), text.trim());
    }

    #[test]
    fn nothing_is_lost_on_any_sample_paragraph() {
        for paragraph in sample_paragraphs() {
            let sentences = split_sentences(&paragraph);
            assert_eq!(sentences.join(" "), paragraph);
            for cap in [8, 16, 64] {
                let pieces = segment_words(&paragraph, cap);
                assert_eq!(pieces.join(" "), paragraph, "cap {cap}");
                for piece in &pieces {
                    assert!(!piece.is_empty());
                    assert!(
                        words(piece) <= cap || words(piece) == 1,
                        "cap {cap}: {piece:?} has {} words",
                        words(piece)
                    );
                }
            }
        }
    }

    #[test]
    fn joins_back_modulo_whitespace_runs() {
        let text = "جملة أولى.   وجملة  ثانية؟ وثالثة";
        let sentences = split_sentences(text);
        assert_eq!(sentences, vec!["جملة أولى.", "وجملة  ثانية؟", "وثالثة"]);
        let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(squeeze(&sentences.join(" ")), squeeze(text));
    }
}
