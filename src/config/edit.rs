//! Changes the gateway makes to a configuration document itself (the admin API's cache
//! generation bump), keeping the document's own member order.

use super::json::Json;

impl Json {
    /// Compact JSON text, members in document order.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// The document with `settings.cache_generation` raised by one (from its default of 1 when
/// absent), and the new generation.
pub fn bump_cache_generation(text: &str) -> Result<(String, u64), String> {
    let mut doc = Json::parse(text)?;
    let Json::Object(root) = &mut doc else {
        return Err("the document is not a JSON object".into());
    };
    if !root.iter().any(|(k, _)| k == "settings") {
        root.push(("settings".into(), Json::Object(Vec::new())));
    }
    let Some((_, Json::Object(settings))) = root.iter_mut().find(|(k, _)| k == "settings") else {
        return Err("settings is not an object".into());
    };
    let current = match settings.iter().find(|(k, _)| k == "cache_generation") {
        None => 1,
        Some((_, Json::Number(n))) => n
            .as_u64()
            .ok_or("settings.cache_generation is not an integer")?,
        Some(_) => return Err("settings.cache_generation is not an integer".into()),
    };
    let next = current
        .checked_add(1)
        .ok_or("settings.cache_generation cannot grow")?;
    let value = Json::Number(next.into());
    match settings.iter_mut().find(|(k, _)| k == "cache_generation") {
        Some((_, v)) => *v = value,
        None => settings.push(("cache_generation".into(), value)),
    }
    Ok((doc.to_text(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_an_existing_generation_keeping_member_order() {
        let (text, n) = bump_cache_generation(
            r#"{"version":1,"settings":{"reload_s":5,"cache_generation":7},"routes":[]}"#,
        )
        .unwrap();
        assert_eq!(n, 8);
        assert_eq!(
            text,
            r#"{"version":1,"settings":{"reload_s":5,"cache_generation":8},"routes":[]}"#
        );
    }

    #[test]
    fn adds_the_setting_or_the_settings_object_when_absent() {
        let (text, n) = bump_cache_generation(r#"{"version":1,"settings":{}}"#).unwrap();
        assert_eq!(
            (text.as_str(), n),
            (r#"{"version":1,"settings":{"cache_generation":2}}"#, 2)
        );
        let (text, n) = bump_cache_generation(r#"{"version":1,"routes":[{"id":"a\"b"}]}"#).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            text,
            r#"{"version":1,"routes":[{"id":"a\"b"}],"settings":{"cache_generation":2}}"#
        );
    }

    #[test]
    fn numbers_it_does_not_touch_keep_their_value() {
        // A 17-digit decimal that serde_json's default float parser reads one unit off.
        let typed = "28.14378580317623602";
        let doc = format!(r#"{{"version":1,"routes":[{{"canary":{{"percent":{typed}}}}}]}}"#);
        let (text, _) = bump_cache_generation(&doc).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kept = value["routes"][0]["canary"]["percent"].as_f64().unwrap();
        assert_eq!(
            kept.to_bits(),
            typed.parse::<f64>().unwrap().to_bits(),
            "{text}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit() {
        assert!(bump_cache_generation("[]").is_err());
        assert!(bump_cache_generation(r#"{"settings":[]}"#).is_err());
        assert!(bump_cache_generation(r#"{"settings":{"cache_generation":"1"}}"#).is_err());
        assert!(bump_cache_generation("{").is_err());
    }
}
