//! How common an Arabic word is, from wordfreq's Arabic list.
//!
//! The list is a gzipped MessagePack "cBpack": a header map, then one array of words per
//! centibel of frequency, most frequent first; bucket `i` holds the words whose frequency
//! rounds to 10^(−i/100). tarjama reports the Zipf scale (log10 of frequency per billion
//! words): 7 for the commonest function words, 3 for one in a million, 0 for unseen.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum FrequencyError {
    #[error("{path}: cannot read the word-frequency list ({reason}); delete it to fetch it again, or use --no-lexicon")]
    Unreadable { path: String, reason: String },
}

pub struct Frequencies {
    zipf: HashMap<String, f32>,
}

impl Frequencies {
    pub fn load(path: &Path) -> Result<Self, FrequencyError> {
        let bad = |reason: String| FrequencyError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(file))
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("not gzip: {e}")))?;
        let value = rmpv::decode::read_value(&mut bytes.as_slice())
            .map_err(|e| bad(format!("not MessagePack: {e}")))?;
        let rmpv::Value::Array(items) = value else {
            return Err(bad("not a cBpack array".into()));
        };
        let header_ok = items.first().is_some_and(|h| {
            h.as_map().is_some_and(|m| {
                m.iter()
                    .any(|(k, v)| k.as_str() == Some("format") && v.as_str() == Some("cB"))
            })
        });
        if !header_ok {
            return Err(bad("no cB header".into()));
        }
        let mut zipf = HashMap::new();
        for (index, bucket) in items[1..].iter().enumerate() {
            let Some(words) = bucket.as_array() else {
                return Err(bad(format!("bucket {index} is not an array")));
            };
            let value = 9.0 - index as f32 / 100.0;
            for w in words.iter().filter_map(|w| w.as_str()) {
                zipf.entry(w.to_string()).or_insert(value);
            }
        }
        if zipf.is_empty() {
            return Err(bad("no words".into()));
        }
        Ok(Self { zipf })
    }

    /// Zipf frequency of a word as written (diacritics removed), 0 when unseen.
    pub fn zipf(&self, word: &str) -> f32 {
        self.zipf.get(word).copied().unwrap_or(0.0)
    }

    pub fn len(&self) -> usize {
        self.zipf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zipf.is_empty()
    }
}
