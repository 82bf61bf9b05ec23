//! How a group's segments are scheduled on the translator: all at once, batched, after
//! the memory is consulted; or, with context, document by document side by side.

use super::group::Stage;
use super::segments::{Results, SegmentRef};
use crate::glossary::Term;
use crate::memory::fuzzy::FuzzyMatch;
use crate::translate::{translate_checked_batch, Request, Translator};

/// Translates every segment of a group, as the run's strategy says.
pub(super) fn translate_segments(
    stage: &Stage,
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    documents: usize,
) -> Results {
    let glossary = &stage.job.run.glossary;
    let terms: Vec<Vec<&Term>> = refs.iter().map(|r| glossary.find(&r.source)).collect();
    if stage.job.run.strategy.context {
        translate_in_order(stage, translator, refs, &terms, documents)
    } else {
        translate_with_memory(stage, translator, refs, &terms)
    }
}

/// Translates `refs` with each segment shown the one before it in its document: the
/// documents of a group advance side by side, one segment each per batch. A document
/// whose segment fails stops there.
fn translate_in_order(
    stage: &Stage,
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    terms: &[Vec<&Term>],
    documents: usize,
) -> Results {
    let mut results: Results = refs.iter().map(|_| None).collect();
    // The next segment of each document: its first, to begin with.
    let mut next_of_doc: Vec<usize> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if r.doc == next_of_doc.len() {
            next_of_doc.push(i);
        }
    }
    let mut previous: Vec<Option<(String, String)>> = vec![None; documents];
    let mut failed = vec![false; documents];
    loop {
        let wave: Vec<usize> = next_of_doc
            .iter()
            .copied()
            .filter(|&i| i < refs.len() && !failed[refs[i].doc])
            .collect();
        if wave.is_empty() {
            break;
        }
        let requests: Vec<Request> = wave
            .iter()
            .map(|&i| Request {
                prominent: refs[i].prominent,
                ..Request::after(&refs[i].source, &terms[i], previous[refs[i].doc].as_ref())
            })
            .collect();
        let strategy = &stage.job.run.strategy;
        let out = translate_checked_batch(
            translator,
            &requests,
            strategy,
            &stage.checker,
            &mut |j, _| stage.progress.segment_done(&refs[wave[j]].source),
        );
        for (&i, result) in wave.iter().zip(out) {
            let doc = refs[i].doc;
            match &result {
                Ok(t) => previous[doc] = Some((refs[i].source.clone(), t.text.clone())),
                Err(_) => failed[doc] = true,
            }
            results[i] = Some(result);
            next_of_doc[doc] = if i + 1 < refs.len() && refs[i + 1].doc == doc {
                i + 1
            } else {
                usize::MAX
            };
        }
    }
    results
}

/// Translates `refs`, taking what the memory already holds and storing each new
/// translation the moment it settles, so a run killed part-way keeps its work; with
/// memory examples, each segment is shown its closest stored pair.
fn translate_with_memory(
    stage: &Stage,
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    terms: &[Vec<&Term>],
) -> Results {
    let mut results: Results = refs.iter().map(|_| None).collect();
    if let Some(memory) = stage.memory {
        memory.look_up(refs, &mut results, stage.progress);
    }
    let todo: Vec<usize> = (0..refs.len()).filter(|&i| results[i].is_none()).collect();
    let matches = memory_examples(stage, translator, refs, &todo);
    let requests: Vec<Request> = todo
        .iter()
        .zip(&matches)
        .map(|(&i, found)| Request {
            example: found
                .as_ref()
                .map(|m| (m.source.as_str(), m.translation.as_str())),
            prominent: refs[i].prominent,
            ..Request::new(&refs[i].source, &terms[i])
        })
        .collect();
    let out = translate_checked_batch(
        translator,
        &requests,
        &stage.job.run.strategy,
        &stage.checker,
        &mut |j, result| {
            stage.progress.segment_done(&refs[todo[j]].source);
            if let (Some(memory), Ok(t)) = (stage.memory, result) {
                memory.store(stage.model, &refs[todo[j]].source, t, stage.progress);
            }
        },
    );
    for (&i, result) in todo.iter().zip(out) {
        results[i] = Some(result);
    }
    results
}

/// For each segment still to translate, the memory's closest pair to show the model, if
/// memory examples were asked for. Only a chat LLM reads worked examples; a translation
/// model is never offered one.
fn memory_examples(
    stage: &Stage,
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    todo: &[usize],
) -> Vec<Option<FuzzyMatch>> {
    let takes_examples = translator.chat_model().is_some();
    let examples = stage
        .memory
        .and_then(|m| m.examples.as_ref())
        .filter(|_| takes_examples);
    todo.iter()
        .map(|&i| examples.and_then(|e| e.find(&refs[i].source)))
        .collect()
}
