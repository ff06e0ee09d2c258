//! Explanation documents as shown to the patient: the clinic's and vendor's contacts filled in.

use crate::ids::sha256_hex;
use crate::store::registry::{Document, Institution, Vendor};

/// The document body in Japanese with `{day_phone}` and the other placeholders filled in.
pub fn render_ja(doc: &Document, inst: &Institution, vendor: Option<&Vendor>) -> String {
    fill(&doc.body_ja, inst, vendor, false)
}

pub fn render_en(doc: &Document, inst: &Institution, vendor: Option<&Vendor>) -> String {
    fill(&doc.body_en, inst, vendor, true)
}

fn fill(body: &str, inst: &Institution, vendor: Option<&Vendor>, en: bool) -> String {
    let (vendor_phone, vendor_hours) = match vendor {
        Some(v) => (v.support_phone.as_str(), if en { &v.support_hours_en } else { &v.support_hours }),
        None => (inst.day_phone.as_str(), if en { &inst.day_hours_en } else { &inst.day_hours }),
    };
    body.replace("{day_phone}", &inst.day_phone)
        .replace("{night_phone}", &inst.night_phone)
        .replace("{vendor_phone}", vendor_phone)
        .replace("{day_hours}", if en { &inst.day_hours_en } else { &inst.day_hours })
        .replace("{night_hours}", if en { &inst.night_hours_en } else { &inst.night_hours })
        .replace("{vendor_hours}", vendor_hours)
}

/// One document's part of the consent text: its title and filled-in body.
pub fn section(doc: &Document, inst: &Institution, vendor: Option<&Vendor>) -> String {
    format!("【{}（第{}版）】\n{}\n", doc.title_ja, doc.version, render_ja(doc, inst, vendor))
}

/// The exact text a consent covers (all documents of a kit) and its SHA-256.
pub fn consent_text(sections: &[String]) -> (String, String) {
    let text = sections.join("\n");
    let sha = sha256_hex(&text);
    (text, sha)
}
