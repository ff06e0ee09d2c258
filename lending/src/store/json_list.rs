//! A list kept in one text column as a JSON array of strings, shown in JSON answers as a real
//! array (`#[serde(serialize_with = "json_list::as_array")]`), so an API client never parses a
//! string to get the steps of a wipe or a model's troubleshooting.

use serde::Serializer;

/// Serializes the column's text as the array it holds (empty if the text is not one: the lists
/// are written by the services, which store only arrays).
pub fn as_array<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let items: Vec<String> = serde_json::from_str(text).unwrap_or_default();
    s.collect_seq(items)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct Row {
        #[serde(serialize_with = "super::as_array")]
        steps: String,
    }

    #[test]
    fn a_list_column_is_an_array_in_json() {
        let row = Row { steps: r#"["電源を切る","初期化する"]"#.into() };
        assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"steps":["電源を切る","初期化する"]}"#);
        let broken = Row { steps: "not a list".into() };
        assert_eq!(serde_json::to_string(&broken).unwrap(), r#"{"steps":[]}"#);
    }
}
