//! Canonical JSON (RFC 8785) and `sha256:` digests, byte for byte what the server and the
//! Python/Go SDKs compute: object keys sorted by UTF-16 code units, no whitespace, strings
//! escaped only where JSON requires it, numbers in ECMAScript form (`1.0` → `1`,
//! `1e21` → `1e+21`). Every number is treated as an IEEE double, as protobuf Struct does.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::errors::Error;

/// Deepest nesting [`canonical_json`] accepts (the server refuses deeper documents too).
pub const MAX_JSON_DEPTH: usize = 128;

/// Serialize a JSON value to canonical (RFC 8785) UTF-8 bytes.
///
/// # Errors
/// [`Error::Invalid`] for a number with no JSON form or nesting deeper than
/// [`MAX_JSON_DEPTH`].
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = String::new();
    write_value(&mut out, value, 0)?;
    Ok(out.into_bytes())
}

/// `"sha256:" + lowercase hex` of raw bytes (the content address of an artifact).
pub fn bytes_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// [`bytes_digest`] of the canonical JSON of `value`.
///
/// # Errors
/// As [`canonical_json`].
pub fn json_digest(value: &Value) -> Result<String, Error> {
    Ok(bytes_digest(&canonical_json(value)?))
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let v = n
                .as_f64()
                .ok_or_else(|| Error::Invalid(format!("JSON number {n} has no double form")))?;
            write_number(out, v)?;
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            check_depth(depth)?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            check_depth(depth)?;
            let mut keys: Vec<&String> = map.keys().collect();
            // RFC 8785 orders keys by UTF-16 code units, unlike Rust's byte order for
            // characters above U+FFFF.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, &map[key], depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn check_depth(depth: usize) -> Result<(), Error> {
    if depth >= MAX_JSON_DEPTH {
        return Err(Error::Invalid(format!(
            "JSON nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript Number::toString over the shortest round-trip digits.
fn write_number(out: &mut String, v: f64) -> Result<(), Error> {
    if !v.is_finite() {
        return Err(Error::Invalid(format!("JSON has no form for {v}")));
    }
    if v == 0.0 {
        out.push('0'); // also -0
        return Ok(());
    }
    if v < 0.0 {
        out.push('-');
    }
    // `{:e}` prints the shortest digits that round-trip: d.ddddde<exp>.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    out.push_str(&format_es(&digits, exp + 1));
    Ok(())
}

/// Lay out digits (no leading zero) as 0.<digits> × 10^n the way ECMAScript does.
fn format_es(digits: &str, n: i32) -> String {
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        return format!("{digits}{}", "0".repeat((n - k) as usize));
    }
    if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        return format!("{int}.{frac}");
    }
    if -6 < n && n <= 0 {
        return format!("0.{}{digits}", "0".repeat((-n) as usize));
    }
    let mantissa = if k == 1 {
        digits.to_string()
    } else {
        format!("{}.{}", &digits[..1], &digits[1..])
    };
    let e = n - 1;
    format!("{mantissa}e{}{}", if e >= 0 { '+' } else { '-' }, e.abs())
}
