//! A4 sheets for archival PDFs (PDF/A-2b, krilla): headings, wrapped paragraphs, label–value
//! rows, a drawn signature and seal boxes, with the Japanese font embedded (subset) and a footer
//! on every page. Laid out first, then written, so the footer can say "1 / 2". Nothing here reads
//! a clock: the same content gives the same bytes.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use krilla::color::luma;
use krilla::configure::{Configuration, Validator};
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::paint::{Fill, FillRule, LineCap, LineJoin, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::{Document, SerializeSettings};
use skrifa::instance::{LocationRef, Size};
use skrifa::MetadataProvider;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const FOOTER_Y: f32 = PAGE_H - 28.0;
const LABEL_W: f32 = 120.0;
const BODY: f32 = 10.5;
const SMALL: f32 = 8.5;

/// The embedded font, read once from `LENDING_PDF_FONT`.
pub struct SheetFont {
    bytes: Arc<Vec<u8>>,
    font: Font,
}

impl SheetFont {
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = Arc::new(bytes);
        skrifa::FontRef::from_index(&bytes, 0).map_err(|e| format!("{}: not a font ({e})", path.display()))?;
        let font =
            Font::new(Arc::clone(&bytes).into(), 0).ok_or_else(|| format!("{}: not a usable font", path.display()))?;
        Ok(Self { bytes, font })
    }

    /// `text` with every character the font has no glyph for shown as 〓 (the printers' mark for
    /// a missing character): PDF/A allows no missing glyph, and a rare kanji or an emoji in a
    /// note must not stop the document.
    fn printable(&self, text: &str) -> String {
        let Ok(f) = skrifa::FontRef::from_index(&self.bytes, 0) else { return text.to_owned() };
        let map = f.charmap();
        text.chars().map(|c| if c == ' ' || map.map(c).is_some_and(|g| g.to_u32() != 0) { c } else { '〓' }).collect()
    }

    /// Width of `text` at `size` points (characters the font lacks count as a full em).
    fn width(&self, text: &str, size: f32) -> f32 {
        let Ok(f) = skrifa::FontRef::from_index(&self.bytes, 0) else { return 0.0 };
        let map = f.charmap();
        let metrics = f.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars().map(|c| map.map(c).and_then(|g| metrics.advance_width(g)).unwrap_or(size)).sum()
    }
}

/// The font, loaded at first use and kept for the process (a failure too: after installing the
/// font, restart the server).
#[derive(Default)]
pub struct FontCell(OnceLock<Result<Arc<SheetFont>, String>>);

impl FontCell {
    pub fn get(&self, path: &Path) -> Result<Arc<SheetFont>, String> {
        self.0.get_or_init(|| SheetFont::load(path).map(Arc::new)).clone()
    }
}

enum Op {
    Text { x: f32, y: f32, size: f32, text: String },
    Line { x1: f32, y1: f32, x2: f32, y2: f32, width: f32 },
    Rect { x: f32, y: f32, w: f32, h: f32 },
    Strokes { paths: Vec<Vec<Seg>>, width: f32 },
}

#[derive(Clone, Copy)]
enum Seg {
    Move(f32, f32),
    Line(f32, f32),
    Quad(f32, f32, f32, f32),
    Cubic(f32, f32, f32, f32, f32, f32),
    Close,
}

/// A document being laid out.
pub struct Sheet {
    font: Arc<SheetFont>,
    pages: Vec<Vec<Op>>,
    y: f32,
    footer: String,
}

impl Sheet {
    /// A new document whose every page's footer starts with `footer` (clinic, record id).
    pub fn new(font: Arc<SheetFont>, footer: &str) -> Self {
        Self { font, pages: vec![Vec::new()], y: MARGIN, footer: footer.to_owned() }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Room for `h` points more on this page, else a new page.
    fn room(&mut self, h: f32) {
        if self.y + h > FOOTER_Y - 16.0 {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn text_at(&mut self, x: f32, size: f32, text: &str) {
        let y = self.y + size;
        let text = self.font.printable(text);
        self.ops().push(Op::Text { x, y, size, text });
    }

    /// The document's title, centred.
    pub fn title(&mut self, text: &str) {
        let size = 17.0;
        self.room(size * 2.0);
        let x = ((PAGE_W - self.font.width(text, size)) / 2.0).max(MARGIN);
        self.text_at(x, size, text);
        self.y += size * 2.0;
    }

    /// A section heading with a rule under it.
    pub fn heading(&mut self, text: &str) {
        let size = 12.5;
        self.room(size * 3.5);
        self.y += size * 0.6;
        self.text_at(MARGIN, size, text);
        self.y += size * 1.4;
        let y = self.y;
        self.ops().push(Op::Line { x1: MARGIN, y1: y, x2: PAGE_W - MARGIN, y2: y, width: 0.6 });
        self.y += size * 0.5;
    }

    /// Text wrapped to the page width (line breaks kept).
    pub fn paragraph(&mut self, text: &str) {
        self.wrapped(MARGIN, PAGE_W - MARGIN, BODY, text);
        self.y += BODY * 0.5;
    }

    /// Small print (notes, hashes).
    pub fn note(&mut self, text: &str) {
        self.wrapped(MARGIN, PAGE_W - MARGIN, SMALL, text);
        self.y += SMALL * 0.4;
    }

    /// A label and its value, the value wrapped in its column.
    pub fn field(&mut self, label: &str, value: &str) {
        let lines = self.wrap(value, PAGE_W - MARGIN - (MARGIN + LABEL_W), BODY);
        let line_h = BODY * 1.55;
        self.room(line_h * lines.len().min(3) as f32);
        self.text_at(MARGIN, BODY, label);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                self.room(line_h);
            }
            self.text_at(MARGIN + LABEL_W, BODY, line);
            self.y += line_h;
        }
    }

    fn wrapped(&mut self, left: f32, right: f32, size: f32, text: &str) {
        let line_h = size * 1.6;
        for line in self.wrap(text, right - left, size) {
            self.room(line_h);
            self.text_at(left, size, &line);
            self.y += line_h;
        }
    }

    /// Lines of at most `width` points: Japanese breaks between any two characters, a Latin word
    /// is kept whole when the line has a space to break at.
    fn wrap(&self, text: &str, width: f32, size: f32) -> Vec<String> {
        let mut out = Vec::new();
        for para in text.replace("\r\n", "\n").split('\n') {
            let mut line = String::new();
            for c in para.chars() {
                let mut next = line.clone();
                next.push(c);
                if self.font.width(&next, size) <= width || line.is_empty() {
                    line = next;
                    continue;
                }
                // Break at the last space when the overflow is inside a Latin word.
                let cut = if c.is_ascii_alphanumeric() { line.rfind(' ').filter(|&i| i > 0) } else { None };
                match cut {
                    Some(i) => {
                        let rest = line[i + 1..].to_owned();
                        out.push(line[..i].to_owned());
                        line = rest;
                        line.push(c);
                    }
                    None => {
                        out.push(std::mem::take(&mut line));
                        if c != ' ' {
                            line.push(c);
                        }
                    }
                }
            }
            out.push(line);
        }
        out
    }

    /// Vertical space.
    pub fn gap(&mut self, h: f32) {
        self.y += h;
    }

    /// A drawn signature (SVG) in a framed box `h` points high, scaled to fit; `false` if the SVG
    /// could not be read (the box stays, empty, so the gap is visible).
    pub fn signature(&mut self, svg: &str, h: f32) -> bool {
        let w = (PAGE_W - 2.0 * MARGIN) * 0.6;
        self.room(h + 8.0);
        let (x0, y0) = (MARGIN + LABEL_W, self.y);
        self.ops().push(Op::Rect { x: x0, y: y0, w, h });
        let drawn = match signature_paths(svg, w - 12.0, h - 12.0) {
            Some((paths, width)) => {
                let paths =
                    paths.into_iter().map(|p| p.into_iter().map(|s| offset(s, x0 + 6.0, y0 + 6.0)).collect()).collect();
                self.ops().push(Op::Strokes { paths, width });
                true
            }
            None => false,
        };
        self.y += h + 8.0;
        drawn
    }

    /// 作成・確認・承認 seal boxes at the right, for the people who file the document.
    pub fn seal_boxes(&mut self, labels: &[&str]) {
        let (bw, bh, head) = (62.0, 62.0, 16.0);
        self.room(bh + head + 10.0);
        let mut x = PAGE_W - MARGIN - bw * labels.len() as f32;
        let y = self.y;
        for label in labels {
            self.ops().push(Op::Rect { x, y, w: bw, h: head + bh });
            self.ops().push(Op::Line { x1: x, y1: y + head, x2: x + bw, y2: y + head, width: 0.6 });
            let tx = x + (bw - self.font.width(label, SMALL)) / 2.0;
            let text = self.font.printable(label);
            self.ops().push(Op::Text { x: tx, y: y + SMALL + 3.5, size: SMALL, text });
            x += bw;
        }
        self.y += bh + head + 10.0;
    }

    /// The PDF/A-2b bytes. `title` and `created` go in the metadata (the record's own time).
    pub fn finish(self, title: &str, created: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, String> {
        let settings = SerializeSettings {
            configuration: Configuration::new_with_validator(Validator::A2_B),
            enable_tagging: false,
            ..SerializeSettings::default()
        };
        let mut doc = Document::new_with(settings);
        let total = self.pages.len();
        for (n, ops) in self.pages.iter().enumerate() {
            let mut page = doc.start_page();
            let mut s = page.surface();
            s.set_fill(Some(Fill {
                paint: luma::Color::black().into(),
                opacity: NormalizedF32::ONE,
                rule: FillRule::NonZero,
            }));
            for op in ops {
                draw(&mut s, &self.font.font, op);
            }
            let footer = self.font.printable(&format!("{}　{} / {total}", self.footer, n + 1));
            draw(&mut s, &self.font.font, &Op::Text { x: MARGIN, y: FOOTER_Y, size: SMALL, text: footer });
            s.finish();
            page.finish();
        }
        let jst = created.with_timezone(&chrono_tz::Asia::Tokyo);
        use chrono::{Datelike, Timelike};
        let date = DateTime::new(u16::try_from(jst.year()).unwrap_or(2000))
            .month(u8::try_from(jst.month()).unwrap_or(1))
            .day(u8::try_from(jst.day()).unwrap_or(1))
            .hour(u8::try_from(jst.hour()).unwrap_or(0))
            .minute(u8::try_from(jst.minute()).unwrap_or(0))
            .second(u8::try_from(jst.second()).unwrap_or(0))
            .utc_offset_hour(9)
            .utc_offset_minute(0);
        doc.set_metadata(
            Metadata::new()
                .title(title.to_owned())
                .language("ja".to_owned())
                .creator("lending (device-lending tracker)".to_owned())
                .creation_date(date),
        );
        doc.finish().map_err(|e| format!("PDF: {e:?}"))
    }
}

fn offset(s: Seg, dx: f32, dy: f32) -> Seg {
    match s {
        Seg::Move(x, y) => Seg::Move(x + dx, y + dy),
        Seg::Line(x, y) => Seg::Line(x + dx, y + dy),
        Seg::Quad(a, b, x, y) => Seg::Quad(a + dx, b + dy, x + dx, y + dy),
        Seg::Cubic(a, b, c, d, x, y) => Seg::Cubic(a + dx, b + dy, c + dx, d + dy, x + dx, y + dy),
        Seg::Close => Seg::Close,
    }
}

fn draw(s: &mut krilla::surface::Surface<'_>, font: &Font, op: &Op) {
    let stroke = |width: f32| Stroke {
        paint: luma::Color::black().into(),
        width,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    };
    match op {
        Op::Text { x, y, size, text } => {
            s.draw_text(Point::from_xy(*x, *y), font.clone(), *size, text, false, TextDirection::Auto);
        }
        Op::Line { x1, y1, x2, y2, width } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x1, *y1);
            pb.line_to(*x2, *y2);
            stroke_path(s, pb, stroke(*width));
        }
        Op::Rect { x, y, w, h } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x, *y);
            pb.line_to(x + w, *y);
            pb.line_to(x + w, y + h);
            pb.line_to(*x, y + h);
            pb.close();
            stroke_path(s, pb, stroke(0.6));
        }
        Op::Strokes { paths, width } => {
            for p in paths {
                let mut pb = PathBuilder::new();
                for seg in p {
                    match *seg {
                        Seg::Move(x, y) => pb.move_to(x, y),
                        Seg::Line(x, y) => pb.line_to(x, y),
                        Seg::Quad(a, b, x, y) => pb.quad_to(a, b, x, y),
                        Seg::Cubic(a, b, c, d, x, y) => pb.cubic_to(a, b, c, d, x, y),
                        Seg::Close => pb.close(),
                    }
                }
                stroke_path(s, pb, stroke(*width));
            }
        }
    }
}

fn stroke_path(s: &mut krilla::surface::Surface<'_>, pb: PathBuilder, stroke: Stroke) {
    if let Some(path) = pb.finish() {
        let fill = s.get_fill().cloned();
        s.set_fill(None);
        s.set_stroke(Some(stroke));
        s.draw_path(&path);
        s.set_stroke(None);
        s.set_fill(fill);
    }
}

/// The signature's strokes scaled into a `w` × `h` box (aspect kept), with their pen width.
fn signature_paths(svg: &str, w: f32, h: f32) -> Option<(Vec<Vec<Seg>>, f32)> {
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).ok()?;
    let size = tree.size();
    let scale = (w / size.width()).min(h / size.height());
    let mut paths = Vec::new();
    let mut pen = 1.5_f32;
    collect(tree.root(), scale, &mut paths, &mut pen);
    (!paths.is_empty()).then_some((paths, pen))
}

fn collect(group: &usvg::Group, scale: f32, out: &mut Vec<Vec<Seg>>, pen: &mut f32) {
    for node in group.children() {
        match node {
            usvg::Node::Group(g) => collect(g, scale, out, pen),
            usvg::Node::Path(p) => {
                let t = p.abs_transform();
                let pt = |q: usvg::tiny_skia_path::Point| {
                    let (mut x, mut y) = (q.x, q.y);
                    let (tx, ty) = (t.sx * x + t.kx * y + t.tx, t.ky * x + t.sy * y + t.ty);
                    x = tx * scale;
                    y = ty * scale;
                    (x, y)
                };
                if let Some(s) = p.stroke() {
                    *pen = (s.width().get() * scale * t.sx.abs().max(t.sy.abs())).clamp(0.6, 3.0);
                }
                let mut segs = Vec::new();
                for seg in p.data().segments() {
                    use usvg::tiny_skia_path::PathSegment as S;
                    segs.push(match seg {
                        S::MoveTo(a) => {
                            let (x, y) = pt(a);
                            Seg::Move(x, y)
                        }
                        S::LineTo(a) => {
                            let (x, y) = pt(a);
                            Seg::Line(x, y)
                        }
                        S::QuadTo(a, b) => {
                            let ((ax, ay), (x, y)) = (pt(a), pt(b));
                            Seg::Quad(ax, ay, x, y)
                        }
                        S::CubicTo(a, b, c) => {
                            let ((ax, ay), (bx, by), (x, y)) = (pt(a), pt(b), pt(c));
                            Seg::Cubic(ax, ay, bx, by, x, y)
                        }
                        S::Close => Seg::Close,
                    });
                }
                out.push(segs);
            }
            usvg::Node::Image(_) | usvg::Node::Text(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> Arc<SheetFont> {
        Arc::new(
            SheetFont::load(Path::new(lending::config::DEFAULT_PDF_FONT)).expect("IPAGothic (fonts-ipafont-gothic)"),
        )
    }

    #[test]
    fn long_texts_wrap_onto_more_pages_and_missing_glyphs_do_not_stop_the_pdf() {
        let f = font();
        let s = Sheet::new(Arc::clone(&f), "");
        for line in s.wrap("ご使用中に機器が熱くなった場合は、すぐに使用を中止して当院へご連絡ください。 Bluetooth pairing must be removed before return.", 200.0, BODY) {
            assert!(f.width(&line, BODY) <= 200.0 + 0.01, "{line}");
        }
        assert!(s.wrap("pairing removed", 60.0, BODY).iter().all(|l| !l.starts_with(' ')));
        assert_eq!(f.printable("山田🙂太郎"), "山田〓太郎");
        let mut s = Sheet::new(f, "テスト");
        s.title("長い説明書");
        s.paragraph(&"説明の本文です。".repeat(400));
        s.field("署名", "");
        assert!(s.signature(lending::demo::DEMO_SIGNATURE, 100.0));
        s.field("備考", "🙂 絵文字");
        let created = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+09:00").expect("time").to_utc();
        let pages = s.pages.len();
        assert!(pages >= 2, "{pages} pages");
        let bytes = s.finish("長い説明書", created).expect("a PDF/A-2b");
        assert!(bytes.starts_with(b"%PDF-1.7"));
    }

    #[test]
    fn a_signature_svg_becomes_strokes_inside_its_box() {
        let svg = lending::demo::DEMO_SIGNATURE;
        let (paths, pen) = signature_paths(svg, 300.0, 100.0).expect("strokes");
        assert!(!paths.is_empty() && pen > 0.0);
        for seg in paths.iter().flatten() {
            if let Seg::Move(x, y) | Seg::Line(x, y) = *seg {
                assert!((0.0..=300.5).contains(&x) && (0.0..=100.5).contains(&y), "{x},{y}");
            }
        }
        assert!(signature_paths("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 300.0, 100.0).is_none());
        assert!(signature_paths("not svg", 300.0, 100.0).is_none());
    }
}
