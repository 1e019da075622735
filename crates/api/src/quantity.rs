//! Kubernetes resource quantities (`100m`, `1.5`, `2Gi`, `500M`, `1e3`), as
//! `k8s.io/apimachinery/pkg/api/resource` parses, compares and prints them.
//!
//! A [`Quantity`] holds its exact value as `mantissa × 10^exponent` plus the format its suffix
//! chose (decimal SI, binary SI or decimal exponent), because Kubernetes prints a value back in
//! the family of suffixes it was written in (`1.5Gi` prints as `1536Mi`, `1.5` as `1500m`).
//! Like Kubernetes, values are rounded away from zero to whole nano units, and binary-SI values
//! are capped at 2^63-1.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::validation::go_quote;

/// The regular expression Kubernetes quotes when a quantity is malformed.
const FORMAT_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Errors from parsing a quantity; each names the offending value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// The text does not have the shape of a quantity (`1.5.5`, `abc`, `1Z`).
    #[error("invalid quantity {}: quantities must match the regular expression '{FORMAT_REGEX}'", go_quote(.value))]
    Format {
        /// The text as given.
        value: String,
    },
    /// The suffix is not one Kubernetes knows (`1ki`, `1e`).
    #[error("invalid quantity {}: unable to parse quantity's suffix", go_quote(.value))]
    Suffix {
        /// The text as given.
        value: String,
    },
    /// The number has more significant digits or a larger exponent than we can hold exactly.
    #[error("invalid quantity {}: unable to parse numeric part of quantity", go_quote(.value))]
    Numeric {
        /// The text as given.
        value: String,
    },
}

/// The family of suffixes a quantity is printed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantityFormat {
    /// `m`, `k`, `M`, `G`, ... (and no suffix).
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, ...
    BinarySI,
    /// `e3`, `E6`, ...
    DecimalExponent,
}

/// A parsed resource quantity. Equality and ordering compare values, not formats
/// (`1Ki == 1024`).
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    /// Normalised: no trailing decimal zeros, and zero is `0 × 10^0`.
    mantissa: i128,
    exponent: i32,
    format: QuantityFormat,
}

/// The finest unit Kubernetes keeps: 10^-9.
const NANO: i32 = -9;

impl Quantity {
    /// `mantissa × 10^exponent` in the given format.
    pub fn new(mantissa: i128, exponent: i32, format: QuantityFormat) -> Self {
        let (mantissa, exponent) = normalize(mantissa, exponent);
        Quantity {
            mantissa,
            exponent,
            format,
        }
    }

    /// A decimal-SI quantity of `millis` thousandths (`from_milli(1500)` prints `1500m`).
    pub fn from_milli(millis: i128) -> Self {
        Quantity::new(millis, -3, QuantityFormat::DecimalSI)
    }

    /// A whole number in the given format (`from_int(1 << 20, BinarySI)` prints `1Mi`).
    pub fn from_int(value: i128, format: QuantityFormat) -> Self {
        Quantity::new(value, 0, format)
    }

    /// Parses the Kubernetes text form.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        parse(text)
    }

    /// The suffix family this quantity prints with.
    pub fn format(&self) -> QuantityFormat {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        match self.mantissa.cmp(&0) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    /// The value in units of 10^`scale`, rounded away from zero like Kubernetes'
    /// `ScaledValue`; `None` when it does not fit in an `i128`.
    pub fn to_scaled(&self, scale: i32) -> Option<i128> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let shift = i64::from(self.exponent) - i64::from(scale);
        if shift >= 0 {
            let factor = 10i128.checked_pow(u32::try_from(shift).ok()?)?;
            self.mantissa.checked_mul(factor)
        } else {
            let divisor = u32::try_from(-shift)
                .ok()
                .and_then(|s| 10i128.checked_pow(s));
            Some(match divisor {
                Some(divisor) => div_away_from_zero(self.mantissa, divisor),
                // The divisor exceeds any mantissa, so the value is a non-zero fraction of one
                // unit and rounds to one unit.
                None => self.mantissa.signum(),
            })
        }
    }

    /// The value in thousandths (`1.5` is 1500), rounded away from zero below one thousandth
    /// like Kubernetes' `MilliValue`; `None` on overflow.
    pub fn to_milli(&self) -> Option<i128> {
        self.to_scaled(-3)
    }

    /// The value as a whole number, rounded away from zero like Kubernetes' `Value`; `None` on
    /// overflow.
    pub fn value(&self) -> Option<i128> {
        self.to_scaled(0)
    }

    /// `self + other`, keeping `self`'s format (or `other`'s when `self` is zero), as
    /// Kubernetes' `Add`; `None` on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        if other.is_zero() {
            return Some(Quantity { format, ..*self });
        }
        if self.is_zero() {
            return Some(Quantity { format, ..*other });
        }
        let exponent = self.exponent.min(other.exponent);
        let a = rescale(self.mantissa, self.exponent, exponent)?;
        let b = rescale(other.mantissa, other.exponent, exponent)?;
        Some(Quantity::new(a.checked_add(b)?, exponent, format))
    }

    /// `self - other`; `None` on overflow.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        self.checked_add(&other.checked_neg()?)
    }

    /// `-self`; `None` on overflow.
    pub fn checked_neg(&self) -> Option<Quantity> {
        Some(Quantity {
            mantissa: self.mantissa.checked_neg()?,
            ..*self
        })
    }

    /// The canonical text, as Kubernetes serialises the quantity.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    if value % divisor == 0 {
        quotient
    } else {
        quotient + value.signum()
    }
}

/// `mantissa × 10^from` expressed with exponent `to` (`to <= from`).
fn rescale(mantissa: i128, from: i32, to: i32) -> Option<i128> {
    let shift = u32::try_from(i64::from(from) - i64::from(to)).ok()?;
    mantissa.checked_mul(10i128.checked_pow(shift)?)
}

/// Moves trailing decimal zeros of the mantissa into the exponent, so equal values have equal
/// representations.
fn normalize(mut mantissa: i128, mut exponent: i32) -> (i128, i32) {
    if mantissa == 0 {
        return (0, 0);
    }
    while mantissa % 10 == 0 {
        let Some(next) = exponent.checked_add(1) else {
            break;
        };
        mantissa /= 10;
        exponent = next;
    }
    (mantissa, exponent)
}

/// Decimal-SI suffixes and their powers of ten.
const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Binary-SI suffixes and their powers of two.
const BINARY_SUFFIXES: [(&str, u32); 7] = [
    ("", 0),
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

enum Suffix {
    Decimal(i32),
    Binary(u32),
    Exponent(i32),
}

fn interpret_suffix(suffix: &str) -> Option<Suffix> {
    if let Some((_, exp)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some(Suffix::Decimal(*exp));
    }
    if let Some((_, exp)) = BINARY_SUFFIXES
        .iter()
        .find(|(s, _)| !s.is_empty() && *s == suffix)
    {
        return Some(Suffix::Binary(*exp));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    if rest.is_empty() {
        return None;
    }
    rest.parse::<i32>().ok().map(Suffix::Exponent)
}

fn parse(text: &str) -> Result<Quantity, QuantityError> {
    let format_err = || QuantityError::Format {
        value: text.to_owned(),
    };
    let numeric_err = || QuantityError::Numeric {
        value: text.to_owned(),
    };

    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let int_digits = rest.get(..int_len).unwrap_or_default();
    let mut rest = rest.get(int_len..).unwrap_or_default();
    let mut frac_digits = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        frac_digits = after_dot.get(..frac_len).unwrap_or_default();
        rest = after_dot.get(frac_len..).unwrap_or_default();
    }
    // Kubernetes reads a lone sign or dot as zero; a quantity without digits is a typo, so it is
    // rejected here.
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(format_err());
    }

    // The suffix must look like `[eEinumkKMGTP]*[-+]?[0-9]*` before it is interpreted.
    let suffix = rest;
    let letters = suffix
        .bytes()
        .take_while(|b| b"eEinumkKMGTP".contains(b))
        .count();
    let tail = suffix.get(letters..).unwrap_or_default();
    let tail = tail
        .strip_prefix(['+', '-'])
        .unwrap_or(tail)
        .trim_start_matches(|c: char| c.is_ascii_digit());
    if !tail.is_empty() {
        return Err(format_err());
    }
    let suffix = interpret_suffix(suffix).ok_or_else(|| QuantityError::Suffix {
        value: text.to_owned(),
    })?;

    // Trailing zeros go into the exponent so long round numbers still fit the mantissa.
    let digits = format!("{int_digits}{frac_digits}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    let trailing_zeros = significant.len() - trimmed.len();
    let mut mantissa: i128 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().map_err(|_| numeric_err())?
    };
    let mut exponent = i64::try_from(trailing_zeros).map_err(|_| numeric_err())?
        - i64::try_from(frac_digits.len()).map_err(|_| numeric_err())?;

    let format = match suffix {
        Suffix::Decimal(exp) => {
            exponent += i64::from(exp);
            QuantityFormat::DecimalSI
        }
        Suffix::Exponent(exp) => {
            exponent += i64::from(exp);
            QuantityFormat::DecimalExponent
        }
        Suffix::Binary(exp) => {
            mantissa = mantissa.checked_mul(1i128 << exp).ok_or_else(numeric_err)?;
            QuantityFormat::BinarySI
        }
    };
    if negative {
        mantissa = -mantissa;
    }

    // Round non-zero values away from zero to whole nano units: whoever asks for a tiny amount
    // of a resource should get some, as Kubernetes reasons.
    if mantissa != 0 && exponent < i64::from(NANO) {
        let divisor = u32::try_from(i64::from(NANO) - exponent)
            .ok()
            .and_then(|s| 10i128.checked_pow(s));
        mantissa = match divisor {
            Some(divisor) => div_away_from_zero(mantissa, divisor),
            None => mantissa.signum(),
        };
        exponent = i64::from(NANO);
    }
    let exponent = i32::try_from(exponent).map_err(|_| numeric_err())?;
    let mut quantity = Quantity::new(mantissa, exponent, format);

    // Kubernetes caps binary-SI quantities at the largest int64.
    if format == QuantityFormat::BinarySI {
        let cap = Quantity::from_int(i128::from(i64::MAX), format);
        if quantity.abs_cmp(&cap) == Ordering::Greater {
            quantity = if negative {
                Quantity::from_int(-i128::from(i64::MAX), format)
            } else {
                cap
            };
        }
    }
    Ok(quantity)
}

impl Quantity {
    /// Compares absolute values.
    fn abs_cmp(&self, other: &Quantity) -> Ordering {
        let (a, b) = (self.mantissa.unsigned_abs(), other.mantissa.unsigned_abs());
        match (a == 0, b == 0) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let (da, db) = (a.to_string(), b.to_string());
        // The position of the most significant digit decides first.
        let lead = |digits: &str, exponent: i32| digits.len() as i64 + i64::from(exponent);
        lead(&da, self.exponent)
            .cmp(&lead(&db, other.exponent))
            // Same magnitude and no trailing zeros: digit strings compare like the numbers.
            .then_with(|| da.cmp(&db))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.mantissa == other.mantissa && self.exponent == other.exponent
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.mantissa.hash(state);
        self.exponent.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.signum().cmp(&other.signum()) {
            Ordering::Equal if self.signum() < 0 => other.abs_cmp(self),
            Ordering::Equal => self.abs_cmp(other),
            unequal => unequal,
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;

    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        parse(&q.0)
    }
}

impl From<&Quantity> for k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    fn from(q: &Quantity) -> Self {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.to_string())
    }
}

impl fmt::Display for Quantity {
    /// Kubernetes' canonical form: the value in the quantity's format, with the largest suffix
    /// that keeps the number whole (`1536Mi`, `1500m`, `120e3`). Binary values below 1024 or
    /// with a fraction print in decimal SI, as in Kubernetes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        if self.format == QuantityFormat::BinarySI
            && let Some(text) = self.binary_canonical()
        {
            return f.write_str(&text);
        }
        let format = match self.format {
            QuantityFormat::DecimalExponent => QuantityFormat::DecimalExponent,
            _ => QuantityFormat::DecimalSI,
        };
        // Lower the exponent to a multiple of three by appending zeros to the digits.
        let shift = self.exponent.rem_euclid(3);
        let mut exponent = self.exponent - shift;
        let mut digits = self.mantissa.unsigned_abs().to_string();
        digits.push_str(&"0".repeat(shift as usize));
        let suffix = match format {
            QuantityFormat::DecimalExponent if exponent == 0 => String::new(),
            QuantityFormat::DecimalExponent => format!("e{exponent}"),
            // Only values built by hand get here; writing out that many zeros would be absurd.
            _ if exponent > 18 + 40 => format!("e{exponent}"),
            _ => {
                if exponent > 18 {
                    // Past `E` there is no decimal suffix: write the extra zeros out.
                    digits.push_str(&"0".repeat((exponent - 18) as usize));
                    exponent = 18;
                }
                DECIMAL_SUFFIXES
                    .iter()
                    .find(|(_, e)| *e == exponent)
                    .map(|(s, _)| (*s).to_owned())
                    .unwrap_or_default()
            }
        };
        let sign = if self.mantissa < 0 { "-" } else { "" };
        write!(f, "{sign}{digits}{suffix}")
    }
}

impl Quantity {
    /// The binary-SI text, or `None` when Kubernetes falls back to decimal SI (a magnitude
    /// below 1024 or a fractional value).
    fn binary_canonical(&self) -> Option<String> {
        if self.exponent < 0 {
            return None;
        }
        let mut value = self.value()?;
        if value.unsigned_abs() < 1024 {
            return None;
        }
        let mut power = 0usize;
        while value.unsigned_abs() >= 1024 && value % 1024 == 0 {
            value /= 1024;
            power += 1;
        }
        let (suffix, _) = BINARY_SUFFIXES.get(power)?;
        Some(format!("{value}{suffix}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0", "0"),
            ("0Mi", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1", "1"),
            ("+1", "1"),
            ("-1", "-1"),
            ("1000m", "1"),
            ("100m", "100m"),
            ("0.1", "100m"),
            (".5", "500m"),
            ("5.", "5"),
            ("1.5", "1500m"),
            ("-1.5", "-1500m"),
            ("1.5k", "1500"),
            ("1000k", "1M"),
            ("500M", "500M"),
            ("2Gi", "2Gi"),
            ("1.5Gi", "1536Mi"),
            ("123Mi", "123Mi"),
            ("1024Mi", "1Gi"),
            ("1Ki", "1Ki"),
            ("-1Ki", "-1Ki"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("1024", "1024"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("12e4", "120e3"),
            ("1.5e3", "1500"),
            ("1e-3", "1e-3"),
            ("100e-3", "100e-3"),
            ("1e0", "1"),
            ("1m", "1m"),
            ("0.1m", "100u"),
            ("1u", "1u"),
            ("1n", "1n"),
            ("0.5n", "1n"),
            ("-0.5n", "-1n"),
            ("1e-30", "1e-9"),
            ("5E", "5E"),
            ("5000E", "5000E"),
            ("1Ei", "1Ei"),
            ("16Ei", "9223372036854775807"),
            ("007", "7"),
            ("1e+3", "1e3"),
        ];
        for (input, want) in cases {
            assert_eq!(q(input).to_string(), want, "{input:?}");
            // The canonical text parses back to an equal quantity.
            assert_eq!(q(want), q(input), "{want:?} vs {input:?}");
        }
    }

    #[test]
    fn rejects_malformed_quantities() {
        let format = |v: &str| QuantityError::Format { value: v.into() };
        let suffix = |v: &str| QuantityError::Suffix { value: v.into() };
        let cases = [
            ("", format("")),
            ("-", format("-")),
            ("+", format("+")),
            (".", format(".")),
            ("1.5.5", format("1.5.5")),
            ("abc", format("abc")),
            ("1Z", format("1Z")),
            ("1 ", format("1 ")),
            (" 1", format(" 1")),
            ("1e3.5", format("1e3.5")),
            ("1Mi3x", format("1Mi3x")),
            ("1ki", suffix("1ki")),
            ("1e", suffix("1e")),
            ("1k3", suffix("1k3")),
            ("1Ki3", suffix("1Ki3")),
            ("1iM", suffix("1iM")),
            ("1e99999999999", suffix("1e99999999999")),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input), Err(want), "{input:?}");
        }
        assert_eq!(
            Quantity::parse("1Z").expect_err("bad").to_string(),
            "invalid quantity \"1Z\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            Quantity::parse("1ki").expect_err("bad").to_string(),
            "invalid quantity \"1ki\": unable to parse quantity's suffix"
        );
        let huge = "9".repeat(60);
        assert_eq!(
            Quantity::parse(&huge),
            Err(QuantityError::Numeric {
                value: huge.clone()
            })
        );
    }

    #[test]
    fn conversions() {
        let cases: [(&str, Option<i128>, Option<i128>); 12] = [
            ("100m", Some(100), Some(1)),
            ("1.5", Some(1500), Some(2)),
            ("2", Some(2000), Some(2)),
            (
                "2Gi",
                Some(2 * 1024 * 1024 * 1024 * 1000),
                Some(2 * 1024 * 1024 * 1024),
            ),
            ("500M", Some(500_000_000_000), Some(500_000_000)),
            ("1e3", Some(1_000_000), Some(1000)),
            ("1n", Some(1), Some(1)),
            ("-1n", Some(-1), Some(-1)),
            ("-1.5", Some(-1500), Some(-2)),
            ("0", Some(0), Some(0)),
            ("1e37", None, Some(10i128.pow(37))),
            ("1e50", None, None),
        ];
        for (input, milli, value) in cases {
            assert_eq!(q(input).to_milli(), milli, "{input:?} millis");
            assert_eq!(q(input).value(), value, "{input:?} value");
        }
        assert_eq!(Quantity::from_milli(1500).to_string(), "1500m");
        assert_eq!(Quantity::from_milli(2000).to_string(), "2");
        assert_eq!(
            Quantity::from_int(1 << 20, QuantityFormat::BinarySI).to_string(),
            "1Mi"
        );
        assert_eq!(q("2Gi").to_scaled(9), Some(3));
        let k8s = k8s_openapi::apimachinery::pkg::api::resource::Quantity("1.5Gi".into());
        let parsed = Quantity::try_from(&k8s).expect("valid");
        assert_eq!(
            k8s_openapi::apimachinery::pkg::api::resource::Quantity::from(&parsed).0,
            "1536Mi"
        );
        assert_eq!(parsed.format(), QuantityFormat::BinarySI);
        assert_eq!(
            "250m".parse::<Quantity>().ok(),
            Some(Quantity::from_milli(250))
        );
    }

    #[test]
    fn comparison() {
        let ascending = [
            "-1Ei", "-1", "-1m", "-1n", "0", "1n", "1u", "1m", "100m", "1", "0.5Ki", "1Ki", "1025",
            "1M", "1Mi", "1e7", "1G", "1Gi", "1e30", "1e31",
        ];
        for pair in ascending.windows(2) {
            let (a, b) = (q(pair[0]), q(pair[1]));
            assert!(a < b, "{} < {}", pair[0], pair[1]);
            assert!(b > a, "{} > {}", pair[1], pair[0]);
        }
        for (a, b) in [
            ("1Ki", "1024"),
            ("1000m", "1"),
            ("1e3", "1k"),
            ("0.5", "500m"),
            ("1Mi", "1048576"),
            ("0", "0Gi"),
            ("120e3", "12e4"),
        ] {
            assert_eq!(q(a), q(b), "{a} == {b}");
            assert_eq!(q(a).cmp(&q(b)), Ordering::Equal);
        }
        assert!(q("123").abs_cmp(&q("12.4")) == Ordering::Greater);
        assert!(q("124e-1") > q("12.3"));
    }

    #[test]
    fn arithmetic() {
        let sum = q("100m").checked_add(&q("1.5")).expect("fits");
        assert_eq!(sum.to_string(), "1600m");
        assert_eq!(
            q("1Gi").checked_add(&q("512Mi")).expect("fits").to_string(),
            "1536Mi"
        );
        assert_eq!(
            q("0").checked_add(&q("1Ki")).expect("fits").format(),
            QuantityFormat::BinarySI
        );
        assert_eq!(q("1").checked_sub(&q("1")).expect("fits").to_string(), "0");
        assert_eq!(
            q("1").checked_sub(&q("250m")).expect("fits").to_string(),
            "750m"
        );
        assert_eq!(q("1e30").checked_add(&q("1n")), None);
        assert_eq!(q("-2").checked_neg().expect("fits").to_string(), "2");
        assert!(q("0").is_zero());
        assert_eq!(q("-3m").signum(), -1);
    }
}
