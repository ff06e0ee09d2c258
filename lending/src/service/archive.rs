//! The records an archival document is made of: the patient copy of a consent, the return
//! receipt of a loan, the certificate of sanitization of a wipe, and everything of a loan or a
//! patient for the EHR. Reading one is a read of patient data: authorised (`Read`) and audited as
//! the document it becomes (`archive.patient_copy`, `archive.return_receipt`,
//! `archive.certificate`, `archive.ehr_export`). The server lays them out (PDF, FHIR, ZIP); only
//! what is on record goes in, never the time of printing, so the same record gives the same bytes.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::devices::{self, Device};
use crate::store::loans::{self, Consent, Loan, LoanDevice, Return};
use crate::store::patients::{self, Patient};
use crate::store::registry::{self, DeviceModel, Institution};
use crate::store::users;
use crate::store::wipes::{self, Wipe};
use crate::store::Tx;

/// A device with its model, as the documents name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitDevice {
    pub device: Device,
    pub model: DeviceModel,
}

/// An explanation document as it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    pub title: String,
    pub version: i32,
    pub sha256: String,
}

/// The patient copy of a consent: what the family signed, on what, for which devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientCopy {
    pub institution: Institution,
    pub patient: Patient,
    pub loan: Loan,
    pub consent: Consent,
    pub devices: Vec<KitDevice>,
    pub documents: Vec<SignedDocument>,
    /// The staff member who explained (name).
    pub explained_by: String,
    /// When the loan was voided as entered in error, if it was.
    pub voided_at: Option<DateTime<Utc>>,
    /// When the consent was withdrawn, if it was.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Each device's part in the loan (still out, or ended and how), by device id.
    pub kit: Vec<LoanDevice>,
}

/// One device handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedDevice {
    pub ret: Return,
    pub device: KitDevice,
    /// The staff member who received it (name).
    pub received_by: String,
}

/// The receipt of a loan's returns so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnReceipt {
    pub institution: Institution,
    pub patient: Patient,
    pub loan: Loan,
    pub returns: Vec<ReturnedDevice>,
}

/// A certificate of sanitization (NIST SP 800-88 style) of one wipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub institution: Institution,
    pub wipe: Wipe,
    pub device: KitDevice,
    pub performed_by: String,
    pub verified_by: Option<String>,
}

/// One loan's documents for the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanRecords {
    pub copy: PatientCopy,
    /// None while nothing has been returned.
    pub receipt: Option<ReturnReceipt>,
    pub certificates: Vec<Certificate>,
}

/// What goes to the EHR for a loan or for a patient: the patient and each loan's documents, oldest
/// loan first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EhrRecords {
    pub patient: Patient,
    pub loans: Vec<LoanRecords>,
}

/// How a document is shown, which the audit records: a page on screen, or an archival PDF made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    OnScreen,
    AsPdf,
}

/// The patient copy of loan `loan_id`'s consent; audited (`consent.view` on screen,
/// `archive.patient_copy` as a PDF).
pub async fn patient_copy(tx: &mut Tx, actor: &Actor, loan_id: &str, shown: Shown) -> Result<PatientCopy> {
    authorize(actor, Action::Read)?;
    let copy = read_copy(tx, loan_id).await?;
    let action = match shown {
        Shown::OnScreen => "consent.view",
        Shown::AsPdf => "archive.patient_copy",
    };
    tx.audit(actor, NewEvent::new(action, "consent", &copy.consent.id).patient(&copy.patient.id));
    Ok(copy)
}

/// The return receipt of loan `loan_id` (404 while nothing is returned); audited
/// (`loan.return_receipt` on screen, `archive.return_receipt` as a PDF).
pub async fn return_receipt(tx: &mut Tx, actor: &Actor, loan_id: &str, shown: Shown) -> Result<ReturnReceipt> {
    authorize(actor, Action::Read)?;
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    let receipt = read_receipt(tx, loan).await?.ok_or(Error::NotFound)?;
    let action = match shown {
        Shown::OnScreen => "loan.return_receipt",
        Shown::AsPdf => "archive.return_receipt",
    };
    tx.audit(actor, NewEvent::new(action, "loan", &receipt.loan.id).patient(&receipt.patient.id));
    Ok(receipt)
}

/// The certificate of sanitization of wipe `wipe_id`; audited.
pub async fn certificate(tx: &mut Tx, actor: &Actor, wipe_id: &str) -> Result<Certificate> {
    authorize(actor, Action::Read)?;
    let wipe = wipes::get(tx, wipe_id).await?.ok_or(Error::NotFound)?;
    let cert = read_certificate(tx, wipe).await?;
    tx.audit(actor, NewEvent::new("archive.certificate", "wipe", &cert.wipe.id));
    Ok(cert)
}

/// What of loan `loan_id` goes to the EHR; audited.
pub async fn ehr_for_loan(tx: &mut Tx, actor: &Actor, loan_id: &str) -> Result<EhrRecords> {
    authorize(actor, Action::Read)?;
    let records = read_loan(tx, loan_id).await?;
    let patient = records.copy.patient.clone();
    audit_export(tx, actor, &patient, std::slice::from_ref(&records));
    Ok(EhrRecords { patient, loans: vec![records] })
}

/// What of patient `patient_id` goes to the EHR: every loan, oldest first; audited.
pub async fn ehr_for_patient(tx: &mut Tx, actor: &Actor, patient_id: &str) -> Result<EhrRecords> {
    authorize(actor, Action::Read)?;
    let patient = patients::get(tx, patient_id).await?.ok_or(Error::NotFound)?;
    let mut ids: Vec<_> = loans::of_patient(tx, &patient.id).await?.into_iter().map(|l| (l.lent_at, l.id)).collect();
    ids.sort();
    let mut records = Vec::with_capacity(ids.len());
    for (_, id) in ids {
        records.push(read_loan(tx, &id).await?);
    }
    audit_export(tx, actor, &patient, &records);
    Ok(EhrRecords { patient, loans: records })
}

fn audit_export(tx: &mut Tx, actor: &Actor, patient: &Patient, loans: &[LoanRecords]) {
    tx.audit(
        actor,
        NewEvent::new("archive.ehr_export", "patient", &patient.id)
            .patient(&patient.id)
            .details(&json!({ "loan_ids": loans.iter().map(|l| l.copy.loan.id.as_str()).collect::<Vec<_>>() })),
    );
}

async fn read_loan(tx: &mut Tx, loan_id: &str) -> Result<LoanRecords> {
    let copy = read_copy(tx, loan_id).await?;
    let receipt = read_receipt(tx, copy.loan.clone()).await?;
    let mut certificates = Vec::new();
    for wipe in wipes::of_loan(tx, loan_id).await? {
        certificates.push(read_certificate(tx, wipe).await?);
    }
    Ok(LoanRecords { copy, receipt, certificates })
}

async fn read_copy(tx: &mut Tx, loan_id: &str) -> Result<PatientCopy> {
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    let consent = loans::consent(tx, &loan.consent_id).await?.ok_or(Error::NotFound)?;
    let patient = patients::get(tx, &loan.patient_id).await?.ok_or(Error::NotFound)?;
    let institution = registry::institution(tx).await?.ok_or(Error::NotFound)?;
    let mut devices = Vec::new();
    for id in loans::device_ids(tx, &loan.id).await? {
        devices.push(kit_device(tx, &id).await?);
    }
    devices.sort_by(|a, b| a.device.asset_tag.cmp(&b.device.asset_tag));
    let documents = loans::consent_documents(tx, &consent.id)
        .await?
        .into_iter()
        .map(|(title, version, sha256)| SignedDocument { title, version, sha256 })
        .collect();
    let explained_by = staff_name(tx, &consent.explained_by).await?;
    let voided_at = loans::void_of(tx, &loan.id).await?.map(|v| v.voided_at);
    let withdrawn_at = loans::withdrawal_of(tx, &consent.id).await?.map(|w| w.withdrawn_at);
    let kit = loans::loan_devices(tx, &loan.id).await?;
    Ok(PatientCopy {
        institution,
        patient,
        loan,
        consent,
        devices,
        documents,
        explained_by,
        voided_at,
        withdrawn_at,
        kit,
    })
}

async fn read_receipt(tx: &mut Tx, loan: Loan) -> Result<Option<ReturnReceipt>> {
    let mut returns = Vec::new();
    for ret in loans::returns_of(tx, &loan.id).await? {
        let device = kit_device(tx, &ret.device_id).await?;
        let received_by = staff_name(tx, &ret.received_by).await?;
        returns.push(ReturnedDevice { ret, device, received_by });
    }
    if returns.is_empty() {
        return Ok(None);
    }
    let patient = patients::get(tx, &loan.patient_id).await?.ok_or(Error::NotFound)?;
    let institution = registry::institution(tx).await?.ok_or(Error::NotFound)?;
    Ok(Some(ReturnReceipt { institution, patient, loan, returns }))
}

async fn read_certificate(tx: &mut Tx, wipe: Wipe) -> Result<Certificate> {
    let device = kit_device(tx, &wipe.device_id).await?;
    let institution = registry::institution(tx).await?.ok_or(Error::NotFound)?;
    let performed_by = staff_name(tx, &wipe.performed_by).await?;
    let verified_by = match &wipe.verified_by {
        Some(id) => Some(staff_name(tx, id).await?),
        None => None,
    };
    Ok(Certificate { institution, wipe, device, performed_by, verified_by })
}

async fn kit_device(tx: &mut Tx, device_id: &str) -> Result<KitDevice> {
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    let model = registry::model(tx, &device.model_id).await?.ok_or(Error::NotFound)?;
    Ok(KitDevice { device, model })
}

async fn staff_name(tx: &mut Tx, user_id: &str) -> Result<String> {
    Ok(users::get(tx, user_id).await?.map(|u| u.name).unwrap_or_default())
}
