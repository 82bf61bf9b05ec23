//! Test doubles for the translator and the summarizer, so the retry logic and the whole
//! job can be tested without a model. Compiled for tests only: the real model path never
//! sees them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::{notes, Request, Translation, Translator};
use crate::model::{ChatModel, ChatPrompt, Decoding, Generation, ModelError};

/// A scripted backend: canned answers in turn, then the English its table holds for
/// each source; every source asked and every request's notes are recorded. A source it
/// has no answer for is an error, so an unexpected request shows.
#[derive(Default)]
pub(crate) struct Scripted {
    /// Given first, one per request, in turn.
    pub(crate) answers: Vec<&'static str>,
    /// Then: the English of each source.
    pub(crate) table: HashMap<String, String>,
    /// The notes of every request, in order.
    pub(crate) notes: Vec<String>,
    /// Every source asked, in order; shared, so a test can read it after handing the
    /// translator to an engine.
    pub(crate) asked: Rc<RefCell<Vec<String>>>,
    /// The summarizer behind it, if any.
    pub(crate) summarizer: Option<ScriptedChat>,
    /// How long each translation takes, so a test can watch a run at work.
    pub(crate) delay: Duration,
}

impl Scripted {
    /// Gives `answers` in turn.
    pub(crate) fn answering(answers: Vec<&'static str>) -> Self {
        Self {
            answers,
            ..Self::default()
        }
    }

    /// Translates each source of `pairs` (Arabic, English) as given.
    pub(crate) fn with_table(pairs: &[(&str, &str)]) -> Self {
        Self {
            table: pairs
                .iter()
                .map(|(a, e)| (a.to_string(), e.to_string()))
                .collect(),
            ..Self::default()
        }
    }
}

impl Translator for Scripted {
    fn translate(&mut self, request: &Request) -> Result<Translation, ModelError> {
        std::thread::sleep(self.delay);
        self.notes.push(notes(request, &[]));
        self.asked.borrow_mut().push(request.source.to_string());
        let text = if self.answers.is_empty() {
            self.table.get(request.source).cloned().ok_or_else(|| {
                ModelError::Inference(format!("no scripted answer for {:?}", request.source))
            })?
        } else {
            self.answers.remove(0).to_string()
        };
        Ok(Translation {
            text,
            prompt_tokens: 0,
            generated_tokens: 1,
            hit_cap: false,
            logprobs: Vec::new(),
        })
    }
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(text.split_whitespace().count())
    }
    fn chat_model(&mut self) -> Option<&mut dyn ChatModel> {
        self.summarizer.as_mut().map(|s| s as &mut dyn ChatModel)
    }
}

/// A chat model that answers every prompt with the same text and records the prompts'
/// user turns.
pub(crate) struct ScriptedChat {
    pub(crate) answer: String,
    pub(crate) prompts: Rc<RefCell<Vec<String>>>,
}

impl ScriptedChat {
    pub(crate) fn new(answer: &str) -> Self {
        Self {
            answer: answer.to_string(),
            prompts: Rc::default(),
        }
    }
}

impl ChatModel for ScriptedChat {
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(text.split_whitespace().count())
    }
    fn context_length(&self) -> usize {
        4096
    }
    fn generate(&mut self, prompt: &ChatPrompt, _: Decoding) -> Result<Generation, ModelError> {
        self.prompts.borrow_mut().push(prompt.user.clone());
        Ok(Generation {
            text: self.answer.clone(),
            prompt_tokens: 0,
            generated_tokens: 1,
            hit_cap: false,
            tokens: Vec::new(),
            token_logprobs: Vec::new(),
        })
    }
}

/// A backend whose answers come with token log-probabilities, and which scores how well
/// each English gives its source back, for the reranker's tests.
#[derive(Default)]
pub(crate) struct Weighed {
    /// (English, log-probability of each of its tokens), one per request, in turn.
    pub(crate) answers: Vec<(&'static str, Vec<f32>)>,
    /// The reconstruction score of each English.
    pub(crate) reconstruction: HashMap<&'static str, f32>,
    /// How many requests were sampled.
    pub(crate) sampled: usize,
}

impl Translator for Weighed {
    fn translate(&mut self, request: &Request) -> Result<Translation, ModelError> {
        self.sampled += usize::from(request.sample);
        if self.answers.is_empty() {
            return Err(ModelError::Inference("no answer left".into()));
        }
        let (text, logprobs) = self.answers.remove(0);
        Ok(Translation {
            text: text.to_string(),
            prompt_tokens: 0,
            generated_tokens: logprobs.len(),
            hit_cap: false,
            logprobs,
        })
    }
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(text.split_whitespace().count())
    }
    fn chat_model(&mut self) -> Option<&mut dyn ChatModel> {
        None
    }
    fn reconstruction(&mut self, _source: &str, english: &str) -> Option<f32> {
        self.reconstruction.get(english).copied()
    }
}
