//! The `grpc-timeout` request header (PROTOCOL-HTTP2.md "Requests"):
//!
//! ```text
//! Timeout      → "grpc-timeout" TimeoutValue TimeoutUnit
//! TimeoutValue → {positive integer as ASCII string of at most 8 digits}
//! TimeoutUnit  → Hour / Minute / Second / Millisecond / Microsecond / Nanosecond
//!   Hour → "H", Minute → "M", Second → "S",
//!   Millisecond → "m", Microsecond → "u", Nanosecond → "n"
//! ```
//!
//! [`parse_timeout`] is strict: 1 to 8 ASCII digits then one unit, nothing
//! else (no sign, no space). A value of zero is accepted (grpc-go sends
//! `0n` for a deadline already passed). Eight digits of hours fit a
//! [`Duration`] with room to spare, so parsing cannot overflow.
//!
//! [`format_timeout`] is grpc-go's `encodeTimeout`: the finest unit whose
//! value, rounded up, fits in eight digits. Rounding up means a deadline
//! sent is never earlier than the one meant.

use std::fmt;
use std::time::Duration;

/// The most digits a `grpc-timeout` value may have.
pub const MAX_TIMEOUT_DIGITS: usize = 8;

/// The largest `grpc-timeout` value: eight nines.
const MAX_VALUE: u64 = 99_999_999;

/// Why a `grpc-timeout` value is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutError {
    /// The value is empty.
    Empty,
    /// The last byte is not a unit (`H`, `M`, `S`, `m`, `u`, `n`).
    InvalidUnit(u8),
    /// No digits before the unit.
    NoDigits,
    /// More than eight digits.
    TooManyDigits,
    /// A byte that is not an ASCII digit before the unit.
    InvalidDigit(u8),
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Empty => f.write_str("empty grpc-timeout"),
            TimeoutError::InvalidUnit(b) => write!(
                f,
                "grpc-timeout unit {:?} is not one of H, M, S, m, u, n",
                char::from(*b)
            ),
            TimeoutError::NoDigits => f.write_str("grpc-timeout has no digits"),
            TimeoutError::TooManyDigits => {
                write!(f, "grpc-timeout has more than {MAX_TIMEOUT_DIGITS} digits")
            }
            TimeoutError::InvalidDigit(b) => {
                write!(f, "grpc-timeout has a non-digit byte 0x{b:02x}")
            }
        }
    }
}

impl std::error::Error for TimeoutError {}

/// Parses a `grpc-timeout` value.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::grpc::{parse_timeout, TimeoutError};
///
/// assert_eq!(parse_timeout(b"1S"), Ok(Duration::from_secs(1)));
/// assert_eq!(parse_timeout(b"250m"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_timeout(b"2H"), Ok(Duration::from_secs(7200)));
/// assert_eq!(parse_timeout(b"123456789n"), Err(TimeoutError::TooManyDigits));
/// assert_eq!(parse_timeout(b"10"), Err(TimeoutError::InvalidUnit(b'0')));
/// assert_eq!(parse_timeout(b"10s"), Err(TimeoutError::InvalidUnit(b's')));
/// ```
///
/// # Errors
///
/// A [`TimeoutError`] naming what is wrong.
pub fn parse_timeout(value: &[u8]) -> Result<Duration, TimeoutError> {
    let (&unit, digits) = value.split_last().ok_or(TimeoutError::Empty)?;
    let unit_nanos: u64 = match unit {
        b'H' => 3_600_000_000_000,
        b'M' => 60_000_000_000,
        b'S' => 1_000_000_000,
        b'm' => 1_000_000,
        b'u' => 1_000,
        b'n' => 1,
        _ => return Err(TimeoutError::InvalidUnit(unit)),
    };
    if digits.is_empty() {
        return Err(TimeoutError::NoDigits);
    }
    if digits.len() > MAX_TIMEOUT_DIGITS {
        return Err(TimeoutError::TooManyDigits);
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(TimeoutError::InvalidDigit(b));
        }
        // At most eight digits: n stays below 10^8.
        n = n * 10 + u64::from(b - b'0');
    }
    // At most 10^8 hours = 3.6e20 ns: too many for u64 nanoseconds, so
    // split into whole seconds and the rest.
    let per_sec = 1_000_000_000;
    Ok(if unit_nanos >= per_sec {
        Duration::from_secs(n * (unit_nanos / per_sec))
    } else {
        Duration::from_nanos(n * unit_nanos)
    })
}

/// Formats a timeout for `grpc-timeout`: the finest unit whose value,
/// rounded up, has at most eight digits (grpc-go's `encodeTimeout`). Zero
/// is `0n`; a timeout past 99,999,999 hours (some 11,000 years) is sent as
/// that.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::grpc::format_timeout;
///
/// assert_eq!(format_timeout(Duration::from_millis(50)), "50000000n");
/// assert_eq!(format_timeout(Duration::from_millis(250)), "250000u");
/// assert_eq!(format_timeout(Duration::from_secs(1)), "1000000u");
/// assert_eq!(format_timeout(Duration::from_secs(3600)), "3600000m");
/// assert_eq!(format_timeout(Duration::new(1, 1)), "1000001u"); // rounded up
/// assert_eq!(format_timeout(Duration::ZERO), "0n");
/// ```
#[must_use]
pub fn format_timeout(timeout: Duration) -> String {
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let nanos = timeout.as_nanos();
    for (unit_nanos, unit) in UNITS {
        let value = nanos.div_ceil(unit_nanos);
        if value <= u128::from(MAX_VALUE) {
            return format!("{value}{unit}");
        }
    }
    format!("{MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_values_do_not_overflow() {
        assert_eq!(
            parse_timeout(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(
            parse_timeout(b"99999999n"),
            Ok(Duration::from_nanos(99_999_999))
        );
        assert_eq!(format_timeout(Duration::MAX), "99999999H");
    }
}
