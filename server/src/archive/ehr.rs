//! The export for the EHR: one ZIP holding, in a folder named by the 院内ID, each loan's PDFs
//! (`{院内ID}_{YYYYMMDD}_{kind}_{record}.pdf`, the date being the record's own, in Japan) and
//! `{院内ID}_fhir-bundle.json`. Entries are stored with the record's time, so the same records give
//! the same bytes.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use lending::service::archive::EhrRecords;

use super::documents;
use super::fhir::{self, Filed};
use super::pdf::SheetFont;

/// The kinds of document, as file names say them.
const COPY: &str = "consent-copy";
const RECEIPT: &str = "return-receipt";
const CERTIFICATE: &str = "sanitization-certificate";

/// A file name part from a 院内ID: letters, digits and `-` kept, anything else `_`.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

fn day(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y%m%d").to_string()
}

fn file_name(number: &str, at: DateTime<Utc>, kind: &str, record: &str) -> String {
    let short: String = record.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    format!("{n}/{n}_{}_{kind}_{short}.pdf", day(at), n = safe(number))
}

/// The ZIP's bytes and the Bundle it holds.
pub struct Export {
    pub zip: Vec<u8>,
    pub bundle: serde_json::Value,
    /// The suggested download name.
    pub name: String,
}

/// Makes every PDF, the Bundle, and the ZIP. `base` is the staff service's URL.
pub fn export(font: &Arc<SheetFont>, base: &str, r: &EhrRecords) -> Result<Export, String> {
    let number = &r.patient.number;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let (mut copies, mut others) = (Vec::new(), Vec::new());
    for loan in &r.loans {
        let c = &loan.copy;
        let pdf = documents::patient_copy(Arc::clone(font), c)?;
        let name = file_name(number, c.consent.signed_at, COPY, &c.loan.id);
        let url = format!("{base}/api/v1/loans/{}/copy.pdf", c.loan.id);
        copies.push(Filed::new(name.clone(), url, "説明と同意書（控え）", &c.loan.id, c.consent.signed_at, &pdf));
        files.push((name, pdf));
        if let Some(receipt) = &loan.receipt {
            let pdf = documents::return_receipt(Arc::clone(font), receipt)?;
            let at = receipt.returns.iter().map(|l| l.ret.returned_at).max().unwrap_or(c.loan.lent_at);
            let name = file_name(number, at, RECEIPT, &c.loan.id);
            let url = format!("{base}/api/v1/loans/{}/returns/receipt.pdf", c.loan.id);
            others.push(Filed::new(name.clone(), url, "機器返却の受領書", &c.loan.id, at, &pdf));
            files.push((name, pdf));
        }
        for cert in &loan.certificates {
            let pdf = documents::certificate(Arc::clone(font), cert)?;
            let at = cert.wipe.verified_at.unwrap_or(cert.wipe.performed_at);
            let name = file_name(number, at, CERTIFICATE, &cert.wipe.id);
            let url = format!("{base}/api/v1/wipes/{}/certificate.pdf", cert.wipe.id);
            others.push(Filed::new(name.clone(), url, "データ消去証明書", &cert.wipe.id, at, &pdf));
            files.push((name, pdf));
        }
    }
    let bundle = fhir::bundle(base, r, &copies, &others);
    let json = serde_json::to_vec_pretty(&bundle).map_err(|e| e.to_string())?;
    files.push((format!("{n}/{n}_fhir-bundle.json", n = safe(number)), json));
    let newest = r
        .loans
        .iter()
        .flat_map(|l| {
            std::iter::once(l.copy.consent.signed_at)
                .chain(l.receipt.iter().flat_map(|x| x.returns.iter().map(|y| y.ret.returned_at)))
                .chain(l.certificates.iter().map(|c| c.wipe.verified_at.unwrap_or(c.wipe.performed_at)))
        })
        .max();
    let zip = write_zip(&files, newest)?;
    let name = format!("{}_ehr-export.zip", safe(number));
    Ok(Export { zip, bundle, name })
}

fn zip_time(t: Option<DateTime<Utc>>) -> zip::DateTime {
    let jst = t.map(|t| t.with_timezone(&chrono_tz::Asia::Tokyo));
    jst.and_then(|t| {
        zip::DateTime::from_date_and_time(
            u16::try_from(t.year()).ok()?,
            u8::try_from(t.month()).ok()?,
            u8::try_from(t.day()).ok()?,
            u8::try_from(t.hour()).ok()?,
            u8::try_from(t.minute()).ok()?,
            u8::try_from(t.second()).ok()?,
        )
        .ok()
    })
    .unwrap_or_default()
}

fn write_zip(files: &[(String, Vec<u8>)], at: Option<DateTime<Utc>>) -> Result<Vec<u8>, String> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip_time(at))
        .unix_permissions(0o644);
    for (name, bytes) in files {
        w.start_file(name.as_str(), options).map_err(|e| e.to_string())?;
        w.write_all(bytes).map_err(|e| e.to_string())?;
    }
    Ok(w.finish().map_err(|e| e.to_string())?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_patient_number_the_japan_date_and_the_kind() {
        let at = "2026-11-30T16:10:00Z".parse().expect("time"); // 2026-12-01 01:10 in Japan
        assert_eq!(file_name("00123", at, COPY, "8f0c2a1e-1234"), "00123/00123_20261201_consent-copy_8f0c2a1e.pdf");
        assert_eq!(safe("A-12/3 4"), "A-12_3_4");
    }
}
