//! Drawn signatures are stored and shown as SVG. The staff pages build the SVG themselves from
//! stroke coordinates; the API takes SVG text, so it must be a drawing and nothing else: only
//! the elements and attributes of strokes, at least one non-empty stroke, no script, no event
//! handler, no link, no entity, no text.

/// Elements a drawn signature may use.
const ELEMENTS: [&str; 5] = ["svg", "g", "path", "polyline", "line"];
/// Attributes they may carry (values without `url(`, `javascript:` or `&`).
const ATTRIBUTES: [&str; 16] = [
    "xmlns",
    "viewbox",
    "width",
    "height",
    "d",
    "points",
    "x1",
    "y1",
    "x2",
    "y2",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-linecap",
    "stroke-linejoin",
    "transform",
];

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an SVG, too large, or no stroke in it.
    Empty,
    /// Something other than a drawing (script, handler, link, text, unknown element).
    NotADrawing,
}

pub const MAX_BYTES: usize = 200_000;

/// Checks a signature SVG from the API.
pub fn check(svg: &str) -> Result<(), Refusal> {
    let svg = svg.trim();
    if !svg.starts_with("<svg") || svg.len() > MAX_BYTES {
        return Err(Refusal::Empty);
    }
    let mut strokes = 0;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        if !rest[..open].trim().is_empty() {
            return Err(Refusal::NotADrawing); // text outside tags
        }
        let close = rest[open..].find('>').ok_or(Refusal::NotADrawing)? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if !ELEMENTS.contains(&name.trim().to_ascii_lowercase().as_str()) {
                return Err(Refusal::NotADrawing);
            }
            continue;
        }
        let tag = tag.strip_suffix('/').unwrap_or(tag);
        let (name, mut attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        let name = name.to_ascii_lowercase();
        if !ELEMENTS.contains(&name.as_str()) {
            return Err(Refusal::NotADrawing);
        }
        while !attrs.trim().is_empty() {
            let (key, after) = attrs.trim_start().split_once('=').ok_or(Refusal::NotADrawing)?;
            let after = after.trim_start();
            let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'').ok_or(Refusal::NotADrawing)?;
            let (value, tail) = after[1..].split_once(quote).ok_or(Refusal::NotADrawing)?;
            let key = key.trim().to_ascii_lowercase();
            let lower = value.to_ascii_lowercase();
            if !ATTRIBUTES.contains(&key.as_str())
                || lower.contains("url(")
                || lower.contains("script:")
                || value.contains('&')
            {
                return Err(Refusal::NotADrawing);
            }
            if matches!(key.as_str(), "d" | "points" | "x2") && !value.trim().is_empty() {
                strokes += 1;
            }
            attrs = tail;
        }
    }
    if !rest.trim().is_empty() {
        return Err(Refusal::NotADrawing);
    }
    if strokes == 0 {
        return Err(Refusal::Empty);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, Refusal};

    #[test]
    fn only_drawings_with_a_stroke_pass() {
        assert_eq!(check(crate::demo::DEMO_SIGNATURE), Ok(()));
        assert_eq!(
            check(r#"<svg xmlns="http://www.w3.org/2000/svg"><g fill="none"><path d="M1 1 L5 5"/></g></svg>"#),
            Ok(())
        );
        assert_eq!(check("<svg></svg>"), Err(Refusal::Empty));
        assert_eq!(check(r#"<svg><path d=""/></svg>"#), Err(Refusal::Empty));
        assert_eq!(check("not svg"), Err(Refusal::Empty));
        for evil in [
            r#"<svg><script>alert(1)</script><path d="M1 1"/></svg>"#,
            r#"<svg onload="alert(1)"><path d="M1 1"/></svg>"#,
            r#"<svg><path d="M1 1" onclick='x'/></svg>"#,
            r#"<svg><a href="javascript:alert(1)"><path d="M1 1"/></a></svg>"#,
            r#"<svg><path d="M1 1" fill="url(https://evil.example/x)"/></svg>"#,
            r#"<svg><foreignObject><p>x</p></foreignObject><path d="M1 1"/></svg>"#,
            r#"<svg><path d="M1 1"/>text</svg>"#,
            r#"<svg><!ENTITY x "y"><path d="M1 1"/></svg>"#,
        ] {
            assert_eq!(check(evil), Err(Refusal::NotADrawing), "{evil}");
        }
    }
}
