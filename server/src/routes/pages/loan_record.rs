//! One loan's page (貸出の記録): the patient, the kit and what became of each device, the consent
//! with its receipt check, corrections (extend the due date, consent withdrawn, a mistaken
//! check-out voided), the returns and the reminders sent; the actions this user may take now,
//! each form coming back with its values and reasons on a refusal; the whole kit taken back in
//! one pass, and the family's printable return receipt.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use lending::service::archive::{self, Shown};
use lending::service::idempotency::IdempotencyKey;
use lending::service::loans::{self, DeviceCondition, KitReturn, LoanActions, LoanView};
use lending::store::users;
use lending::Error;

use super::loans::strokes_svg;
use crate::i18n::Texts;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, FormErrors, Kept, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans/{id}", show)
        .post("/loans/{id}/extend", extend)
        .post("/loans/{id}/withdraw", withdraw)
        .post("/loans/{id}/void", void)
        .post("/loans/{id}/returns", return_kit)
        .get("/loans/{id}/returns/receipt", return_receipt)
}

/// A device of the kit as the page lists it.
struct DeviceLine {
    id: String,
    asset_tag: String,
    model: String,
    status: &'static str,
    /// Still out, or returned/lost/voided and when.
    part: String,
    out: bool,
}

struct ReturnLine {
    asset_tag: String,
    model: String,
    at: String,
    condition: String,
    notes: String,
    returned_by: String,
    received_by: String,
}

struct ReminderLine {
    at: String,
    step: String,
    to: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "staff/loan.html")]
struct LoanPage {
    c: Chrome,
    id: String,
    state_label: &'static str,
    patient_id: String,
    patient_name: String,
    patient_kana: String,
    patient_number: String,
    lent_on: String,
    lent_by: String,
    due_on: String,
    purpose: String,
    devices: Vec<DeviceLine>,
    signer: String,
    relationship: &'static str,
    /// 代筆: who wrote, for whom, why ("" when the signer wrote it).
    proxy: String,
    signed_at: String,
    receipt_valid: bool,
    verification_code: String,
    withdrawal: Option<String>,
    void: Option<String>,
    extensions: Vec<String>,
    returns: Vec<ReturnLine>,
    reminders: Vec<ReminderLine>,
    actions: LoanActions,
    void_until: String,
    /// The earliest date the browser offers for an extension.
    today: String,
    /// What just happened (after a successful action).
    done: Option<&'static str>,
    /// The return receipt is offered once anything came back.
    returned_any: bool,
    /// Which form came back with `errors` ("" when none).
    form: &'static str,
    kept: Kept,
    errors: FormErrors,
    /// One idempotency key per form: (return, extend, void).
    keys: (String, String, String),
}

impl LoanPage {
    fn any_action(&self) -> bool {
        let a = self.actions;
        a.extend || a.withdraw_consent || a.void || a.return_kit
    }

    /// A value kept from the form that came back (`""` for the others).
    fn keep(&self, form: &str, field: &str) -> &str {
        if self.form == form {
            self.kept.value(field)
        } else {
            ""
        }
    }

    fn ticked(&self, field: &str) -> bool {
        self.form == "return" && self.kept.has(field, "yes")
    }

    /// The message beside `field` of `form`, if that form came back with one.
    fn field_error(&self, form: &str, field: &str) -> Option<&str> {
        if self.form == form {
            self.errors.field(field)
        } else {
            None
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

pub(crate) fn relationship(t: &Texts, code: &str) -> &'static str {
    match code {
        "self" => t.rel_self,
        "family" => t.rel_family,
        _ => t.rel_agent,
    }
}

/// What became of one device of a kit: still out, or returned, lost or voided and when
/// (`when` formats the moment: a date and time on the loan page, a date on the patient's).
pub(super) fn kit_part(
    t: &Texts,
    end_reason: Option<&str>,
    ended_at: Option<chrono::DateTime<chrono::Utc>>,
    when: impl Fn(chrono::DateTime<chrono::Utc>) -> String,
) -> String {
    match (end_reason, ended_at) {
        (Some(reason), Some(at)) => format!(
            "{} {}",
            match reason {
                "returned" => t.part_returned,
                "lost" => t.part_lost,
                _ => t.part_voided,
            },
            when(at)
        ),
        _ => t.still_out.to_owned(),
    }
}

pub(crate) fn condition(t: &Texts, damaged: bool, accessories_complete: bool, cleaned: bool) -> String {
    let mut parts = Vec::new();
    if damaged {
        parts.push(t.damaged);
    }
    if !accessories_complete {
        parts.push(t.accessories_missing);
    }
    if !cleaned {
        parts.push(t.not_cleaned);
    }
    if parts.is_empty() {
        t.condition_ok.to_owned()
    } else {
        parts.join("、")
    }
}

async fn show(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let done = match done.done.as_str() {
        "extend" => Some(s.lang.t().done_extend),
        "withdraw" => Some(s.lang.t().done_withdraw),
        "void" => Some(s.lang.t().done_void),
        "return" => Some(s.lang.t().done_return),
        _ => None,
    };
    page(&state, &s, &id, done, "", Kept::default(), None).await
}

/// The loan page; after a refused form, that form with what was entered and the reasons.
async fn page(
    state: &AppState,
    s: &Staff,
    id: &str,
    done: Option<&'static str>,
    form: &'static str,
    kept: Kept,
    error: Option<Error>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.begin().await?;
    let v: LoanView =
        loans::view(&mut tx, &s.actor, &state.receipts, id, state.cfg.void_window()).await.map_err(|e| s.error(e))?;
    let mut names: Vec<(String, String)> = Vec::new();
    let mut name_of = async |tx: &mut lending::store::Tx, user_id: &str| -> Result<String, Error> {
        if let Some((_, n)) = names.iter().find(|(u, _)| u == user_id) {
            return Ok(n.clone());
        }
        let n = users::get(tx, user_id).await?.map(|u| u.name).unwrap_or_default();
        names.push((user_id.to_owned(), n.clone()));
        Ok(n)
    };
    let t = s.lang.t();
    let tag_of = |device_id: &str| {
        v.devices.iter().find(|d| d.device.id == device_id).map(|d| d.device.asset_tag.clone()).unwrap_or_default()
    };
    let mut returns = Vec::new();
    for r in &v.returns {
        returns.push(ReturnLine {
            asset_tag: tag_of(&r.device_id),
            model: String::new(),
            at: lang.datetime(r.returned_at),
            condition: condition(t, r.damaged, r.accessories_complete, r.cleaned),
            notes: r.condition_notes.clone(),
            returned_by: r.returned_by_name.clone(),
            received_by: name_of(&mut tx, &r.received_by).await?,
        });
    }
    let mut extensions = Vec::new();
    for e in &v.extensions {
        extensions.push(format!(
            "{} → {}（{}、{} {}）",
            lang.date(e.old_due_on),
            lang.date(e.new_due_on),
            e.reason,
            name_of(&mut tx, &e.extended_by).await?,
            lang.datetime(e.extended_at)
        ));
    }
    let withdrawal = v.withdrawal.as_ref().map(|w| {
        format!("{}　{}: {}　{}: {}", lang.datetime(w.withdrawn_at), t.withdrawn_by, w.signer_name, t.reason, w.reason)
    });
    let void = match &v.void {
        Some(x) => Some(format!(
            "{}　{}　{}: {}",
            lang.datetime(x.voided_at),
            name_of(&mut tx, &x.voided_by).await?,
            t.reason,
            x.reason
        )),
        None => None,
    };
    tx.commit().await?;
    let devices = v
        .devices
        .iter()
        .map(|d| DeviceLine {
            id: d.device.id.clone(),
            asset_tag: d.device.asset_tag.clone(),
            model: d.model_name.clone(),
            status: if s.lang == crate::i18n::Lang::Ja {
                lang.status(d.device.status)
            } else {
                d.device.status.label_en()
            },
            part: kit_part(t, d.part.end_reason.as_deref(), d.part.ended_at, |at| lang.datetime(at)),
            out: d.part.ended_at.is_none(),
        })
        .collect();
    // The form that came back keeps its key (a resubmission is still the same request).
    let key_for = |which: &str| {
        let key = kept.value("idempotency_key");
        if which == form && !key.is_empty() {
            key.to_owned()
        } else {
            IdempotencyKey::fresh()
        }
    };
    let page = LoanPage {
        c: s.chrome(),
        id: v.loan.id.clone(),
        state_label: if v.void.is_some() {
            t.loan_voided
        } else if v.loan.closed_at.is_some() {
            t.loan_closed
        } else {
            t.loan_open
        },
        patient_id: v.patient.id.clone(),
        patient_name: v.patient.name.clone(),
        patient_kana: v.patient.kana.clone(),
        patient_number: v.patient.number.clone(),
        lent_on: lang.datetime(v.loan.lent_at),
        lent_by: v.lent_by_name.clone(),
        due_on: lang.date(v.loan.due_on),
        purpose: v.loan.purpose.clone(),
        devices,
        signer: v.consent.signer_name.clone(),
        relationship: relationship(t, &v.consent.relationship),
        proxy: if v.consent.proxy_writer.is_empty() {
            String::new()
        } else {
            format!(
                "{}: {}／{}: {}／{}: {}",
                t.proxy_writer,
                v.consent.proxy_writer,
                t.proxy_for,
                v.consent.proxy_written_for,
                t.proxy_reason,
                v.consent.proxy_reason
            )
        },
        signed_at: lang.datetime(v.consent.signed_at),
        receipt_valid: v.receipt.valid,
        verification_code: v.consent.verification_code.clone(),
        withdrawal,
        void,
        extensions,
        returned_any: !returns.is_empty(),
        returns,
        reminders: v
            .reminders
            .iter()
            .map(|r| ReminderLine {
                at: lang.datetime(r.created_at),
                step: r.dedupe_key.split(':').nth(2).unwrap_or_default().to_owned(),
                to: r.recipient.clone(),
                state: if r.sent_at.is_some() { t.reminder_sent } else { t.reminder_queued },
            })
            .collect(),
        actions: v.actions,
        void_until: lang.datetime(v.void_until),
        today: state.store.clock().today_tokyo().to_string(),
        done,
        form,
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
        keys: (key_for("return"), key_for("extend"), key_for("void")),
        kept,
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

fn field(pairs: &[(String, String)], key: &str) -> String {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Runs one correction; on success back to the loan page with its confirmation, on a refusal
/// the same page with the form kept and the reasons.
async fn act(
    state: &AppState,
    s: &Staff,
    id: &str,
    form: &'static str,
    pairs: Vec<(String, String)>,
    outcome: Result<(), Error>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/loans/{id}?done={form}")).into_response()),
        Err(e) if e.is_internal() || matches!(e, Error::NotFound | Error::Forbidden) => Err(s.error(e)),
        Err(e) => page(state, s, id, None, form, Kept::new(pairs), Some(e)).await,
    }
}

async fn extend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let outcome = async {
        let key = IdempotencyKey::parse(Some(&field(&pairs, "idempotency_key")))?;
        let new_due = NaiveDate::parse_from_str(&field(&pairs, "due_on"), "%Y-%m-%d").ok();
        let mut tx = state.store.begin().await?;
        loans::extend_once(&mut tx, &s.actor, &id, new_due, &field(&pairs, "extend_reason"), key.as_ref()).await?;
        tx.commit().await
    }
    .await;
    act(&state, &s, &id, "extend", pairs, outcome.map_err(|e| rename(e, "reason", "extend_reason"))).await
}

async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let outcome = async {
        let mut tx = state.store.begin().await?;
        loans::withdraw_consent(
            &mut tx,
            &s.actor,
            &id,
            &field(&pairs, "withdraw_signer"),
            &field(&pairs, "withdraw_reason"),
        )
        .await?;
        tx.commit().await
    }
    .await;
    let outcome = outcome.map_err(|e| rename(rename(e, "reason", "withdraw_reason"), "signer_name", "withdraw_signer"));
    act(&state, &s, &id, "withdraw", pairs, outcome).await
}

async fn void(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let outcome = async {
        let key = IdempotencyKey::parse(Some(&field(&pairs, "idempotency_key")))?;
        let mut tx = state.store.begin().await?;
        loans::void_once(&mut tx, &s.actor, &id, &field(&pairs, "void_reason"), state.cfg.void_window(), key.as_ref())
            .await?;
        tx.commit().await
    }
    .await;
    act(&state, &s, &id, "void", pairs, outcome.map_err(|e| rename(e, "reason", "void_reason"))).await
}

/// The page's forms share one page, so a service's field name is given the form's own.
fn rename(e: Error, from: &str, to: &str) -> Error {
    match e {
        Error::Validation(mut fields) => {
            for f in &mut fields {
                if f.field == from {
                    to.clone_into(&mut f.field);
                }
            }
            Error::Validation(fields)
        }
        other => other,
    }
}

async fn return_kit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let yes = |k: String| pairs.iter().any(|(f, v)| *f == k && v == "yes");
    let devices = pairs
        .iter()
        .filter(|(k, _)| k == "device_id")
        .map(|(_, d)| DeviceCondition {
            device_id: d.clone(),
            damaged: yes(format!("damaged:{d}")),
            accessories_complete: yes(format!("accessories_complete:{d}")),
            cleaned: yes(format!("cleaned:{d}")),
            condition_notes: field(&pairs, &format!("condition_notes:{d}")),
        })
        .collect();
    let req = KitReturn {
        loan_id: id.clone(),
        devices,
        returned_by_name: field(&pairs, "returned_by_name"),
        signature_svg: strokes_svg(&field(&pairs, "strokes")),
    };
    let outcome = async {
        let key = IdempotencyKey::parse(Some(&field(&pairs, "idempotency_key")))?;
        let mut tx = state.store.begin().await?;
        loans::return_kit_once(&mut tx, &s.actor, req, key.as_ref()).await?;
        tx.commit().await
    }
    .await;
    act(&state, &s, &id, "return", pairs, outcome).await
}

#[derive(Template)]
#[template(path = "staff/return_receipt.html")]
struct ReceiptPage {
    c: Chrome,
    id: String,
    clinic: String,
    day_phone: String,
    night_phone: String,
    patient: String,
    returns: Vec<ReturnLine>,
}

/// The family's printable receipt for what came back (an audited patient read).
async fn return_receipt(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.begin().await?;
    let r = archive::return_receipt(&mut tx, &s.actor, &id, Shown::OnScreen).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    let t = s.lang.t();
    let returns = r
        .returns
        .into_iter()
        .map(|line| ReturnLine {
            asset_tag: line.device.device.asset_tag,
            model: line.device.model.model_name,
            at: lang.datetime(line.ret.returned_at),
            condition: condition(t, line.ret.damaged, line.ret.accessories_complete, line.ret.cleaned),
            notes: line.ret.condition_notes,
            returned_by: line.ret.returned_by_name,
            received_by: line.received_by,
        })
        .collect();
    let page = ReceiptPage {
        c: s.chrome(),
        id: r.loan.id,
        clinic: r.institution.name,
        day_phone: r.institution.day_phone,
        night_phone: r.institution.night_phone,
        patient: s.lang.patient_addressed(&r.patient.name, &r.patient.number),
        returns,
    };
    Ok(render(&page))
}
