//! Lexically constrained decoding: English phrases an answer must contain (a glossary's
//! rendering of a term, a name the source spells out), forced into a greedy or sampled
//! answer where the model itself gives them a fair chance.
//!
//! At each step, while a phrase is missing, the decoder looks at the rank of the phrase's
//! first token in the model's own distribution. When it is among the few best and the
//! model is about to start a new word anyway, the whole phrase is emitted there, token by
//! token, and decoding goes on from it: the model writes the rest of the sentence around
//! the phrase instead of having it pasted in afterwards. A phrase the model starts of its
//! own accord is finished as written. A phrase that never gets a fair chance is left out
//! (the checks still see it missing), so the constraint never writes nonsense into an
//! answer to satisfy itself.

use std::collections::VecDeque;

use super::logprob::rank;

/// A forced first token must be among this many of the model's best.
const FAIR_CHANCE_RANK: usize = 5;

/// A required phrase as the tokenizer may write it: after a space, and without one (at
/// the start of the answer or after an opening bracket or quote).
#[derive(Debug, Clone)]
struct Phrase {
    spaced: Vec<u32>,
    bare: Vec<u32>,
}

/// The phrases still missing from one answer and the forced tokens still to emit.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    open: Vec<Phrase>,
    forcing: VecDeque<u32>,
}

impl Constraints {
    /// `encode` tokenizes a piece of the answer; phrases that encode to nothing are
    /// dropped.
    pub fn new<E>(
        phrases: &[String],
        encode: impl Fn(&str) -> Result<Vec<u32>, E>,
    ) -> Result<Self, E> {
        let mut open = Vec::new();
        for phrase in phrases {
            let phrase = phrase.trim();
            if phrase.is_empty() {
                continue;
            }
            let spaced = encode(&format!(" {phrase}"))?;
            let bare = encode(phrase)?;
            if !spaced.is_empty() && !bare.is_empty() {
                open.push(Phrase { spaced, bare });
            }
        }
        Ok(Self {
            open,
            forcing: VecDeque::new(),
        })
    }

    /// Nothing left to force.
    pub fn is_done(&self) -> bool {
        self.open.is_empty() && self.forcing.is_empty()
    }

    /// The token to emit after `generated`, given the model's own `chosen` one and the
    /// `logits` it came from. `piece` is a token's text; `stop` tells end-of-turn tokens.
    pub fn steer(
        &mut self,
        logits: &[f32],
        chosen: u32,
        generated: &[u32],
        piece: &dyn Fn(u32) -> String,
        stop: &dyn Fn(u32) -> bool,
    ) -> u32 {
        if let Some(next) = self.forcing.pop_front() {
            return next;
        }
        self.open.retain(|p| !contains(generated, p));
        if self.open.is_empty() || stop(chosen) {
            return chosen;
        }
        let chosen_piece = piece(chosen);
        let word_starts = chosen_piece.starts_with(' ');
        let after_opening = generated
            .last()
            .map(|&t| piece(t))
            .is_none_or(|p| p.ends_with(|c: char| !c.is_alphanumeric()) && !p.ends_with('\''));
        let spelling = |phrase: &Phrase| -> Option<Vec<u32>> {
            if word_starts {
                Some(phrase.spaced.clone())
            } else if after_opening {
                Some(phrase.bare.clone())
            } else {
                None
            }
        };
        let fair = (0..self.open.len()).find_map(|i| {
            let tokens = spelling(&self.open[i])?;
            (tokens[0] == chosen || rank(logits, tokens[0]) < FAIR_CHANCE_RANK)
                .then_some((i, tokens))
        });
        let Some((i, tokens)) = fair else {
            return chosen;
        };
        self.open.remove(i);
        self.forcing.extend(&tokens[1..]);
        tokens[0]
    }
}

/// Whether `generated` already holds `phrase` in either spelling.
fn contains(generated: &[u32], phrase: &Phrase) -> bool {
    [&phrase.spaced, &phrase.bare].iter().any(|tokens| {
        generated
            .windows(tokens.len())
            .any(|w| w == tokens.as_slice())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: token i is `WORDS[i]`.
    const WORDS: [&str; 8] = [
        " the", " Central", " Asia", "Central", " region", ".", "<end>", " east",
    ];

    fn encode(text: &str) -> Result<Vec<u32>, ()> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (i, w) = WORDS
                .iter()
                .enumerate()
                .filter(|(_, w)| rest.starts_with(**w))
                .max_by_key(|(_, w)| w.len())
                .ok_or(())?;
            out.push(i as u32);
            rest = &rest[w.len()..];
        }
        Ok(out)
    }

    fn piece(t: u32) -> String {
        WORDS[t as usize].to_string()
    }

    fn stop(t: u32) -> bool {
        t == 6
    }

    /// Logits that rank the tokens in `order`, best first.
    fn ranked(order: &[u32]) -> Vec<f32> {
        let mut logits = vec![-100.0; WORDS.len()];
        for (r, &t) in order.iter().enumerate() {
            logits[t as usize] = 10.0 - r as f32;
        }
        logits
    }

    #[test]
    fn a_phrase_with_a_fair_chance_is_forced_in_whole() {
        let mut c = Constraints::new(&["Central Asia".into()], encode).unwrap();
        let logits = ranked(&[7, 1, 4, 0]);
        // The model wants " east"; " Central" is its second choice, so the phrase goes in.
        assert_eq!(c.steer(&logits, 7, &[0], &piece, &stop), 1);
        assert_eq!(c.steer(&ranked(&[4]), 4, &[0, 1], &piece, &stop), 2);
        assert!(c.is_done());
        assert_eq!(c.steer(&ranked(&[5]), 5, &[0, 1, 2], &piece, &stop), 5);
    }

    #[test]
    fn a_phrase_without_a_chance_or_already_there_is_not_forced() {
        let mut c = Constraints::new(&["Central Asia".into()], encode).unwrap();
        let far = ranked(&[7, 0, 4, 5, 6, 3, 1]);
        assert_eq!(c.steer(&far, 7, &[0], &piece, &stop), 7);
        // Never at the end of the turn.
        assert_eq!(c.steer(&ranked(&[6, 1]), 6, &[0, 7], &piece, &stop), 6);
        // Already written by the model: nothing more to do.
        assert_eq!(c.steer(&ranked(&[5, 1]), 5, &[0, 1, 2], &piece, &stop), 5);
        assert!(c.is_done());
    }

    #[test]
    fn the_bare_spelling_opens_an_answer() {
        // At the start of an answer the model's unspaced first choice gives way to the
        // unspaced phrase.
        let mut c = Constraints::new(&["Central Asia".into()], encode).unwrap();
        assert_eq!(c.steer(&ranked(&[5, 3]), 5, &[], &piece, &stop), 3);
        assert_eq!(c.steer(&ranked(&[4]), 4, &[3], &piece, &stop), 2);
    }
}
