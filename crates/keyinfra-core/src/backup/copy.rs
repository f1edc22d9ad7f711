//! A streaming check of PostgreSQL's binary COPY data, fed in chunks of any size.

/// A streaming parser of PostgreSQL's binary COPY format: checks the signature, that every
/// row has the table's number of fields, that every field is complete and that the trailer
/// ends the data; counts the rows.
#[derive(Debug)]
pub(super) struct CopyParser {
    fields: usize,
    step: Step,
    small: Vec<u8>,
    fields_left: usize,
    pub(super) rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// 11-byte signature, 4-byte flags, 4-byte header-extension length.
    Header,
    /// A 16-bit field count (-1: the trailer).
    Tuple,
    /// A 32-bit field length (-1: NULL).
    FieldLength,
    /// Bytes to skip (an extension area or a field's value).
    Skip(u64),
    Done,
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl CopyParser {
    pub(super) fn new(fields: usize) -> Self {
        Self {
            fields,
            step: Step::Header,
            small: Vec::with_capacity(19),
            fields_left: 0,
            rows: 0,
        }
    }

    fn after_value(&self) -> Step {
        if self.fields_left > 0 {
            Step::FieldLength
        } else {
            Step::Tuple
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let need = match self.step {
                Step::Done => return Err("data follows the end of the table".to_owned()),
                Step::Skip(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.step = if n == take {
                        self.after_value()
                    } else {
                        Step::Skip(n - take)
                    };
                    continue;
                }
                Step::Header => 19,
                Step::Tuple => 2,
                Step::FieldLength => 4,
            };
            let take = (need - self.small.len()).min(data.len());
            self.small.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.small.len() == need {
                self.complete()?;
                self.small.clear();
            }
        }
        Ok(())
    }

    fn complete(&mut self) -> Result<(), String> {
        let b = &self.small;
        match self.step {
            Step::Header => {
                if &b[..11] != COPY_SIGNATURE {
                    return Err("not PostgreSQL binary COPY data".to_owned());
                }
                let flags = u32::from_be_bytes([b[11], b[12], b[13], b[14]]);
                if flags & (1 << 16) != 0 {
                    return Err("COPY data with OIDs".to_owned());
                }
                let extension = u32::from_be_bytes([b[15], b[16], b[17], b[18]]);
                self.fields_left = 0;
                self.step = if extension == 0 {
                    Step::Tuple
                } else {
                    Step::Skip(u64::from(extension))
                };
            }
            Step::Tuple => {
                let n = i16::from_be_bytes([b[0], b[1]]);
                if n == -1 {
                    self.step = Step::Done;
                } else if usize::try_from(n).ok() != Some(self.fields) {
                    return Err(format!(
                        "a row has {n} fields where the table has {}",
                        self.fields
                    ));
                } else {
                    self.rows += 1;
                    self.fields_left = self.fields;
                    self.step = self.after_value();
                }
            }
            Step::FieldLength => {
                let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                self.fields_left -= 1;
                self.step = match len {
                    -1 | 0 => self.after_value(),
                    l if l < 0 => return Err(format!("a field has length {l}")),
                    l => Step::Skip(l as u64),
                };
            }
            Step::Skip(_) | Step::Done => {}
        }
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<u64, String> {
        if self.step == Step::Done {
            Ok(self.rows)
        } else {
            Err("the table's data ends early".to_owned())
        }
    }
}

/// Binary COPY data of `rows` rows of `fields` fields (a NULL, then 3-byte values).
#[cfg(test)]
pub(super) fn copy_data(rows: usize, fields: usize) -> Vec<u8> {
    let mut d = COPY_SIGNATURE.to_vec();
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&4u32.to_be_bytes());
    d.extend_from_slice(b"ext!");
    for _ in 0..rows {
        d.extend_from_slice(&(fields as i16).to_be_bytes());
        for f in 0..fields {
            if f == 0 {
                d.extend_from_slice(&(-1i32).to_be_bytes());
            } else {
                d.extend_from_slice(&3i32.to_be_bytes());
                d.extend_from_slice(b"abc");
            }
        }
    }
    d.extend_from_slice(&(-1i16).to_be_bytes());
    d
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_copy_parser_counts_rows_in_any_chunking() {
        let data = copy_data(5, 3);
        for size in [1, 2, 3, 7, 64, data.len()] {
            let mut p = CopyParser::new(3);
            for chunk in data.chunks(size) {
                p.feed(chunk).unwrap();
            }
            assert_eq!(p.finish().unwrap(), 5, "chunks of {size}");
        }
        let mut p = CopyParser::new(3);
        p.feed(&copy_data(0, 3)).unwrap();
        assert_eq!(p.finish().unwrap(), 0);
    }

    #[test]
    fn the_copy_parser_refuses_malformed_data() {
        let data = copy_data(2, 3);
        let mut short = CopyParser::new(3);
        short.feed(&data[..data.len() - 3]).unwrap();
        assert!(short.finish().is_err());
        assert!(CopyParser::new(4).feed(&data).is_err());
        let mut extra = data.clone();
        extra.push(0);
        assert!(CopyParser::new(3).feed(&extra).is_err());
        let mut bad = data;
        bad[0] = b'X';
        assert!(CopyParser::new(3).feed(&bad).is_err());
    }
}
