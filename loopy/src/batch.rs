//! `Batch`: the bytes of one vectored write. Frame headers and small
//! payloads are copied into a contiguous tail; large DATA payloads are kept
//! as the `Bytes` the application gave (no copy) and become their own
//! `IoSlice`.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Payloads at least this long are referenced, not copied.
const COPY_THRESHOLD: usize = 1024;

/// The output of [`Writer::write`](crate::Writer::write): a sequence of
/// byte chunks to send in order, ideally with one `writev`.
///
/// ```
/// use loopy::Batch;
/// let mut batch = Batch::new();
/// batch.put_slice(b"head");
/// batch.put_bytes(bytes::Bytes::from(vec![7u8; 4096]));
/// assert_eq!(batch.len(), 4100);
/// let mut slices = Vec::new();
/// batch.io_slices(&mut slices);
/// assert_eq!(slices.len(), 2);
/// batch.advance(4100);
/// assert!(batch.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Total bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a copy of `bytes`.
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// The contiguous tail, to encode frames into; the caller must report
    /// what it added with [`Batch::grew`].
    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Accounts for `n` bytes written into the tail directly.
    pub(crate) fn grew(&mut self, n: usize) {
        self.len += n;
    }

    /// Appends `bytes`: copied when small, referenced when large.
    pub fn put_bytes(&mut self, bytes: Bytes) {
        if bytes.len() < COPY_THRESHOLD {
            self.put_slice(&bytes);
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.len += bytes.len();
        self.chunks.push_back(bytes);
    }

    /// Fills `out` with the chunks in order, for `write_vectored`.
    pub fn io_slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        out.clear();
        out.extend(self.chunks.iter().map(|c| IoSlice::new(c)));
        if !self.tail.is_empty() {
            out.push(IoSlice::new(&self.tail));
        }
    }

    /// Fills `out` with as many leading chunks as fit (for a `writev`
    /// without allocating); returns how many.
    pub fn fill_io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let tail = (!self.tail.is_empty()).then_some(&self.tail[..]);
        let chunks = self.chunks.iter().map(|c| &c[..]).chain(tail);
        let mut count = 0;
        for (slot, chunk) in out.iter_mut().zip(chunks) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        count
    }

    /// Drops the first `n` bytes (they were written).
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n.min(self.tail.len()));
                    n = 0;
                }
            }
        }
    }

    /// Copies everything into one contiguous buffer (tests, tools).
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&self.tail);
        out
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.len = 0;
    }
}
