//! An HL7 FHIR R4 (4.0.1) Bundle of type `collection` for the EHR: the `Patient` (identifier =
//! 院内ID), each lent `Device`, a `DeviceUseStatement` per device per loan (lent → returned), the
//! `Consent` (performer: the patient, or a `RelatedPerson` who signed for them) whose
//! `sourceAttachment` is the patient copy's PDF with its hash, and a `DocumentReference` for each
//! PDF. JP Core has no profiles for device loans yet, so these are the base R4 resources.
//!
//! R4's `Attachment.hash` is the SHA-1 of the data (base64); the SHA-256 the rest of the product
//! uses is carried beside it in an extension.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lending::service::archive::{EhrRecords, KitDevice, PatientCopy};
use serde_json::{json, Value};
use sha1::Digest as _;

/// A PDF in the export: what the Bundle says of it.
#[derive(Debug, Clone)]
pub struct Filed {
    /// File name inside the export.
    pub name: String,
    /// Where the staff API serves the same bytes (a token is needed).
    pub url: String,
    pub title: String,
    /// The record it was made from (a loan or a wipe id) and when that record was made.
    pub record_id: String,
    pub date: DateTime<Utc>,
    pub bytes_len: usize,
    pub sha1_b64: String,
    pub sha256_hex: String,
}

impl Filed {
    pub fn new(name: String, url: String, title: &str, record_id: &str, date: DateTime<Utc>, bytes: &[u8]) -> Self {
        Self {
            name,
            url,
            title: title.to_owned(),
            record_id: record_id.to_owned(),
            date,
            bytes_len: bytes.len(),
            sha1_b64: base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(bytes)),
            sha256_hex: hex(&sha2::Sha256::digest(bytes)),
        }
    }

    fn attachment(&self, base: &str) -> Value {
        json!({
            "contentType": "application/pdf",
            "language": "ja",
            "url": self.url,
            "title": self.title,
            "size": self.bytes_len,
            "hash": self.sha1_b64,
            "creation": instant(self.date),
            "extension": [{ "url": format!("{base}/fhir/StructureDefinition/attachment-sha256"), "valueString": self.sha256_hex }],
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A moment as FHIR writes it, in Japan time.
fn instant(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%dT%H:%M:%S+09:00").to_string()
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

/// The Bundle. `base` is the staff service's URL (the clinic's own namespace for identifiers);
/// `copies` and `others` are the PDFs filed with it: the patient copy of each loan (by loan id)
/// and every other document.
pub fn bundle(base: &str, r: &EhrRecords, copies: &[Filed], others: &[Filed]) -> Value {
    let mut entries = vec![patient(base, r)];
    let mut devices_seen = std::collections::BTreeSet::new();
    for loan in &r.loans {
        let c = &loan.copy;
        for d in &c.devices {
            if devices_seen.insert(d.device.id.clone()) {
                entries.push(device(base, d));
            }
            entries.push(use_statement(c, d));
        }
        let copy = copies.iter().find(|f| f.record_id == c.loan.id);
        if !is_self(&c.consent.relationship) {
            entries.push(related_person(c));
        }
        entries.push(consent(base, c, copy));
    }
    for f in copies.iter().chain(others) {
        entries.push(document_reference(base, &r.patient.id, f));
    }
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|res| {
            let url = format!(
                "{base}/fhir/{}/{}",
                res["resourceType"].as_str().unwrap_or(""),
                res["id"].as_str().unwrap_or("")
            );
            json!({ "fullUrl": url, "resource": res })
        })
        .collect();
    let newest = r.loans.iter().map(|l| l.copy.consent.signed_at).max();
    let mut b = json!({
        "resourceType": "Bundle",
        "id": format!("ehr-{}", r.patient.id),
        "type": "collection",
        "entry": entry,
    });
    if let Some(t) = newest {
        b["timestamp"] = json!(instant(t));
    }
    b
}

fn is_self(relationship: &str) -> bool {
    relationship == "self"
}

fn patient(base: &str, r: &EhrRecords) -> Value {
    let p = &r.patient;
    let mut names = vec![json!({ "use": "official", "text": p.name })];
    if !p.kana.is_empty() {
        // JP Core writes the kana reading as a second name marked SYL (syllabic).
        names.push(json!({
            "use": "official",
            "text": p.kana,
            "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation", "valueCode": "SYL" }],
        }));
    }
    let mut res = json!({
        "resourceType": "Patient",
        "id": p.id,
        "identifier": [{
            "use": "usual",
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }], "text": "院内ID" },
            "system": format!("{base}/patients"),
            "value": p.number,
        }],
        "name": names,
    });
    if let Some(d) = p.birth_date {
        res["birthDate"] = json!(d.format("%Y-%m-%d").to_string());
    }
    res
}

fn device(base: &str, d: &KitDevice) -> Value {
    json!({
        "resourceType": "Device",
        "id": d.device.id,
        "identifier": [{ "system": format!("{base}/devices"), "value": d.device.asset_tag }],
        "status": "active",
        "manufacturer": d.model.manufacturer,
        "serialNumber": d.device.serial,
        "deviceName": [{ "name": d.model.model_name, "type": "model-name" }],
        "modelNumber": d.model.model_name,
    })
}

fn use_statement(c: &PatientCopy, d: &KitDevice) -> Value {
    let part = c.kit.iter().find(|k| k.device_id == d.device.id);
    let ended = part.and_then(|k| k.ended_at);
    let status = match (c.voided_at, part.and_then(|k| k.end_reason.as_deref())) {
        (Some(_), _) => "entered-in-error",
        (None, None) => "active",
        (None, Some("returned")) => "completed",
        (None, Some(_)) => "stopped",
    };
    let mut period = json!({ "start": instant(c.loan.lent_at) });
    if let Some(t) = ended {
        period["end"] = json!(instant(t));
    }
    json!({
        "resourceType": "DeviceUseStatement",
        "id": format!("{}-{}", c.loan.id, d.device.id).chars().take(64).collect::<String>(),
        "status": status,
        "subject": reference("Patient", &c.patient.id),
        "device": reference("Device", &d.device.id),
        "timingPeriod": period,
        "recordedOn": instant(c.loan.lent_at),
        "note": [{ "text": format!("貸出番号 {}、返却予定日 {}", c.loan.id, c.loan.due_on.format("%Y-%m-%d")) }],
    })
}

fn related_person_id(c: &PatientCopy) -> String {
    format!("signer-{}", c.consent.id).chars().take(64).collect()
}

fn related_person(c: &PatientCopy) -> Value {
    let (code, display) = match c.consent.relationship.as_str() {
        "family" => ("FAMMEMB", "family member"),
        _ => ("GUARD", "guardian"),
    };
    json!({
        "resourceType": "RelatedPerson",
        "id": related_person_id(c),
        "patient": reference("Patient", &c.patient.id),
        "relationship": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": code, "display": display }] }],
        "name": [{ "text": c.consent.signer_name }],
    })
}

fn consent(base: &str, c: &PatientCopy, copy: Option<&Filed>) -> Value {
    let status = if c.voided_at.is_some() {
        "entered-in-error"
    } else if c.withdrawn_at.is_some() {
        "inactive"
    } else {
        "active"
    };
    let performer = if is_self(&c.consent.relationship) {
        reference("Patient", &c.patient.id)
    } else {
        reference("RelatedPerson", &related_person_id(c))
    };
    let mut res = json!({
        "resourceType": "Consent",
        "id": c.consent.id,
        "status": status,
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }], "text": "医療機器の貸出に関する説明と同意" }],
        "patient": reference("Patient", &c.patient.id),
        "dateTime": instant(c.consent.signed_at),
        "performer": [performer],
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": {
            "type": "permit",
            "period": { "start": instant(c.loan.lent_at) },
            "data": c.devices.iter().map(|d| json!({ "meaning": "instance", "reference": reference("Device", &d.device.id) })).collect::<Vec<_>>(),
        },
    });
    if let Some(f) = copy {
        res["sourceAttachment"] = f.attachment(base);
    }
    res
}

fn document_reference(base: &str, patient_id: &str, f: &Filed) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": format!("doc-{}", f.sha256_hex.get(..32).unwrap_or(&f.sha256_hex)),
        "status": "current",
        "type": { "text": f.title },
        "subject": reference("Patient", patient_id),
        "date": instant(f.date),
        "description": f.name,
        "content": [{ "attachment": f.attachment(base) }],
    })
}
