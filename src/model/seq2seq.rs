//! Decoding for encoder-decoder translation models: greedy and beam search over a batch
//! of sentences, with the settings of the model's `generation_config.json`.
//!
//! The search reproduces Hugging Face's `generate` (greedy search and `BeamSearchScorer`
//! with its default heuristic stop) so that a model gives the outputs its authors
//! published. One difference, which changes no output: sentences that are finished leave
//! the batch instead of being fed padding until the longest one ends.

use candle_core::Tensor;

use super::ModelError;

/// How to decode, from `generation_config.json` (falling back to `config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Upper bound on the output length, the decoder start token included.
    pub max_length: usize,
    pub num_beams: usize,
    /// Finished hypotheses are ranked by their log-probability / length^length_penalty.
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    /// Tokens never generated (single-token `bad_words_ids`).
    pub bad_words: Vec<u32>,
    /// Forced as the last token when the output reaches `max_length`.
    pub forced_eos_token_id: Option<u32>,
    /// End of sentence is forbidden before this many tokens (start token included).
    pub min_length: usize,
}

/// When beam search stops working on a sentence that has `num_beams` finished hypotheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// At once.
    Always,
    /// When no running beam can still beat the worst kept hypothesis, judged at the
    /// current length (Hugging Face's default, `early_stopping=False`).
    Heuristic,
    /// Only when no running beam can beat it at any length up to `max_length`.
    Never,
}

/// A decoder that advances a batch of rows by one token: the model side of the search.
pub trait StepDecoder {
    /// Feeds one token per row and returns the next-token logits, (rows, vocab).
    fn step(&mut self, tokens: &[u32]) -> Result<Tensor, ModelError>;
    /// Keeps the rows at `rows`, in that order (repeats allowed).
    fn select(&mut self, rows: &[u32]) -> Result<(), ModelError>;
}

/// One decoded sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Generated tokens, without the decoder start token, ending with end-of-sentence
    /// when the model produced one.
    pub tokens: Vec<u32>,
    /// The output used every position up to `max_length`: it may be cut short.
    pub hit_cap: bool,
}

fn inference(e: candle_core::Error) -> ModelError {
    ModelError::Inference(e.to_string())
}

impl GenerationConfig {
    /// Applies the logits processors `generate` would build for this config, in place, to
    /// one row of scores; `len` is the current output length, start token included.
    fn process(&self, scores: &mut [f32], len: usize) {
        for &t in &self.bad_words {
            if let Some(s) = scores.get_mut(t as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        if len < self.min_length {
            if let Some(s) = scores.get_mut(self.eos_token_id as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        if let Some(eos) = self.forced_eos_token_id {
            if len + 1 == self.max_length && (eos as usize) < scores.len() {
                scores.fill(f32::NEG_INFINITY);
                scores[eos as usize] = 0.0;
            }
        }
    }

    /// Decodes `sentences` rows (one per encoded sentence) with this config's beams.
    pub fn decode(
        &self,
        decoder: &mut dyn StepDecoder,
        sentences: usize,
    ) -> Result<Vec<Decoded>, ModelError> {
        if self.num_beams <= 1 {
            self.greedy(decoder, sentences)
        } else {
            self.beam_search(decoder, sentences)
        }
    }

    fn greedy(
        &self,
        decoder: &mut dyn StepDecoder,
        sentences: usize,
    ) -> Result<Vec<Decoded>, ModelError> {
        let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); sentences];
        let mut finished = vec![false; sentences];
        // Rows still decoding, as indices into `outputs`.
        let mut live: Vec<usize> = (0..sentences).collect();
        let mut last: Vec<u32> = vec![self.decoder_start_token_id; sentences];
        let mut len = 1;
        while !live.is_empty() && len < self.max_length {
            let logits = decoder.step(&last)?;
            let logits: Vec<Vec<f32>> = logits.to_vec2().map_err(inference)?;
            for (row, mut scores) in logits.into_iter().enumerate() {
                self.process(&mut scores, len);
                let token = argmax(&scores);
                let s = live[row];
                outputs[s].push(token);
                last[row] = token;
                finished[s] = token == self.eos_token_id;
            }
            len += 1;
            let keep: Vec<u32> = (0..live.len())
                .filter(|&row| !finished[live[row]])
                .map(|row| row as u32)
                .collect();
            if keep.len() < live.len() && !keep.is_empty() {
                decoder.select(&keep)?;
            }
            live = keep.iter().map(|&row| live[row as usize]).collect();
            last = keep.iter().map(|&row| last[row as usize]).collect();
        }
        Ok(outputs
            .into_iter()
            .map(|tokens| {
                let hit_cap = tokens.len() + 1 >= self.max_length;
                Decoded { tokens, hit_cap }
            })
            .collect())
    }

    fn beam_search(
        &self,
        decoder: &mut dyn StepDecoder,
        sentences: usize,
    ) -> Result<Vec<Decoded>, ModelError> {
        let k = self.num_beams;
        let mut kept: Vec<Hypotheses> = (0..sentences).map(|_| Hypotheses::new(k)).collect();
        let mut live: Vec<LiveSentence> = (0..sentences)
            .map(|sentence| LiveSentence::start(sentence, k))
            .collect();
        // The decoder starts with one row per sentence; grow to k rows each.
        let expand: Vec<u32> = (0..sentences as u32)
            .flat_map(|s| std::iter::repeat_n(s, k))
            .collect();
        decoder.select(&expand)?;
        let mut last: Vec<u32> = vec![self.decoder_start_token_id; sentences * k];
        let mut len = 1;
        while !live.is_empty() && len < self.max_length {
            let logits = decoder.step(&last)?;
            let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)
                .and_then(|t| t.to_vec2::<f32>())
                .map_err(inference)?;
            let mut next = NextStep::default();
            for (i, sentence) in live.iter().enumerate() {
                let rows = &log_probs[i * k..(i + 1) * k];
                self.advance(i, sentence, rows, len, &mut kept[sentence.index], &mut next)?;
            }
            len += 1;
            live = next.live;
            if live.is_empty() {
                break;
            }
            decoder.select(&next.rows)?;
            last = next.tokens;
        }
        // Sentences that reached max_length: their running beams compete as they are.
        for sentence in live {
            for beam in sentence.beams {
                let n = beam.tokens.len();
                kept[sentence.index].add(
                    beam.tokens,
                    f64::from(beam.score),
                    n,
                    self.length_penalty,
                );
            }
        }
        Ok(kept.into_iter().map(|h| self.decoded(h)).collect())
    }

    /// Extends the beams of the `i`-th live sentence by one token from its rows of
    /// `log_probs`: ended continuations go to `kept`, the best `k` others to `next`,
    /// unless the sentence is done.
    fn advance(
        &self,
        i: usize,
        sentence: &LiveSentence,
        log_probs: &[Vec<f32>],
        len: usize,
        kept: &mut Hypotheses,
        next: &mut NextStep,
    ) -> Result<(), ModelError> {
        let k = self.num_beams;
        let candidates = self.candidates(&sentence.beams, log_probs, len);
        let mut beams = Vec::with_capacity(k);
        let mut rows = Vec::with_capacity(k);
        for (rank, &(score, b, token)) in candidates.iter().enumerate() {
            let beam = &sentence.beams[b];
            if token == self.eos_token_id {
                if rank >= k {
                    continue;
                }
                // Hypotheses are normalized by their generated length, end-of-sentence
                // included: the `len - 1` tokens so far plus the one just chosen.
                kept.add(
                    beam.tokens.clone(),
                    f64::from(score),
                    len,
                    self.length_penalty,
                );
            } else {
                let mut tokens = beam.tokens.clone();
                tokens.push(token);
                rows.push((i * k + b) as u32);
                beams.push(Beam { tokens, score });
            }
            if beams.len() == k {
                break;
            }
        }
        let best = candidates.first().map_or(f32::NEG_INFINITY, |c| c.0);
        let done = kept.is_done(
            f64::from(best),
            len,
            self.early_stopping,
            self.length_penalty,
            self.max_length,
        );
        if done {
            return Ok(());
        }
        if beams.len() < k {
            return Err(ModelError::Inference(
                "beam search found fewer continuations than beams".into(),
            ));
        }
        next.rows.extend(rows);
        next.tokens
            .extend(beams.iter().filter_map(|b| b.tokens.last()));
        next.live.push(LiveSentence {
            index: sentence.index,
            beams,
        });
        Ok(())
    }

    /// The `2k` best continuations of `beams` as `(total score, beam, token)`, best first.
    fn candidates(
        &self,
        beams: &[Beam],
        log_probs: &[Vec<f32>],
        len: usize,
    ) -> Vec<(f32, usize, u32)> {
        let vocab = log_probs.first().map_or(0, Vec::len);
        let mut totals: Vec<f32> = Vec::with_capacity(beams.len() * vocab);
        for (beam, row) in beams.iter().zip(log_probs) {
            let mut scores = row.clone();
            self.process(&mut scores, len);
            totals.extend(scores.iter().map(|s| s + beam.score));
        }
        top_k(&totals, 2 * self.num_beams)
            .into_iter()
            .map(|index| (totals[index], index / vocab, (index % vocab) as u32))
            .collect()
    }

    /// A sentence's best hypothesis, with the end-of-sentence it ended on.
    fn decoded(&self, hypotheses: Hypotheses) -> Decoded {
        let mut tokens = hypotheses.best().unwrap_or_default();
        // Hypotheses that ended are kept without their end-of-sentence.
        if tokens.len() + 1 < self.max_length {
            tokens.push(self.eos_token_id);
        }
        let hit_cap = tokens.len() + 1 >= self.max_length;
        Decoded { tokens, hit_cap }
    }
}

/// A sentence still searched: its index in the batch and its `k` beams.
struct LiveSentence {
    index: usize,
    beams: Vec<Beam>,
}

impl LiveSentence {
    fn start(index: usize, k: usize) -> Self {
        let beams = (0..k)
            .map(|b| Beam {
                tokens: Vec::new(),
                // Only the first beam starts live, so the first step does not pick k
                // copies of the same token.
                score: if b == 0 { 0.0 } else { -1e9 },
            })
            .collect();
        Self { index, beams }
    }
}

/// What the next decoding step feeds: the decoder rows kept, their new tokens, and the
/// sentences still searched.
#[derive(Default)]
struct NextStep {
    rows: Vec<u32>,
    tokens: Vec<u32>,
    live: Vec<LiveSentence>,
}

struct Beam {
    tokens: Vec<u32>,
    score: f32,
}

/// The best finished hypotheses of one sentence (Hugging Face's `BeamHypotheses`).
struct Hypotheses {
    size: usize,
    /// (length-normalized score, tokens without end-of-sentence), in insertion order.
    kept: Vec<(f64, Vec<u32>)>,
    worst: f64,
}

impl Hypotheses {
    fn new(size: usize) -> Self {
        Self {
            size,
            kept: Vec::new(),
            worst: 1e9,
        }
    }

    fn add(&mut self, tokens: Vec<u32>, sum_log_probs: f64, len: usize, length_penalty: f64) {
        let score = sum_log_probs / (len as f64).powf(length_penalty);
        if self.kept.len() < self.size || score > self.worst {
            self.kept.push((score, tokens));
            if self.kept.len() > self.size {
                let (worst_at, _) = self
                    .kept
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                    .unwrap_or((0, &self.kept[0]));
                self.kept.remove(worst_at);
                self.worst = self.kept.iter().map(|h| h.0).fold(f64::INFINITY, f64::min);
            } else {
                self.worst = self.worst.min(score);
            }
        }
    }

    fn is_done(
        &self,
        best_sum_log_probs: f64,
        len: usize,
        early_stopping: EarlyStopping,
        length_penalty: f64,
        max_length: usize,
    ) -> bool {
        if self.kept.len() < self.size {
            return false;
        }
        let best_possible = match early_stopping {
            EarlyStopping::Always => return true,
            EarlyStopping::Heuristic => best_sum_log_probs / (len as f64).powf(length_penalty),
            EarlyStopping::Never => {
                // Scores are negative: with a positive penalty the longest length is the
                // most favourable, otherwise the current one.
                let at = if length_penalty > 0.0 {
                    max_length - 1
                } else {
                    len
                };
                best_sum_log_probs / (at as f64).powf(length_penalty)
            }
        };
        self.worst >= best_possible
    }

    /// The highest-scoring hypothesis; on a tie, the one added last.
    fn best(&self) -> Option<Vec<u32>> {
        let mut best: Option<&(f64, Vec<u32>)> = None;
        for h in &self.kept {
            if best.is_none_or(|b| h.0 >= b.0) {
                best = Some(h);
            }
        }
        best.map(|h| h.1.clone())
    }
}

/// Index of the largest score; the first on a tie.
fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

/// Indices of the `n` largest scores, largest first; lower index first on a tie.
fn top_k(scores: &[f32], n: usize) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(n + 1);
    for (i, &s) in scores.iter().enumerate() {
        if top.len() == n && s <= scores[top[n - 1]] {
            continue;
        }
        let at = top.partition_point(|&j| scores[j] >= s);
        top.insert(at, i);
        top.truncate(n);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A decoder whose next-token probabilities depend only on the last token fed:
    /// 0 = end, 1 = "a", 2 = "b", 3 = start/padding.
    struct Markov {
        rows: usize,
        steps: usize,
    }

    fn probabilities(last: u32) -> [f32; 4] {
        match last {
            3 => [0.0, 0.6, 0.4, 0.0],
            1 => [0.3, 0.4, 0.3, 0.0],
            2 => [0.9, 0.05, 0.05, 0.0],
            _ => [1.0, 0.0, 0.0, 0.0],
        }
    }

    impl StepDecoder for Markov {
        fn step(&mut self, tokens: &[u32]) -> Result<Tensor, ModelError> {
            assert_eq!(tokens.len(), self.rows, "one token per live row");
            self.steps += 1;
            let logits: Vec<f32> = tokens
                .iter()
                .flat_map(|&t| probabilities(t).map(|p| p.ln()))
                .collect();
            Ok(Tensor::from_vec(logits, (tokens.len(), 4), &Device::Cpu).unwrap())
        }

        fn select(&mut self, rows: &[u32]) -> Result<(), ModelError> {
            assert!(rows.iter().all(|&r| (r as usize) < self.rows));
            self.rows = rows.len();
            Ok(())
        }
    }

    fn config(num_beams: usize) -> GenerationConfig {
        GenerationConfig {
            max_length: 6,
            num_beams,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            decoder_start_token_id: 3,
            eos_token_id: 0,
            pad_token_id: 3,
            bad_words: vec![3],
            forced_eos_token_id: Some(0),
            min_length: 0,
        }
    }

    fn run(cfg: &GenerationConfig, sentences: usize) -> (Vec<Decoded>, usize) {
        let mut markov = Markov {
            rows: sentences,
            steps: 0,
        };
        let out = cfg.decode(&mut markov, sentences).unwrap();
        (out, markov.steps)
    }

    #[test]
    fn greedy_follows_the_likeliest_token_and_is_cut_with_a_forced_end() {
        let (out, steps) = run(&config(1), 2);
        for d in &out {
            assert_eq!(d.tokens, vec![1, 1, 1, 1, 0]);
            assert!(d.hit_cap);
        }
        assert_eq!(steps, 5);
    }

    #[test]
    fn beam_search_finds_the_likelier_short_sentence() {
        // b then end: 0.4 × 0.9 = 0.36, beyond greedy's reach.
        let (out, _) = run(&config(2), 3);
        for d in &out {
            assert_eq!(d.tokens, vec![2, 0]);
            assert!(!d.hit_cap);
        }
    }

    #[test]
    fn a_minimum_length_delays_the_end() {
        let cfg = GenerationConfig {
            min_length: 3,
            ..config(2)
        };
        let (out, _) = run(&cfg, 1);
        assert!(out[0].tokens.len() >= 3, "{:?}", out[0].tokens);
        assert_eq!(out[0].tokens.last(), Some(&0));
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let scores = [0.1, 0.5, 0.5, -1.0, 0.7];
        assert_eq!(top_k(&scores, 3), vec![4, 1, 2]);
        assert_eq!(top_k(&scores, 10), vec![4, 1, 2, 0, 3]);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }

    #[test]
    fn hypotheses_keep_the_best_and_prefer_the_latest_on_ties() {
        let mut h = Hypotheses::new(2);
        h.add(vec![1], -1.0, 1, 1.0);
        h.add(vec![2], -3.0, 1, 1.0);
        h.add(vec![3], -2.0, 1, 1.0);
        assert_eq!(h.kept.len(), 2);
        assert_eq!(h.worst, -2.0);
        h.add(vec![4], -1.0, 1, 1.0);
        assert_eq!(h.best(), Some(vec![4]));
        assert!(h.is_done(-5.0, 2, EarlyStopping::Heuristic, 1.0, 10));
        assert!(!h.is_done(-0.5, 2, EarlyStopping::Heuristic, 1.0, 10));
    }
}
