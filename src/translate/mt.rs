//! A purpose-built translation model (OPUS-MT) as a [`Translator`]; summaries come from
//! a separate chat LLM, when one is given.

use super::{Request, Translation, Translator};
use crate::model::opus_mt::MtOutput;
use crate::model::seq2seq::GenerationConfig;
use crate::model::{ChatModel, GgufLlm, ModelError, OnDone, OpusMt, Throughput};

pub struct MtTranslator {
    mt: OpusMt,
    summarizer: Option<GgufLlm>,
}

impl MtTranslator {
    /// `summarizer` writes the summaries; without one, documents get none.
    pub fn new(mt: OpusMt, summarizer: Option<GgufLlm>) -> Self {
        Self { mt, summarizer }
    }

    pub fn model(&self) -> &OpusMt {
        &self.mt
    }

    /// A retry searches wider than the model's own setting: the first answer was the
    /// best its beams could find, so only more beams can give a different one.
    fn retry_generation(&self) -> GenerationConfig {
        let base = self.mt.generation();
        GenerationConfig {
            num_beams: (base.num_beams * 2).max(4),
            ..base.clone()
        }
    }
}

fn translation(out: &MtOutput) -> Translation {
    Translation {
        text: out.text.clone(),
        prompt_tokens: out.source_tokens,
        generated_tokens: out.tokens.len(),
        hit_cap: out.hit_cap,
        // Beam search ranks whole hypotheses; per-token probabilities are not kept.
        logprobs: Vec::new(),
    }
}

impl Translator for MtTranslator {
    fn translate(&mut self, request: &Request) -> Result<Translation, ModelError> {
        self.translate_batch(std::slice::from_ref(request), &mut |_, _| {})
            .pop()
            .unwrap_or_else(|| Err(ModelError::Inference("no result".into())))
    }

    /// Glossary terms, context and sampling are prompt features: a translation model
    /// has no prompt, so they do not change its answer, and requests for the same source
    /// are decoded once. Retries (requests with problems to avoid) get more beams.
    fn translate_batch(
        &mut self,
        requests: &[Request],
        on_done: OnDone<Translation>,
    ) -> Vec<Result<Translation, ModelError>> {
        let mut results: Vec<Option<Result<Translation, ModelError>>> =
            requests.iter().map(|_| None).collect();
        let retry = self.retry_generation();
        let first = self.mt.generation().clone();
        for (generation, is_retry) in [(first, false), (retry, true)] {
            // Distinct sources, each with the requests that share it.
            let mut texts: Vec<&str> = Vec::new();
            let mut askers: Vec<Vec<usize>> = Vec::new();
            let mut index: std::collections::HashMap<&str, usize> = Default::default();
            for (i, request) in requests.iter().enumerate() {
                if request.avoid.is_empty() == is_retry {
                    continue;
                }
                let at = *index.entry(request.source).or_insert_with(|| {
                    texts.push(request.source);
                    askers.push(Vec::new());
                    texts.len() - 1
                });
                askers[at].push(i);
            }
            if texts.is_empty() {
                continue;
            }
            let outputs = self.mt.translate_batch(&texts, &generation, &mut |j, out| {
                let result = out.as_ref().map(translation).map_err(Clone::clone);
                for &i in &askers[j] {
                    on_done(i, &result);
                }
            });
            for (out, asking) in outputs.into_iter().zip(&askers) {
                for &i in asking {
                    results[i] = Some(out.as_ref().map(translation).map_err(Clone::clone));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ModelError::Inference("not translated".into()))))
            .collect()
    }

    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self.mt.tokenizer().count(text))
    }

    fn chat_model(&mut self) -> Option<&mut dyn ChatModel> {
        self.summarizer.as_mut().map(|m| m as &mut dyn ChatModel)
    }

    fn throughput(&self) -> Throughput {
        self.mt.throughput()
    }

    fn batch_size(&self) -> usize {
        self.mt.batch_size()
    }
}
