//! Value syntaxes that many Compose fields share: scalars that interpolation turned into
//! strings ("3", "true"), durations and sizes kept with their text, a string or a list,
//! and `["A=1"]` or `{A: 1}` maps. The serde attributes of the model name these.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A Compose duration ("1m30s", "10s", "500ms"), kept with its text for `config` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ComposeDuration {
    pub text: String,
    #[serde(skip)]
    pub value: Duration,
}

impl<'de> Deserialize<'de> for ComposeDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
        let value = parse_duration(&text).map_err(de::Error::custom)?;
        Ok(Self { text, value })
    }
}

/// A byte size ("512m", "1g", 1048576), kept with its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ByteSize {
    pub text: String,
    #[serde(skip)]
    pub bytes: u64,
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
        let bytes = parse_bytes(&text).map_err(de::Error::custom)?;
        Ok(Self { text, bytes })
    }
}

pub use crate::stack::units::{parse_bytes, parse_duration};

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

pub(super) fn yes() -> bool {
    true
}

pub(super) fn tcp() -> String {
    "tcp".to_string()
}

/// A scalar as text: numbers and booleans are written as YAML would.
pub(super) fn scalar_string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("expected a single value, found {}", kind(&other))),
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn parse_scalar<T: std::str::FromStr>(v: Value, what: &str) -> Result<T, String> {
    let text = scalar_string(v)?;
    text.trim()
        .parse()
        .map_err(|_| format!("expected {what}, found {text:?}"))
}

pub(super) fn parse_bool(v: Value) -> Result<bool, String> {
    match scalar_string(v)?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" | "" => Ok(false),
        other => Err(format!("expected true or false, found {other:?}")),
    }
}

pub(super) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    parse_bool(Value::deserialize(d)?).map_err(de::Error::custom)
}

pub(super) fn opt_boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    boolean(d).map(Some)
}

pub(super) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a whole number")
        .map(Some)
        .map_err(de::Error::custom)
}

pub(super) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a whole number")
        .map(Some)
        .map_err(de::Error::custom)
}

pub(super) fn float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a number")
        .map(Some)
        .map_err(de::Error::custom)
}

pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a port number (1-65535)").map_err(de::Error::custom)
}

pub(super) fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
    parse_published(&text).map_err(de::Error::custom)
}

pub(super) fn parse_published(text: &str) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("invalid published port {text:?} (expected 1-65535)"))
}

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ComposeDuration>, D::Error> {
    ComposeDuration::deserialize(d).map(Some)
}

pub(super) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteSize>, D::Error> {
    ByteSize::deserialize(d).map(Some)
}

pub(super) fn null_as_default_map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    let map: BTreeMap<String, Option<T>> = BTreeMap::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

pub(super) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect(),
        other => Ok(vec![scalar_string(other).map_err(de::Error::custom)?]),
    }
}

/// `["A=1", "B"]` or `{A: 1, B: null}`. A missing value stays None ("take it from the shell").
pub(super) fn key_values<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let mut out = BTreeMap::new();
    match Value::deserialize(d)? {
        Value::Sequence(items) => {
            for item in items {
                let text = scalar_string(item).map_err(de::Error::custom)?;
                match text.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(text, None),
                };
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = scalar_string(k).map_err(de::Error::custom)?;
                let value = match v {
                    Value::Null => None,
                    v => Some(scalar_string(v).map_err(de::Error::custom)?),
                };
                out.insert(key, value);
            }
        }
        Value::Null => {}
        other => {
            return Err(de::Error::custom(format!(
                "expected a list or a mapping, found {}",
                kind(&other)
            )));
        }
    }
    Ok(out)
}

pub(super) fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(key_values(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

pub(super) fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Some),
        other => {
            let text = scalar_string(other).map_err(de::Error::custom)?;
            shlex::split(&text)
                .map(Some)
                .ok_or_else(|| de::Error::custom(format!("cannot split command {text:?}: unbalanced quotes")))
        }
    }
}

pub(super) fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect(),
        other => Ok(vec![
            "CMD-SHELL".into(),
            scalar_string(other).map_err(de::Error::custom)?,
        ]),
    }
}
