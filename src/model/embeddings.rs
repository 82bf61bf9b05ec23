//! The token embedding table and the output projection of a GGUF decoder.
//!
//! A lookup touches a handful of rows per step, yet the table is one of the largest
//! tensors (150k–260k rows). When the weights come from a file on the CPU, rows are read
//! from the file as tokens need them instead of being held in memory, and a tied output
//! projection no longer has to keep the table's blocks beside its packed copy: the model is
//! held once (see `third_party/candle-core/TARJAMA.md`).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Result, Tensor};

use super::transformer::Linear;

const TABLE: &str = "token_embd.weight";
const OUTPUT: &str = "output.weight";

/// What a decoder's weights are read from. A file can also serve embedding rows later.
pub trait WeightSource: Read + Seek {
    fn file(&self) -> Option<&File> {
        None
    }
}

impl WeightSource for File {
    fn file(&self) -> Option<&File> {
        Some(self)
    }
}

impl WeightSource for BufReader<File> {
    fn file(&self) -> Option<&File> {
        Some(self.get_ref())
    }
}

impl<T: AsRef<[u8]>> WeightSource for Cursor<T> {}

/// Maps token ids to their embedding rows, `ids.dims() + [hidden]`.
pub enum TokenEmbeddings {
    /// The table in memory (weights not from a file, or on a GPU).
    Resident(QMatMul),
    /// Rows read from the GGUF as they are needed.
    OnDisk(RowsOnDisk),
}

pub struct RowsOnDisk {
    file: File,
    /// Where row 0 starts in the file.
    offset: u64,
    dtype: GgmlDType,
    rows: usize,
    hidden: usize,
}

impl TokenEmbeddings {
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Resident(table) => table.embedding(ids),
            Self::OnDisk(rows) => rows.lookup(ids),
        }
    }
}

impl RowsOnDisk {
    fn row_bytes(&self) -> usize {
        self.hidden / self.dtype.block_size() * self.dtype.type_size()
    }

    /// Dequantizes with candle's own block code, so a row is bit for bit what the
    /// resident table would give.
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        let row_bytes = self.row_bytes();
        let mut blocks = vec![0u8; flat.len() * row_bytes];
        for (&id, dst) in flat.iter().zip(blocks.chunks_exact_mut(row_bytes)) {
            if id as usize >= self.rows {
                candle_core::bail!("token id {id} is out of range for {} rows", self.rows)
            }
            let at = self.offset + id as u64 * row_bytes as u64;
            self.file.read_exact_at(dst, at)?;
        }
        let storage = QStorage::from_data(Cow::Owned(blocks), &Device::Cpu, self.dtype)?;
        let mut dims = ids.dims().to_vec();
        dims.push(self.hidden);
        QTensor::new(storage, (flat.len(), self.hidden))?
            .dequantize(&Device::Cpu)?
            .reshape(dims)
    }
}

/// Loads the token embeddings and the output projection (`output.weight`, or the table
/// itself when the model ties them).
pub fn embeddings_and_output<R: WeightSource>(
    content: &gguf_file::Content,
    reader: &mut R,
    device: &Device,
) -> Result<(TokenEmbeddings, Linear)> {
    let tied = !content.tensor_infos.contains_key(OUTPUT);
    if let Some(rows) = rows_on_disk(content, reader, device)? {
        let output = content.tensor(reader, if tied { TABLE } else { OUTPUT }, device)?;
        return Ok((TokenEmbeddings::OnDisk(rows), Linear::new(output)?));
    }
    let table = Arc::new(content.tensor(reader, TABLE, device)?);
    let output = if tied {
        Linear::shared(table.clone())?
    } else {
        Linear::new(content.tensor(reader, OUTPUT, device)?)?
    };
    Ok((TokenEmbeddings::Resident(QMatMul::from_arc(table)?), output))
}

fn rows_on_disk<R: WeightSource>(
    content: &gguf_file::Content,
    reader: &R,
    device: &Device,
) -> Result<Option<RowsOnDisk>> {
    let (Some(file), true) = (reader.file(), device.is_cpu()) else {
        return Ok(None);
    };
    let Some(info) = content.tensor_infos.get(TABLE) else {
        candle_core::bail!("{TABLE} is missing from the GGUF")
    };
    let (rows, hidden) = info.shape.dims2()?;
    if hidden % info.ggml_dtype.block_size() != 0 {
        return Ok(None);
    }
    Ok(Some(RowsOnDisk {
        file: file.try_clone()?,
        offset: content.tensor_data_offset + info.offset,
        dtype: info.ggml_dtype,
        rows,
        hidden,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::Value;

    /// A GGUF holding a random Q4_K table, written to a temporary file.
    fn table_file(rows: usize, hidden: usize) -> (tempfile::NamedTempFile, QTensor) {
        let values = Tensor::randn(0f32, 1.0, (rows, hidden), &Device::Cpu).unwrap();
        let table = QTensor::quantize(&values, GgmlDType::Q4K).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let arch = Value::String("test".into());
        gguf_file::write(
            file.as_file_mut(),
            &[("general.architecture", &arch)],
            &[(TABLE, &table)],
        )
        .unwrap();
        (file, table)
    }

    #[test]
    fn rows_read_from_the_file_equal_the_resident_table() {
        let (file, table) = table_file(64, 512);
        let mut reader = BufReader::new(File::open(file.path()).unwrap());
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let (embeddings, _output) =
            embeddings_and_output(&content, &mut reader, &Device::Cpu).unwrap();
        assert!(matches!(embeddings, TokenEmbeddings::OnDisk(_)));
        let ids = Tensor::new(&[[3u32, 63, 0], [17, 3, 42]], &Device::Cpu).unwrap();
        let from_disk = embeddings.forward(&ids).unwrap();
        let resident = QMatMul::from_arc(Arc::new(table))
            .unwrap()
            .embedding(&ids)
            .unwrap();
        assert_eq!(from_disk.dims(), &[2, 3, 512]);
        let disk: Vec<f32> = from_disk.flatten_all().unwrap().to_vec1().unwrap();
        let memory: Vec<f32> = resident.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(disk, memory);
    }

    #[test]
    fn an_id_past_the_table_is_an_error() {
        let (file, _) = table_file(16, 256);
        let mut reader = BufReader::new(File::open(file.path()).unwrap());
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let (embeddings, _) = embeddings_and_output(&content, &mut reader, &Device::Cpu).unwrap();
        let ids = Tensor::new(&[16u32], &Device::Cpu).unwrap();
        let err = embeddings.forward(&ids).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
    }
}
