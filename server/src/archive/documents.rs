//! The archival documents, in Japanese (the chart's language): the patient copy of a consent, the
//! return receipt and the certificate of sanitization. Each is laid out from what is on record
//! only, so the same record always gives the same bytes and a hash of them can be filed.

use lending::service::archive::{Certificate, KitDevice, PatientCopy, ReturnReceipt};
use lending::store::registry::{DeviceModel, Institution};

use super::pdf::{Sheet, SheetFont};
use crate::i18n::Lang;
use crate::routes::pages::loan_record::{condition, relationship};

use std::sync::Arc;

const JA: Lang = Lang::Ja;

fn clinic_block(s: &mut Sheet, inst: &Institution) {
    s.field("医療機関", &inst.name);
    let mut phones = format!("{}（{}）", inst.day_phone, inst.day_hours);
    if !inst.night_phone.is_empty() {
        phones.push_str(&format!("　夜間・休日 {}（{}）", inst.night_phone, inst.night_hours));
    }
    s.field("連絡先", &phones);
}

fn device_line(d: &KitDevice) -> String {
    format!("{}　{} {}（製造番号 {}）", d.device.asset_tag, d.model.manufacturer, d.model.model_name, d.device.serial)
}

/// 説明と同意書（患者様控え）.
pub fn patient_copy(font: Arc<SheetFont>, c: &PatientCopy) -> Result<Vec<u8>, String> {
    let t = JA.t();
    let mut s = Sheet::new(font, &format!("{}　貸出番号 {}", c.institution.name, c.loan.id));
    s.title("医療機器の貸出に関する説明と同意書（控え）");
    if let Some(at) = c.voided_at {
        s.paragraph(&format!(
            "この貸出は {} に誤登録として取り消されました。記録として保存しています。",
            JA.datetime(at)
        ));
    }
    clinic_block(&mut s, &c.institution);
    s.field("患者", &JA.patient_addressed(&c.patient.name, &c.patient.number));
    s.field("貸出日時", &JA.datetime(c.loan.lent_at));
    s.field("返却予定日", &JA.date(c.loan.due_on));
    s.field("説明した職員", &c.explained_by);
    for (i, d) in c.devices.iter().enumerate() {
        s.field(if i == 0 { "貸出機器" } else { "" }, &device_line(d));
    }
    s.heading("説明書（ご署名いただいた内容）");
    for d in &c.documents {
        s.note(&format!("{}　第{}版　SHA-256 {}", d.title, d.version, d.sha256));
    }
    s.gap(4.0);
    s.paragraph(&c.consent.document_text);
    s.heading("ご署名");
    s.field("署名された方", &c.consent.signer_name);
    s.field("ご本人との関係", relationship(t, &c.consent.relationship));
    if !c.consent.proxy_writer.is_empty() {
        s.field(
            "代筆",
            &format!(
                "{}（{} 様の代わりに記入。理由: {}）",
                c.consent.proxy_writer, c.consent.proxy_written_for, c.consent.proxy_reason
            ),
        );
    }
    s.field("署名日時", &JA.datetime(c.consent.signed_at));
    s.field("署名", "");
    s.signature(&c.consent.signature_svg, 110.0);
    s.heading("この控えの確認");
    s.field("確認コード", &c.consent.verification_code);
    s.paragraph("確認コードは、この同意が当院の記録と同じであることを職員が確かめるためのものです。");
    s.note(&format!("説明書全体の SHA-256: {}", c.consent.document_sha256));
    s.note(&format!("受領の電子署名 (Ed25519): {}", c.consent.receipt_signature));
    s.finish("説明と同意書（控え）", c.consent.signed_at)
}

/// 機器返却の受領書.
pub fn return_receipt(font: Arc<SheetFont>, r: &ReturnReceipt) -> Result<Vec<u8>, String> {
    let t = JA.t();
    let mut s = Sheet::new(font, &format!("{}　貸出番号 {}", r.institution.name, r.loan.id));
    s.title("機器返却の受領書");
    clinic_block(&mut s, &r.institution);
    s.field("患者", &JA.patient_addressed(&r.patient.name, &r.patient.number));
    s.field("貸出日時", &JA.datetime(r.loan.lent_at));
    s.paragraph("下記の機器の返却を受けました。");
    for line in &r.returns {
        s.heading(&line.device.device.asset_tag);
        s.field("機器", &device_line(&line.device));
        s.field("返却日時", &JA.datetime(line.ret.returned_at));
        s.field("状態", &condition(t, line.ret.damaged, line.ret.accessories_complete, line.ret.cleaned));
        if !line.ret.condition_notes.is_empty() {
            s.field("備考", &line.ret.condition_notes);
        }
        s.field("返却された方", &line.ret.returned_by_name);
        s.field("受け取った職員", &line.received_by);
        if let Some(svg) = line.ret.signature_svg.as_deref().filter(|v| !v.is_empty()) {
            s.field("署名", "");
            s.signature(svg, 80.0);
        }
    }
    let last = r.returns.iter().map(|l| l.ret.returned_at).max().unwrap_or(r.loan.lent_at);
    s.finish("機器返却の受領書", last)
}

/// データ消去証明書 (certificate of sanitization, NIST SP 800-88).
pub fn certificate(font: Arc<SheetFont>, c: &Certificate) -> Result<Vec<u8>, String> {
    let w = &c.wipe;
    let mut s = Sheet::new(font, &format!("{}　消去記録 {}", c.institution.name, w.id));
    s.title("データ消去証明書");
    s.paragraph("NIST SP 800-88 の考え方に沿って、貸し出した機器に残る患者さんのデータを消去したことを証明します。");
    s.field("医療機関", &c.institution.name);
    s.field("機器", &device_line(&c.device));
    s.field("消去方法", JA.wipe_method(&w.method));
    s.field("使用したツール", &format!("{} {}", w.tool, w.tool_version));
    let steps = DeviceModel::list(&w.checklist);
    for (i, step) in steps.iter().enumerate() {
        s.field(if i == 0 { "確認した手順" } else { "" }, &format!("済　{step}"));
    }
    s.field("結果", if w.result == "passed" { "消去を確認" } else { "消去できず（機器は貸し出せません）" });
    s.field("実施", &format!("{}（{}）", c.performed_by, JA.datetime(w.performed_at)));
    let verified = match (&c.verified_by, w.verified_at) {
        (Some(name), Some(at)) => format!("{name}（{}）", JA.datetime(at)),
        _ => "未確認（別の職員の確認が必要です）".to_owned(),
    };
    s.field("確認（別の職員）", &verified);
    if !w.evidence_ref.is_empty() {
        s.field("証跡", &w.evidence_ref);
    }
    if !w.destination.is_empty() {
        s.field("その後の扱い", &w.destination);
    }
    if !w.notes.is_empty() {
        s.field("備考", &w.notes);
    }
    s.gap(12.0);
    s.seal_boxes(&["実施", "確認", "承認"]);
    s.finish("データ消去証明書", w.verified_at.unwrap_or(w.performed_at))
}
