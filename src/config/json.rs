//! A JSON value that keeps object keys in document order and refuses duplicate keys.
//!
//! `serde_json::Value` silently keeps the last of two equal keys, so a document with two
//! `"routes"` members would be half ignored. Configuration is the gateway's security boundary,
//! so such a document is an error instead.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value with ordered, unique object keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a document; the error carries serde_json's line and column.
    pub fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The JSON type name used in error messages ("expected a string, found an array").
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        // Small objects are checked by a scan; past `SCANNED_MEMBERS` a set takes over, so a
        // document of one huge object (a hostile push, or a `wrangler kv key put`) is read in
        // linear time rather than quadratic.
        let mut seen: Option<std::collections::HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => members.iter().any(|(k, _)| *k == key),
            };
            if duplicate {
                // Quoted as a path shows a name: a credential pasted as one stays out of it.
                let shown = crate::observe::shown::shown_name(&key);
                return Err(de::Error::custom(format!("duplicate key \"{shown}\"")));
            }
            if seen.is_none() && members.len() == SCANNED_MEMBERS {
                let mut set: std::collections::HashSet<String> =
                    members.iter().map(|(k, _)| k.clone()).collect();
                set.insert(key.clone());
                seen = Some(set);
            }
            let value = map.next_value()?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Members an object's duplicate check scans before it keeps a set of the names.
const SCANNED_MEMBERS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_types() {
        let v = Json::parse(r#"{"b":1,"a":[true,null,"x",1.5]}"#).unwrap();
        let Json::Object(m) = v else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let err = Json::parse(r#"{"a":{"x":1,"x":2}}"#).unwrap_err();
        assert!(err.contains("duplicate key \"x\""), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn large_objects_are_checked_for_duplicates_too() {
        let members = |n: usize| (0..n).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>();
        // Many distinct members: accepted (and read in linear time).
        let many = format!("{{{}}}", members(20_000).join(","));
        let Json::Object(m) = Json::parse(&many).unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 20_000);
        // A duplicate of a member read before the set took over, and of one read after it.
        for dup in ["k3", "k19999", "k16", "k15"] {
            let mut list = members(20_000);
            list.push(format!("\"{dup}\":0"));
            let err = Json::parse(&format!("{{{}}}", list.join(","))).unwrap_err();
            assert!(err.contains(&format!("duplicate key \"{dup}\"")), "{err}");
        }
        // At the switch itself.
        let mut list = members(16);
        list.push("\"k0\":0".into());
        assert!(Json::parse(&format!("{{{}}}", list.join(","))).is_err());
    }

    #[test]
    fn a_duplicate_key_is_quoted_without_a_pasted_credential() {
        let err =
            Json::parse(r#"{"Authorization: Bearer s3cr3t":1,"Authorization: Bearer s3cr3t":2}"#)
                .unwrap_err();
        assert!(err.contains("duplicate key \"Authorization…\""), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = Json::parse("{\n  \"a\": ,\n}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
