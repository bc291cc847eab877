//! Reading a request body on a blocking thread: chunks arrive through a
//! channel, are decompressed if gzipped, counted against the limit (after
//! decompression, so a compression bomb stops at the limit) and hashed for
//! Idempotency-Key comparisons.
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Marks the limit being reached, inside an `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("the body is larger than {0} bytes")]
pub(crate) struct TooLarge(pub u64);

pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self { rx, buf: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.buf = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(n)
    }
}

/// Counts (and optionally hashes) what passes through; fails past `limit`.
pub(crate) struct Limited<R> {
    inner: R,
    limit: u64,
    seen: u64,
    hasher: Option<Sha256>,
}

impl<R: Read> Limited<R> {
    pub(crate) fn new(inner: R, limit: u64, hash: bool) -> Self {
        Self { inner, limit, seen: 0, hasher: hash.then(Sha256::new) }
    }

    pub(crate) fn seed_hash(&mut self, tag: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(tag);
        }
    }

    pub(crate) fn digest(self) -> Option<String> {
        self.hasher.map(|h| hex::encode(h.finalize()))
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.seen += n as u64;
        if self.seen > self.limit {
            return Err(io::Error::other(TooLarge(self.limit)));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&out[..n]);
        }
        Ok(n)
    }
}

/// What went wrong while reading, for the HTTP status.
pub(crate) enum ReadProblem {
    TooLarge(u64),
    BadGzip,
    Other(String),
}

pub(crate) fn classify(e: &io::Error) -> ReadProblem {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<TooLarge>()) {
        return ReadProblem::TooLarge(t.0);
    }
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ReadProblem::BadGzip,
        _ => ReadProblem::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_limit_applies_after_decompression() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 10_000_000]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 100_000);
        let mut r = Limited::new(flate2::read::MultiGzDecoder::new(&bomb[..]), 1_000_000, false);
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(matches!(classify(&err), ReadProblem::TooLarge(1_000_000)));
    }

    #[test]
    fn hashes_what_it_reads() {
        let mut r = Limited::new(&b"abc"[..], 10, true);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.digest().unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
