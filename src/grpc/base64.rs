//! Base64 (RFC 4648 §4, the standard alphabet) for binary metadata: the
//! values of `-bin` headers and `grpc-status-details-bin`.
//!
//! PROTOCOL-HTTP2.md: "Implementations MUST accept padded and un-padded
//! values and should emit un-padded values." So [`encode_unpadded`] never
//! writes `=`, and [`decode`] takes either form. Decoding is strict about
//! everything else (alphabet, length, where padding may stand) and lenient
//! about the unused low bits of the last character, as Go's
//! `base64.StdEncoding` is. Nothing here panics on any input.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a value is not base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the standard alphabet (and not padding at the end).
    InvalidByte {
        /// Its offset in the input.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// The length leaves one character over (`len % 4 == 1` once padding is
    /// removed): no whole byte can come of it.
    InvalidLength,
    /// `=` where it cannot stand: not at the end, more than two, or making
    /// the padded length other than a multiple of four.
    InvalidPadding,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::InvalidByte { index, byte } => {
                write!(f, "invalid base64 byte 0x{byte:02x} at offset {index}")
            }
            Base64Error::InvalidLength => f.write_str("invalid base64 length"),
            Base64Error::InvalidPadding => f.write_str("invalid base64 padding"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// The base64 text of `input`, standard alphabet, without `=` padding (as
/// gRPC sends binary metadata).
///
/// ```
/// use mio_grpc::grpc::base64;
///
/// assert_eq!(base64::encode_unpadded(b"hi!"), "aGkh");
/// assert_eq!(base64::encode_unpadded(b"hi"), "aGk");
/// assert_eq!(base64::decode(b"aGk=")?, b"hi");
/// assert_eq!(base64::decode(b"aGk")?, b"hi");
/// # Ok::<(), base64::Base64Error>(())
/// ```
#[must_use]
pub fn encode_unpadded(input: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(input.len()));
    let symbol = |index: u32| {
        char::from(
            ALPHABET
                .get((index & 0x3f) as usize)
                .copied()
                .unwrap_or(b'A'),
        )
    };
    let mut chunks = input.chunks_exact(3);
    for chunk in chunks.by_ref() {
        if let [a, b, c] = *chunk {
            let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            out.push(symbol(n >> 18));
            out.push(symbol(n >> 12));
            out.push(symbol(n >> 6));
            out.push(symbol(n));
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(symbol(n >> 18));
            out.push(symbol(n >> 12));
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.push(symbol(n >> 18));
            out.push(symbol(n >> 12));
            out.push(symbol(n >> 6));
        }
        _ => {}
    }
    out
}

/// The length of [`encode_unpadded`]'s output for `len` input bytes.
#[must_use]
pub const fn encoded_len(len: usize) -> usize {
    len / 3 * 4
        + match len % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Decodes base64 text in the standard alphabet, padded or not.
///
/// Errors on any byte outside the alphabet (whitespace included), on a
/// length no encoder produces, and on misplaced padding.
///
/// ```
/// use mio_grpc::grpc::base64::{self, Base64Error};
///
/// assert_eq!(base64::decode(b"AAEC/w==")?, [0, 1, 2, 255]);
/// assert_eq!(base64::decode(b"AAEC/w")?, [0, 1, 2, 255]);
/// assert_eq!(base64::decode(b"A"), Err(Base64Error::InvalidLength));
/// # Ok::<(), Base64Error>(())
/// ```
pub fn decode(input: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let body = strip_padding(input)?;
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for (index, &byte) in body.iter().enumerate() {
        let value = sextet(byte).ok_or(Base64Error::InvalidByte { index, byte })?;
        acc = (acc << 6 | u32::from(value)) & 0xff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation intended: the low eight bits above `bits`.
            out.push((acc >> bits) as u8);
        }
    }
    // One character over: six bits that make no byte.
    if body.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength);
    }
    Ok(out)
}

/// `input` without its trailing `=`s, checking they are where padding may
/// stand.
fn strip_padding(input: &[u8]) -> Result<&[u8], Base64Error> {
    let pad = input.iter().rev().take_while(|&&b| b == b'=').count();
    if pad == 0 {
        return Ok(input);
    }
    if pad > 2 || input.len() % 4 != 0 {
        return Err(Base64Error::InvalidPadding);
    }
    let body = input
        .get(..input.len() - pad)
        .ok_or(Base64Error::InvalidPadding)?;
    // "xx==" pads one byte and "xxx=" two; "xxxx" + "==" cannot happen as
    // the length is a multiple of four, but "x===" is caught above.
    match (body.len() % 4, pad) {
        (2, 2) | (3, 1) => Ok(body),
        _ => Err(Base64Error::InvalidPadding),
    }
}

/// The 6-bit value of one base64 character, `None` outside the alphabet.
const fn sextet(byte: u8) -> Option<u8> {
    Some(match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode_unpadded(plain), encoded);
            assert_eq!(encoded_len(plain.len()), encoded.len());
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain);
            let mut padded = encoded.to_owned();
            while padded.len() % 4 != 0 {
                padded.push('=');
            }
            assert_eq!(decode(padded.as_bytes()).unwrap(), plain);
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            let slice = &all[..len];
            assert_eq!(decode(encode_unpadded(slice).as_bytes()).unwrap(), slice);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode(b"Zm9v YmFy"),
            Err(Base64Error::InvalidByte {
                index: 4,
                byte: b' '
            })
        );
        assert_eq!(
            decode(b"Zm9v-mFy"),
            Err(Base64Error::InvalidByte {
                index: 4,
                byte: b'-'
            })
        );
        assert_eq!(decode(b"Zm9vY"), Err(Base64Error::InvalidLength));
        assert_eq!(decode(b"Zg="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode(b"Z==="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode(b"===="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode(b"Zm8=="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode(b"Zm9v=="), Err(Base64Error::InvalidPadding));
        assert_eq!(
            decode(b"Zg==Zg=="),
            Err(Base64Error::InvalidByte {
                index: 2,
                byte: b'='
            })
        );
        assert_eq!(decode(b"="), Err(Base64Error::InvalidPadding));
    }
}
